# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""wglan_graph: the picture of the mesh from wglan_info gathered on every host, written to dest."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.wglan.mesh.plugins.module_utils.host import graph_render, state_files
from ansible_collections.wglan.mesh.plugins.module_utils.model import mesh_graph
from ansible_collections.wglan.mesh.plugins.module_utils.module_support import run_or_fail

ARGUMENTS = dict(
    infos=dict(type='dict', required=True),
    dest=dict(type='path', required=True),
    format=dict(type='str', choices=list(graph_render.FORMATS)),
    title=dict(type='str', default='wglan.mesh'),
    timestamp=dict(type='bool', default=True),
    mode=dict(type='raw', default='0644'),
)


def run(module):
    params = module.params
    fmt = run_or_fail(module, graph_render.format_of, params['dest'], params['format'])
    views = mesh_graph.views_of_infos(params['infos'])
    if not views:
        module.fail_json(msg='no host in infos has the interface (infos holds the wglan_info result of each host)')
    the_graph = mesh_graph.graph(views)
    picture = run_or_fail(module, graph_render.render, the_graph, fmt, params['title'], None, params['timestamp'])
    try:
        with open(params['dest'], 'rb') as handle:
            changed = handle.read() != picture
    except OSError:
        changed = True
    if changed and not module.check_mode:
        mode = int(params['mode'], 8) if isinstance(params['mode'], str) else int(params['mode'])
        run_or_fail(module, state_files.replace, params['dest'], picture, mode)
    return dict(changed=changed, dest=params['dest'], format=fmt, **the_graph.summary())
