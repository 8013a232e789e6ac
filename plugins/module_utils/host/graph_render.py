# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Draws a model.mesh_graph.Graph with Graphviz (the graphviz Python package builds the DOT source,
Graphviz's dot lays it out): a node per mesh node, a box per site (the NAT address its nodes share),
a green line per direct pair with its handshake age, a blue dashed one per relayed pair with its relay,
a red dotted one per pair that is down."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.model import mesh_graph

try:
    import graphviz
    HAS_GRAPHVIZ = True
except ImportError:
    HAS_GRAPHVIZ = False

STYLE = {
    mesh_graph.DIRECT: dict(color='#2e7d32', style='solid', penwidth='2'),
    mesh_graph.RELAYED: dict(color='#1565c0', style='dashed', penwidth='1.5'),
    mesh_graph.DOWN: dict(color='#c62828', style='dotted', penwidth='1.5'),
}


def _age(seconds):
    if seconds is None:
        return ''
    seconds = int(seconds)
    return '%ds' % seconds if seconds < 120 else '%dm' % (seconds // 60)


def dot(the_graph, title=None, now=None, timestamp=True):
    """The graphviz.Graph (undirected) of the_graph; timestamp: the time in its heading."""
    if not HAS_GRAPHVIZ:
        raise WglanError('the graph needs the graphviz Python package (Debian: python3-graphviz)')
    summary = the_graph.summary()
    heading = '%s\n%d nodes: %d direct, %d relayed, %d down' % (
        title or 'wglan.mesh', summary['nodes'], summary['direct'], summary['relayed'], len(summary['down']))
    if timestamp:
        heading += time.strftime(' (%Y-%m-%d %H:%M:%S UTC)', time.gmtime(time.time() if now is None else now))
    out = graphviz.Graph('wglan', graph_attr=dict(label=heading, labelloc='t', fontname='Helvetica', fontsize='14',
                                                  layout='dot', rankdir='TB', newrank='true', nodesep='0.5', ranksep='0.9'),
                         node_attr=dict(shape='box', style='rounded,filled', fillcolor='#f5f5f5', fontname='Helvetica'),
                         edge_attr=dict(fontname='Helvetica', fontsize='10'))

    def add(target, name):
        node = the_graph.nodes[name]
        label = name if not node.get('address') else '%s\n%s' % (name, node['address'].split('/')[0])
        target.node(name, label=label)

    for index, (ip, names) in enumerate(sorted(the_graph.sites.items())):
        with out.subgraph(name='cluster_site%d' % index) as site:
            site.attr(label='site behind NAT %s' % ip, style='dashed', color='#757575', fontname='Helvetica')
            for name in names:
                add(site, name)
    for name in sorted(the_graph.nodes):
        if not the_graph.nodes[name].get('site'):
            add(out, name)
    for edge in the_graph.edges:
        kind = edge['kind']
        label = {mesh_graph.DIRECT: _age(edge['age']), mesh_graph.RELAYED: 'via %s' % edge['via'],
                 mesh_graph.DOWN: 'down'}[kind]
        out.edge(edge['a'], edge['b'], label=label, **STYLE[kind])
    return out


FORMATS = ('svg', 'png', 'dot')


def format_of(dest, given=None):
    """The picture's format: given, else the suffix of dest (svg when it has none, or writes to stdout)."""
    fmt = given or (dest.rsplit('.', 1)[1].lower() if dest not in (None, '-') and '.' in dest.rsplit('/', 1)[-1] else 'svg')
    if fmt not in FORMATS:
        raise WglanError('format: svg, png or dot (from %s: %r)' % (dest, fmt))
    return fmt


def render(the_graph, fmt='svg', title=None, now=None, timestamp=True):
    """The picture as bytes (fmt: svg or png), or the DOT source (fmt: dot)."""
    source = dot(the_graph, title, now, timestamp)
    if fmt == 'dot':
        return source.source.encode('utf-8')
    try:
        return source.pipe(format=fmt)
    except graphviz.ExecutableNotFound:
        raise WglanError('the graph needs Graphviz\'s dot program (Debian: graphviz)')
    except graphviz.CalledProcessError as exc:
        raise WglanError('dot failed: %s' % (exc.stderr or exc))
