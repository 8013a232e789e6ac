"""model.segments: a full mesh inside each segment, the other segments' nodes through a gateway, both
ends through the same one; and the records' segments field."""
import base64
import ipaddress

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.model import plan, segments
from ansible_collections.wglan.mesh.plugins.module_utils.model.node_records import NodeRecord, PREFERRED, parse_record


def key(n):
    return base64.b64encode(bytes([n]) * 32).decode()


def node(n, segs=(), relay=False):
    return NodeRecord('n%d' % n, key(n), ipaddress.IPv6Address('200:1001::%x' % n),
                      [ipaddress.ip_interface('192.0.2.%d/24' % n)], 51820, relay=relay, segments=segs)


def peers_of(me, records):
    topo = plan.topology([], me, records, me.public_key)
    return dict((p.public_key, sorted(str(n) for n in p.allowed_ips)) for p in topo.peers)


def addresses(record):
    return sorted(['%s/128' % record.address, '%s/32' % record.node_ips[0].ip])


def test_without_segments_the_mesh_is_the_full_mesh_it_always_was():
    records = [node(1), node(2), node(3)]
    assert not segments.segmented(records[0], records)
    assert peers_of(records[0], records) == {key(2): addresses(records[1]), key(3): addresses(records[2])}
    # every node in one named segment: the same
    named = [node(n, ('prod',)) for n in (1, 2, 3)]
    assert sorted(peers_of(named[0], named)) == [key(2), key(3)]


def test_two_segments_and_a_gateway():
    a1, a2, gw, b1 = node(1, ('a',)), node(2, ('a',)), node(3, ('a', 'b'), relay=True), node(4, ('b',))
    records = [a1, a2, gw, b1]
    # a1: a2 and the gateway are peers, b1 is reached through the gateway (its addresses on the gateway's entry)
    assert peers_of(a1, records) == {key(2): addresses(a2), key(3): sorted(addresses(gw) + addresses(b1))}
    # b1: the gateway carries both of segment a
    assert peers_of(b1, records) == {key(3): sorted(addresses(gw) + addresses(a1) + addresses(a2))}
    # the gateway has every node as a peer, directly
    assert peers_of(gw, records) == dict((r.public_key, addresses(r)) for r in (a1, a2, b1))
    route = segments.routes(a1, records)
    assert (route.direct, route.via, route.unreachable) == ({key(2), key(3)}, {key(4): key(3)}, [])


def test_without_a_gateway_the_other_segment_is_not_reached():
    a1, gw, b1 = node(1, ('a',)), node(3, ('a', 'b')), node(4, ('b',))  # (the node in both does not relay)
    assert peers_of(a1, [a1, gw, b1]) == {key(3): addresses(gw)}
    assert segments.routes(a1, [a1, gw, b1]).unreachable == ['n4']
    # a node that names no segment is in the default one only
    plain = node(5)
    assert peers_of(plain, [a1, gw, b1, plain]) == {}


def test_both_ends_take_the_same_gateway_preferred_first_then_the_smallest_key():
    a, b = node(1, ('a',)), node(9, ('b',))
    gateways = [node(7, ('a', 'b'), relay=True), node(5, ('a', 'b'), relay=True), node(6, ('a', 'b'), relay=PREFERRED)]
    records = [a, b] + gateways
    assert segments.routes(a, records).via == {key(9): key(6)}
    assert segments.routes(b, records).via == {key(1): key(6)}
    gateways[2].relay = True
    assert segments.routes(a, records).via == {key(9): key(5)} and segments.routes(b, records).via == {key(1): key(5)}


@st.composite
def fleets(draw):
    count = draw(st.integers(2, 8))
    names = ['a', 'b', 'c']
    return [node(n, tuple(draw(st.lists(st.sampled_from(names), max_size=2, unique=True))), relay=draw(st.booleans()))
            for n in range(1, count + 1)]


@settings(max_examples=200, deadline=None)
@given(fleets())
def test_every_pair_agrees_on_its_path_and_the_gateway_has_both_as_peers(records):
    routes = dict((r.public_key, segments.routes(r, records)) for r in records)
    by_key = dict((r.public_key, r) for r in records)
    for x in records:
        for y in records:
            if x is y:
                continue
            rx, ry = routes[x.public_key], routes[y.public_key]
            if y.public_key in rx.direct:
                assert x.public_key in ry.direct
            elif y.public_key in rx.via:
                through = rx.via[y.public_key]
                assert ry.via[x.public_key] == through
                assert {x.public_key, y.public_key} <= routes[through].direct and by_key[through].relay
            else:
                assert y.name in rx.unreachable and x.name in ry.unreachable
        # no address goes to two peers, and none of the node's own
        allowed = [n for p in plan.topology([], x, records, x.public_key).peers for n in p.allowed_ips]
        assert len(allowed) == len(set(allowed))
        assert not set(addresses(x)) & set(str(n) for n in allowed)


def test_a_record_s_segments_are_checked_and_kept():
    raw = node(1).as_dict()
    assert 'segments' not in raw and parse_record(raw).segments == ()
    raw['segments'] = ['b', 'a', 'a']
    assert parse_record(raw).segments == ('a', 'b') and parse_record(raw).as_dict()['segments'] == ['a', 'b']
    raw['segments'] = 'edge, core'
    assert parse_record(raw).segments == ('core', 'edge')
    for bad in (['Prod'], ['-x'], ['a' * 33], [''], 7, ['a b']):
        raw['segments'] = bad
        with pytest.raises(WglanError, match='segment'):
            parse_record(raw)


def test_a_policy_is_checked_entry_by_entry():
    assert segments.parse_policy(None) is None and segments.parse_policy([]) == []
    assert segments.parse_policy([{'from': 'a', 'to': 'b'}, {'from': 'a', 'to': 'b', 'ports': [22, '8000-8100']},
                                  {'from': 'b', 'to': 'a', 'ports': 53, 'proto': 'udp'}]) == [
        ('a', 'b', None, []), ('a', 'b', 'tcp', [(22, 22), (8000, 8100)]), ('b', 'a', 'udp', [(53, 53)])]
    for bad, words in (({'from': 'a'}, 'to must name one segment'), ({'from': 'a', 'to': 'B'}, 'not a segment name'),
                       ({'from': 'a', 'to': 'b', 'ports': ['x']}, 'not a port'),
                       ({'from': 'a', 'to': 'b', 'ports': [70000]}, 'within 1-65535'),
                       ({'from': 'a', 'to': 'b', 'proto': 'icmp'}, 'tcp, udp or any'),
                       ({'from': 'a', 'to': 'b', 'proto': 'any', 'ports': [1]}, 'need proto'),
                       ({'from': 'a', 'to': 'b', 'port': 22}, 'unknown keys port'), ('a', 'mapping')):
        with pytest.raises(WglanError, match=words):
            segments.parse_policy([bad])


def test_what_a_node_lets_in_its_segments_and_what_the_policy_allows_toward_them():
    a1, gw, b1, c1 = node(1, ('a',)), node(3, ('a', 'b'), relay=True), node(4, ('b',)), node(5, ('c',))
    records = [a1, gw, b1, c1]
    policy = segments.parse_policy([{'from': 'a', 'to': 'b', 'ports': [8080]}, {'from': 'c', 'to': 'a'}])

    def nets(record):
        return [ipaddress.ip_network(record.address), ipaddress.ip_network(record.node_ips[0].ip)]
    on_b1 = segments.allowed(b1, records, policy, nets)
    assert [(a.nets6, a.proto, a.ports) for a in on_b1] == [
        ([ipaddress.ip_network('200:1001::3/128')], None, []),                                   # the gateway (b)
        ([ipaddress.ip_network('200:1001::1/128'), ipaddress.ip_network('200:1001::3/128')], 'tcp', [(8080, 8080)])]
    on_a1 = segments.allowed(a1, records, policy, nets)
    assert [a.why for a in on_a1] == ['the segments of this node', 'c to a']
    assert segments.allowed(a1, records, None, nets) is None
    # through plan.topology: the same, from the records' own addresses
    topo = plan.topology([], b1, records, b1.public_key, policy=policy)
    assert [a.why for a in topo.allow] == ['the segments of this node', 'a to b']


def test_the_filter_chains_let_in_answers_allowed_sources_and_ports_and_drop_the_rest():
    from ansible_collections.wglan.mesh.plugins.module_utils.model import nft_objects
    allow = [segments.Allow([ipaddress.ip_network('200:1001::3/128')]),
             segments.Allow([ipaddress.ip_network('192.0.2.1/32'), ipaddress.ip_network('200:1001::1/128')], 'tcp',
                            [(8080, 8080), (9000, 9100)])]
    objects = nft_objects.desired_objects(nft_objects.RulesConfig('wglan0', [], allow=allow))
    sets = dict((o['set']['name'], o['set']['elem']) for o in objects if 'set' in o and o['set']['name'].startswith('allow'))
    assert sets == {'allow0_6': ['200:1001::3'], 'allow1_4': ['192.0.2.1'], 'allow1_6': ['200:1001::1']}
    rules = [o['rule']['expr'] for o in objects if 'rule' in o and o['rule']['chain'] == 'filter_in']
    assert rules[0][0]['match']['op'] == '!=' and rules[1][0]['match']['right'] == ['established', 'related']
    ports = [r[-2]['match']['right'] for r in rules if len(r) == 4]
    assert ports == [8080, {'range': [9000, 9100]}] * 2  # (IPv4 and IPv6 sources)
    assert rules[-1] == [{'drop': None}]
    # no policy: no filter chain at all
    plain = nft_objects.desired_objects(nft_objects.RulesConfig('wglan0', []))
    assert not [o for o in plain if 'chain' in o and o['chain']['name'].startswith('filter')]
