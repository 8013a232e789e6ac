# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The mesh as a picture (pure): nodes, the path of each pair (direct with its handshake age, relayed
through a node, or down) and the sites, grouped by the NAT address they share, from what each node
reports of its peers (wglan_info on every host, or one watcher's status). host.graph_render draws it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress

DIRECT, RELAYED, DOWN = 'direct', 'relayed', 'down'


def _endpoint_host(endpoint):
    """The address of an endpoint (host:port, [v6]:port), or None."""
    text = str(endpoint or '')
    if text.startswith('['):
        text = text[1:].partition(']')[0]
    elif text.count(':') == 1:
        text = text.partition(':')[0]
    try:
        return str(ipaddress.ip_address(text))
    except ValueError:
        return None


def views_of_infos(infos):
    """{node: (own public key, own address, [peer rows])} of {inventory name: wglan_info result}: the
    watcher's rows where it runs (they have names and paths), else the device's (named from the hosts'
    keys and the names the watchers give). Hosts without the interface are left out."""
    names = {}
    for name, info in (infos or {}).items():
        if not isinstance(info, dict):
            continue
        for row in (info.get('watcher') or {}).get('peers') or ():  # (a watcher names its peers)
            if row.get('public_key') and row.get('name'):
                names[row['public_key']] = row['name']
    names.update((info.get('public_key'), name) for name, info in (infos or {}).items()
                 if isinstance(info, dict) and info.get('public_key'))
    views = {}
    for name, info in sorted((infos or {}).items()):
        if not isinstance(info, dict) or not info.get('exists'):
            continue
        rows = ((info.get('watcher') or {}).get('peers')) or []
        if not rows:
            rows = [dict(row, name=names.get(row.get('public_key'))) for row in info.get('peers') or []]
        address = next((a for a in info.get('addresses') or () if ':' in a), None)
        views[name] = (info.get('public_key'), address, rows)
    return views


def _state(row):
    if row.get('via'):
        return RELAYED
    return DIRECT if row.get('state') == 'up' else DOWN


class Graph:
    """nodes: {name: dict(address, site)}; edges: [dict(a, b, kind, via, age, seen_by)]; sites: {NAT
    address: [names]}."""

    def __init__(self, nodes, edges, sites):
        self.nodes, self.edges, self.sites = nodes, edges, sites

    def summary(self):
        kinds = [e['kind'] for e in self.edges]
        return dict(nodes=len(self.nodes), direct=kinds.count(DIRECT), relayed=kinds.count(RELAYED),
                    down=sorted('%s-%s' % (e['a'], e['b']) for e in self.edges if e['kind'] == DOWN),
                    sites=dict((ip, list(names)) for ip, names in sorted(self.sites.items())))


def graph(views):
    """The Graph of {node: (public key, address, peer rows)}. A pair seen by both ends takes the better
    of the two reports (direct over relayed over down) and the younger handshake."""
    by_key = dict((key, name) for name, (key, _address, _rows) in views.items() if key)
    nodes = dict((name, dict(address=address, site=None)) for name, (_key, address, _rows) in views.items())
    pairs, seen_at = {}, {}
    rank = {DIRECT: 0, RELAYED: 1, DOWN: 2}
    for observer, (_key, _address, rows) in sorted(views.items()):
        for row in rows:
            peer = row.get('name') or by_key.get(row.get('public_key')) or (row.get('public_key') or '?')[:8]
            if peer == observer:
                continue
            nodes.setdefault(peer, dict(address=(row.get('address') or '').split('/')[0] or None, site=None))
            host = _endpoint_host(row.get('endpoint'))
            if host is not None and not row.get('via'):
                seen_at.setdefault((observer, host), set()).add(peer)
            kind = _state(row)
            key = tuple(sorted((observer, peer)))
            edge = dict(a=key[0], b=key[1], kind=kind, via=row.get('via') if kind == RELAYED else None,
                        age=row.get('handshake_age') if kind == DIRECT else None, seen_by=[observer])
            old = pairs.get(key)
            if old is None:
                pairs[key] = edge
                continue
            old['seen_by'].append(observer)
            if rank[kind] < rank[old['kind']]:
                edge['seen_by'] = old['seen_by']
                pairs[key] = edge
            elif kind == old['kind'] == DIRECT and edge['age'] is not None \
                    and (old['age'] is None or edge['age'] < old['age']):
                old['age'] = edge['age']
    sites = _sites(seen_at)
    for ip, names in sites.items():
        for name in names:
            nodes[name]['site'] = ip
    return Graph(nodes, [pairs[key] for key in sorted(pairs)], sites)


def _sites(seen_at):
    """{NAT address: sorted names}: nodes one observer sees at the same address share a NAT (their
    router maps each to a port of its own). Groups that share a node are one site."""
    groups = []
    for (_observer, ip), names in sorted(seen_at.items()):
        if len(names) < 2:
            continue
        merged = [g for g in groups if g[1] & names]
        for g in merged:
            groups.remove(g)
        ips = set([ip]).union(*(g[0] for g in merged))
        groups.append((ips, set(names).union(*(g[1] for g in merged))))
    return dict((min(ips, key=ipaddress.ip_address), sorted(names)) for ips, names in groups)
