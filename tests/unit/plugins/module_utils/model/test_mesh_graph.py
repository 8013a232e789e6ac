"""The mesh as a picture: who is where (model.mesh_graph) and how it is drawn (host.graph_render, with
the real Graphviz: the graphviz package and Debian's dot)."""
import xml.etree.ElementTree as ET

from ansible_collections.wglan.mesh.plugins.module_utils.host import graph_render
from ansible_collections.wglan.mesh.plugins.module_utils.model import mesh_graph

K = dict((name, name.upper() * 8) for name in ('hub1', 'a1', 'a2', 'b1', 'b2'))


def row(name, state='up', endpoint=None, via=None, age=5):
    return dict(name=name, public_key=K[name], address='200:1001::%x/128' % (len(name) * 7), endpoint=endpoint,
                state=state, handshake_age=age if state == 'up' else None, via=via)


def info(name, rows, watcher=True):
    result = dict(exists=True, public_key=K[name], addresses=['200:1001::1/64', '198.51.100.1/24'])
    if watcher:
        result['watcher'] = dict(peers=rows)
    else:
        result['peers'] = [dict((k, v) for k, v in r.items() if k != 'name') for r in rows]
    return result


# hub1 public; a1, a2 behind NAT 203.0.113.101; b1, b2 behind 203.0.113.102; b2 reaches a2 through hub1
INFOS = {
    'hub1': info('hub1', [row('a1', endpoint='203.0.113.101:51835', age=3), row('a2', endpoint='203.0.113.101:51829'),
                          row('b1', endpoint='203.0.113.102:51820'), row('b2', endpoint='203.0.113.102:51821')]),
    'a1': info('a1', [row('hub1', endpoint='203.0.113.10:51820', age=9), row('a2', endpoint='192.0.2.11:51829'),
                      row('b1', endpoint='203.0.113.102:51820'), row('b2', state='down', endpoint='203.0.113.102:51821')]),
    'a2': info('a2', [row('hub1', endpoint='203.0.113.10:51820'), row('a1', endpoint='192.0.2.10:51835'),
                      row('b1', endpoint='203.0.113.102:51820'), row('b2', state='stale', via='hub1')]),
    'b1': info('b1', [row('hub1', endpoint='203.0.113.10:51820'), row('a1', endpoint='203.0.113.101:51835'),
                      row('a2', endpoint='203.0.113.101:51829'), row('b2', endpoint='192.0.2.75:51821')], watcher=False),
    'b2': dict(exists=False),
}


def test_each_host_s_view_uses_the_watcher_s_rows_or_names_the_device_s_from_the_keys():
    views = mesh_graph.views_of_infos(INFOS)
    assert sorted(views) == ['a1', 'a2', 'b1', 'hub1']  # (b2 has no interface: it reports nothing)
    key, address, rows = views['b1']
    assert key == K['b1'] and address == '200:1001::1/64'
    assert [r['name'] for r in rows] == ['hub1', 'a1', 'a2', 'b2']  # (b2's name from the watchers that know it)


def test_pairs_take_the_better_report_and_sites_are_the_nodes_seen_at_one_address():
    the_graph = mesh_graph.graph(mesh_graph.views_of_infos(INFOS))
    edges = dict(((e['a'], e['b']), e) for e in the_graph.edges)
    assert edges[('a1', 'hub1')]['kind'] == 'direct' and edges[('a1', 'hub1')]['age'] == 3
    assert sorted(edges[('a1', 'hub1')]['seen_by']) == ['a1', 'hub1']
    assert edges[('a2', 'b2')]['kind'] == 'relayed' and edges[('a2', 'b2')]['via'] == 'hub1'
    assert edges[('a1', 'b2')]['kind'] == 'down'
    assert the_graph.sites == {'203.0.113.101': ['a1', 'a2'], '203.0.113.102': ['b1', 'b2']}
    assert the_graph.nodes['a2']['site'] == '203.0.113.101' and the_graph.nodes['hub1']['site'] is None
    summary = the_graph.summary()
    assert summary['down'] == ['a1-b2'] and summary['relayed'] == 1 and summary['nodes'] == 5
    assert mesh_graph.graph({'x': (None, None, [dict(public_key='QUJDREVGR0g=', state='up')])}).nodes.keys() \
        == {'x', 'QUJDREVG'}  # (a key nobody names is drawn by its start)


def test_a_pair_down_on_one_side_and_up_on_the_other_is_drawn_up():
    views = {'x': (None, None, [dict(name='y', state='down')]), 'y': (None, None, [dict(name='x', state='up', handshake_age=7)])}
    assert [(e['kind'], e['age']) for e in mesh_graph.graph(views).edges] == [('direct', 7)]


def test_the_picture_has_every_node_every_site_and_a_style_per_kind_of_path():
    the_graph = mesh_graph.graph(mesh_graph.views_of_infos(INFOS))
    source = graph_render.render(the_graph, 'dot', 'lab', now=0).decode()
    assert 'cluster_site0' in source and 'site behind NAT 203.0.113.101' in source
    assert '"via hub1"' in source or 'label="via hub1"' in source
    assert 'style=dotted' in source and 'style=dashed' in source and 'style=solid' in source
    svg = graph_render.render(the_graph, 'svg', 'lab', now=0)
    root = ET.fromstring(svg)
    texts = [t.text for t in root.iter('{http://www.w3.org/2000/svg}text')]
    for name in ('hub1', 'a1', 'a2', 'b1', 'b2', 'via hub1', 'down', '3s'):
        assert name in texts, (name, texts)
    assert '5 nodes: 8 direct, 1 relayed, 1 down (1970-01-01 00:00:00 UTC)' in texts, texts


def test_one_watcher_s_status_is_a_picture_of_its_own_peers():
    status_rows = INFOS['a1']['watcher']['peers']
    the_graph = mesh_graph.graph({'a1': (None, None, status_rows)})
    assert sorted(the_graph.nodes) == ['a1', 'a2', 'b1', 'b2', 'hub1']
    assert sorted((e['a'], e['b']) for e in the_graph.edges) == [('a1', 'a2'), ('a1', 'b1'), ('a1', 'b2'), ('a1', 'hub1')]
    assert the_graph.sites == {'203.0.113.102': ['b1', 'b2']}


def test_without_the_time_the_same_reports_draw_the_same_picture():
    the_graph = mesh_graph.graph(mesh_graph.views_of_infos(INFOS))
    first = graph_render.render(the_graph, 'svg', 'lab', now=0, timestamp=False)
    assert first == graph_render.render(the_graph, 'svg', 'lab', now=10 ** 9, timestamp=False)
    assert b'5 nodes: 8 direct, 1 relayed, 1 down<' in first
    assert first != graph_render.render(the_graph, 'svg', 'lab', now=0)
