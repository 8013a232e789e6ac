import base64
import ipaddress

import pytest

from ansible_collections.wglan.mesh.plugins.module_utils.model import topology
from ansible_collections.wglan.mesh.plugins.module_utils.model import node_records
from ansible_collections.wglan.mesh.plugins.module_utils.sources import inventory
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError


def key(n):
    return base64.b64encode(n.to_bytes(32, 'big')).decode()


def rec(name, n, ips, observed=None, **kw):
    raw = dict(name=name, public_key=key(n), address='200:1001::%x' % n, node_ips=ips, port=51820,
               observed=observed or {})
    raw.update(kw)
    return raw


# hub on the public net; a1, a2 behind NAT A (203.0.113.101); b1 behind NAT B (203.0.113.102)
HUB = rec('hub1', 1, ['203.0.113.10/24'])
A1 = rec('a1', 2, ['192.0.2.10/26'])
A2 = rec('a2', 3, ['192.0.2.11/26'])
B1 = rec('b1', 4, ['192.0.2.74/26'])


def parsed(*raws):
    return [node_records.parse_record(r) for r in raws]


def test_same_link_wins():
    me, peer = parsed(A1, A2)
    assert topology.choose_endpoint(me, peer, [me, peer]) == ('192.0.2.11:51820', 'same-link')


def test_first_contact_uses_own_address():
    me, hub = parsed(A1, HUB)
    assert topology.choose_endpoint(me, hub, [me, hub]) == ('203.0.113.10:51820', 'own-address')


def test_nat_mapping_seen_from_outside_is_used_and_lan_sightings_are_not():
    hub = dict(HUB, observed={key(2): '203.0.113.101:51820'})   # hub sees a1 behind its NAT
    a2 = dict(A2, observed={key(2): '192.0.2.10:51820'})        # a2 sees a1 on the LAN: useless for b1
    b1, a1, hub_r, a2_r = parsed(B1, A1, hub, a2)
    assert topology.choose_endpoint(b1, a1, [b1, a1, hub_r, a2_r]) == ('203.0.113.101:51820', 'observed')


def test_public_node_on_same_subnet_as_nat_wan_still_counts():
    # the hub shares 203.0.113.0/24 with the NAT's WAN address: still a NAT mapping, not a LAN sighting
    hub = dict(HUB, observed={key(2): '203.0.113.101:40001'})
    b1, a1, hub_r = parsed(B1, A1, hub)
    assert topology.choose_endpoint(b1, a1, [b1, a1, hub_r])[0] == '203.0.113.101:40001'


def test_most_common_observation_then_smallest():
    obs = [dict(rec('o%d' % i, 10 + i, ['198.51.100.%d/24' % i]), observed={key(2): ep})
           for i, ep in enumerate(['203.0.113.101:2', '203.0.113.101:1', '203.0.113.101:2'])]
    me, a1 = parsed(B1, A1)
    others = parsed(*obs)
    assert topology.choose_endpoint(me, a1, [me, a1] + others)[0] == '203.0.113.101:2'
    assert topology.choose_endpoint(me, a1, [me, a1] + others[:2])[0] == '203.0.113.101:1'


def test_announced_endpoint_beats_observation():
    a1 = dict(A1, extra_endpoints=['203.0.113.101:51999'])
    hub = dict(HUB, observed={key(2): '203.0.113.101:51820'})
    b1, a1_r, hub_r = parsed(B1, a1, hub)
    assert topology.choose_endpoint(b1, a1_r, [b1, a1_r, hub_r]) == ('203.0.113.101:51999', 'announced')


def test_build_mesh_skips_self_and_never_routes_own_addresses():
    twin = rec('twin', 9, ['192.0.2.10/32'])  # claims a1's own node IP
    me, *others = parsed(A1, HUB, A2, twin)
    peers, choices, warnings = topology.build_mesh(me, [me] + others, keepalive=25)
    assert sorted(p.name for p in peers) == ['a2', 'hub1', 'twin']
    twin_peer = [p for p in peers if p.name == 'twin'][0]
    assert ipaddress.ip_network('192.0.2.10/32') not in twin_peer.allowed_ips
    assert any('twin claims 192.0.2.10/32' in w for w in warnings)
    assert choices['a2'] == ('192.0.2.11:51820', 'same-link')


def test_pod_cidrs_only_with_pod_networking():
    hub = dict(HUB, pod_cidrs=['10.244.1.0/24'])
    me, hub_r = parsed(A1, hub)
    without, _c, _w = topology.build_mesh(me, [me, hub_r])
    with_pods, _c, _w = topology.build_mesh(me, [me, hub_r], pod_networking=True)
    assert ipaddress.ip_network('10.244.1.0/24') not in without[0].allowed_ips
    assert ipaddress.ip_network('10.244.1.0/24') in with_pods[0].allowed_ips


def test_duplicate_public_key_is_skipped_with_warning():
    clone = dict(A2, name='a2-clone')
    me, *others = parsed(A1, A2, clone)
    peers, _c, warnings = topology.build_mesh(me, [me] + others)
    assert [p.name for p in peers] == ['a2']
    assert any('a2-clone' in w for w in warnings)


@pytest.mark.parametrize('raw,fragment', [
    ('nope', 'not a mapping'),
    ({'name': 'x'}, 'no public key'),
    (dict(A1, public_key='bad'), 'not a WireGuard key'),
    (dict(A1, address='192.0.2.1'), 'not an IPv6 address'),
    (dict(A1, node_ips=['nonsense']), 'bad node IP'),
    (dict(A1, port=0), 'port'),
    (dict(A1, version=2), 'version'),
])
def test_bad_records_are_rejected_with_reason(raw, fragment):
    with pytest.raises(WglanError) as err:
        node_records.parse_record(raw, 'x')
    assert fragment in str(err.value)


def test_members_fall_back_to_saved_records_and_drop_leavers():
    warnings = []
    saved = {'a2': A2, 'gone': rec('gone', 7, ['192.0.2.20/26'])}
    records, used = inventory.records_for_members(['a1', 'a2', 'b1'], [A1, None, {'name': 'b1'}], saved,
                                                  warnings.append)
    assert [r.name for r in records] == ['a1', 'a2']
    assert set(used) == {'a1', 'a2'}
    assert not any('a2' in w for w in warnings)  # kept quietly (see below)
    assert any('b1: record skipped: record of b1 has no public key yet' in w for w in warnings)


def test_members_and_records_must_line_up():
    with pytest.raises(WglanError):
        inventory.records_for_members(['a1', 'a2'], [A1], {}, lambda w: None)


def test_discovery_observed_address_is_a_late_candidate():
    a1 = dict(A1, discovery_observed='203.0.113.101')
    b1, a1_r = parsed(B1, a1)
    assert topology.choose_endpoint(b1, a1_r, [b1, a1_r]) == ('203.0.113.101:51820', 'discovery')
    hub = dict(HUB, observed={key(2): '203.0.113.101:40000'})
    b1, a1_r, hub_r = parsed(B1, a1, hub)
    assert topology.choose_endpoint(b1, a1_r, [b1, a1_r, hub_r])[1] == 'observed'
    # a public node seen at its own address: that is just its own address
    hub_seen = dict(HUB, discovery_observed='203.0.113.10')
    b1, hub_r = parsed(B1, hub_seen)
    assert topology.choose_endpoint(b1, hub_r, [b1, hub_r]) == ('203.0.113.10:51820', 'own-address')
    assert node_records.parse_record(a1).as_dict()['discovery_observed'] == '203.0.113.101'


def test_discovery_address_shared_by_two_nodes_is_no_candidate():
    # Behind one NAT only one of them can have its own port on the NAT's address.
    a1 = dict(A1, discovery_observed='203.0.113.101')
    a2 = dict(A2, discovery_observed='203.0.113.101')
    b1, a1_r, a2_r = parsed(B1, a1, a2)
    assert topology.choose_endpoint(b1, a1_r, [b1, a1_r, a2_r])[1] == 'own-address'
    assert topology.choose_endpoint(b1, a1_r, [b1, a1_r])[1] == 'discovery'


def nat_record(name, n, public_ip=None, observed=None):
    raw = dict(name=name, public_key=base64.b64encode(bytes([n]) * 32).decode(), node_ips=['192.0.2.%d/26' % n],
               observed=observed or {})
    if public_ip:
        raw['discovery_observed'] = public_ip
    return node_records.parse_record(raw)


def test_members_behind_one_nat_get_ports_of_their_own_and_every_node_computes_the_same():
    site = [nat_record('a%d' % n, n, '203.0.113.101') for n in range(1, 6)]
    others = [nat_record('hub', 50, '203.0.113.10'), nat_record('b1', 51, '203.0.113.102')]
    records = site + others
    ports = [topology.shared_nat_port(r, records, 51820) for r in site]
    assert len(set(ports)) == len(ports) and all(51820 <= p < 51820 + topology.PORT_SLOTS for p in ports)
    # alone behind its address, or on a public address of its own: the port stays
    assert topology.shared_nat_port(others[0], records, 51820) == 51820
    assert topology.shared_nat_port(others[1], records, 51820) == 51820
    public = nat_record('pub', 60, '192.0.2.60')
    assert topology.shared_nat_port(public, records + [public], 51820) == 51820
    # the same answer whatever order the records come in, and whoever computes it
    assert [topology.shared_nat_port(r, list(reversed(records)), 51820) for r in site] == ports
    # a member that joins moves nobody except one whose slot it takes
    late = nat_record('a9', 9, '203.0.113.101')
    moved = [r.name for r, before in zip(site, ports) if topology.shared_nat_port(r, records + [late], 51820) != before]
    assert len(moved) <= 1
    # no discovery service: what other nodes observe from outside the site tells the same
    seen = dict((r.public_key, '203.0.113.101:%d' % (40000 + i)) for i, r in enumerate(site))
    watcher = nat_record('hub', 50, observed=seen)
    bare = [nat_record('a%d' % n, n) for n in range(1, 6)]
    assert [topology.shared_nat_port(r, bare + [watcher], 51820) for r in bare] == ports
    # nobody knows where it is seen from: the port stays
    assert topology.shared_nat_port(bare[0], bare, 51820) == 51820


def test_a_call_with_no_record_of_this_run_uses_the_kept_ones_quietly():
    # the node role's first call of a run passes no record (or some, with more than five hosts):
    # it peers from what it kept, without a warning per member (a member with nothing kept is named)
    warnings = []
    records, _used = inventory.records_for_members(['a1', 'a2', 'b1'], [None, None, None], {'a1': A1, 'a2': A2},
                                                   warnings.append)
    assert [r.name for r in records] == ['a1', 'a2']
    assert warnings == ['node b1: no record yet; it joins when it has run once']


def test_a_node_keeps_its_shared_nat_port_through_a_key_rotation():
    site = [nat_record('a%d' % n, n, '203.0.113.101') for n in range(1, 6)]
    ports = [topology.shared_nat_port(r, site, 51820) for r in site]
    rotated = nat_record('a3', 99, '203.0.113.101')  # a3 with its next key
    after = [topology.shared_nat_port(r, site[:2] + [rotated] + site[3:], 51820) for r in site[:2] + [rotated] + site[3:]]
    assert after == ports
    # and while both of its records are listed (the old one until the service drops it)
    assert topology.shared_nat_port(rotated, site + [rotated], 51820) == ports[2]


def test_without_a_discovery_service_a_node_keeps_its_port_right_after_its_key_switch():
    """With Kubernetes (no discovery service) where the internet sees a node is what the others observe
    of its key. Right after its switch they have observed only its old key: nobody knows, and the port
    went back to base, the NAT mapping with it (a lab run: 6 s of pings lost). The publisher passes where
    the node was seen last."""
    bare = [nat_record('a%d' % n, n) for n in range(1, 4)]
    seen = dict((r.public_key, '203.0.113.101:%d' % (40000 + i)) for i, r in enumerate(bare))
    watcher = nat_record('hub', 50, observed=seen)
    before = topology.shared_nat_port(bare[0], bare + [watcher], 51820)
    assert before != 51820
    switched = nat_record('a1', 99)  # a1 with its new key, which nobody has observed yet
    records = [switched] + bare[1:] + [watcher]
    assert topology.shared_nat_port(switched, records, 51820) == 51820  # (what it did)
    known = topology.public_address(bare[0], bare + [watcher])  # (what the publisher kept)
    assert topology.shared_nat_port(switched, records, 51820, known=known) == before
