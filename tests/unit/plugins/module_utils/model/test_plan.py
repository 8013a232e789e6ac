"""model.plan: the one pure plan every front end shares, tested directly (no netlink, no device).

Properties (hypothesis):
- idempotence: applying the plan's operations to the device it was made for gives a device for which
  a new plan has nothing to do;
- relays and sweeps never take a peer's addresses off the device without putting them on its relay;
- the targets are exactly the addresses on the device's peers, and the routed ones never more.
"""
import base64
import ipaddress

from hypothesis import given, settings, strategies as st

from ansible_collections.wglan.mesh.plugins.module_utils.model import liveness, plan
from ansible_collections.wglan.mesh.plugins.module_utils.model.device import DeviceState, PeerStats
from ansible_collections.wglan.mesh.plugins.module_utils.model.node_records import NodeRecord
# (apply_ops: what the device holds after the operations, the view the applier's diff shows; the
# property runs hundreds of plans, which wireguard-go runs for real in tests/integration)
from ansible_collections.wglan.mesh.plugins.module_utils.model.peers import Peer, PeerOp, apply_ops

NOW = 1000000.0


def key(n):
    return base64.b64encode(bytes([n]) * 32).decode()


def record(n, observed=None, net='192.0.2'):
    return NodeRecord('n%d' % n, key(n), ipaddress.IPv6Address('200:1001::%x' % n),
                      [ipaddress.ip_interface('%s.%d/24' % (net, n))], 51820, observed=observed)


@st.composite
def worlds(draw):
    """A mesh of 2-7 records seen from node 1, a device holding some of its peers (some with stale
    endpoints, some up), and the watcher's observations: swept endpoints and relays."""
    count = draw(st.integers(2, 7))
    records = [record(n) for n in range(1, count + 1)]
    me = records[0]
    topo = plan.topology([], me, records, me.public_key)
    keys = [p.public_key for p in topo.peers]
    on_device = draw(st.lists(st.sampled_from(keys), unique=True)) if keys else []
    device_peers, stats = [], {}
    for k in on_device:
        peer = next(p for p in topo.peers if p.public_key == k)
        endpoint = draw(st.sampled_from([peer.endpoint, '198.51.100.9:51820', None]))
        allowed = draw(st.sampled_from([peer.allowed_ips, [], peer.allowed_ips[:1]]))
        running = peer.replace(endpoint=endpoint, allowed_ips=allowed, endpoint_fallback=False)
        device_peers.append(running)
        stats[running.key_hex] = PeerStats(NOW - draw(st.sampled_from([5, 100, 400])), 10, 10)
    extra = draw(st.booleans())
    if extra:  # a peer nobody asked for (purge removes it)
        device_peers.append(Peer(key(200), '203.0.113.5:51820', [ipaddress.ip_network('203.0.113.5/32')]))
    device = DeviceState(b'k' * 32, 51820, 0x20, device_peers, stats)
    swept = dict((k, draw(st.sampled_from(['203.0.113.%d:51820' % n for n in range(1, 4)])))
                 for k in draw(st.lists(st.sampled_from(keys), unique=True)))
    relays = {}
    for k in draw(st.lists(st.sampled_from(keys), unique=True)):
        relays[k] = draw(st.sampled_from(keys))
    alive = set(draw(st.lists(st.sampled_from(keys), unique=True)))
    seen = plan.Observations(alive=alive, swept=swept, relays=relays, keep_endpoints=draw(st.booleans()))
    return topo, device, seen, draw(st.booleans())


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_applying_the_plan_then_planning_again_plans_nothing(world):
    topo, device, seen, purge = world
    first = plan.plan(topo, device, seen, NOW, purge=purge)
    after = DeviceState(device.private_key, device.listen_port, device.fwmark,
                        apply_ops(device.peers, first.peers, first.ops), device.stats)
    second = plan.plan(topo, after, seen, NOW, purge=purge)
    assert second.ops == []
    assert second.peers == first.peers


@settings(max_examples=300, deadline=None)
@given(worlds())
def test_relays_and_sweeps_never_drop_a_peers_addresses_without_moving_them_onto_its_relay(world):
    topo, device, seen, purge = world
    result = plan.plan(topo, device, seen, NOW, purge=purge)
    final = dict((p.public_key, set(p.allowed_ips)) for p in result.peers)
    assert set(final) == set(p.public_key for p in topo.peers)  # no peer lost, none made up
    for peer in topo.peers:
        for net in peer.allowed_ips:
            holder = seen.relays.get(peer.public_key)
            assert net in final[peer.public_key] or (holder in final and net in final[holder]), \
                (peer.name, net, seen.relays)


@settings(max_examples=200, deadline=None)
@given(worlds())
def test_targets_are_the_device_peers_addresses_and_only_up_ones_are_routed(world):
    topo, device, seen, purge = world
    result = plan.plan(topo, device, seen, NOW, purge=purge)
    on_peers = set(str(n) for p in result.peers for n in p.allowed_ips)
    assert set(result.targets) == on_peers
    assert set(result.routed) <= on_peers
    for peer in result.peers:
        if peer.public_key not in seen.alive:
            assert not set(str(n) for n in peer.allowed_ips) & set(result.routed) - set(
                str(n) for p in result.peers if p.public_key in seen.alive for n in p.allowed_ips)


def test_a_run_routes_everything_and_judges_up_by_handshakes():
    records = [record(1, net='203.0.113'), record(2), record(3)]  # (not on the peers' link: their endpoints are guesses)
    topo = plan.topology([], records[0], records, records[0].public_key)
    p2 = next(p for p in topo.peers if p.name == 'n2')
    device = DeviceState(b'k' * 32, 51820, 0x20, [p2.replace(endpoint='198.51.100.7:51820')],
                         {p2.key_hex: PeerStats(NOW - 10)})
    result = plan.plan(topo, device, None, NOW)
    assert result.up == set([p2.public_key])
    assert result.routed == result.targets
    assert result.states == {p2.public_key: liveness.UP, key(3): liveness.UNKNOWN}
    # n2 is up at an endpoint it roamed to: the fallback guess does not replace it; n3 is added
    assert [(op.action, op.public_key) for op in result.ops] == [(PeerOp.ADD, key(3))]


def test_beside_the_watcher_a_run_keeps_every_running_endpoint_and_the_watchers_relays():
    records = [record(1, net='203.0.113'), record(2), record(3)]
    topo = plan.topology([], records[0], records, records[0].public_key)
    p2, p3 = sorted(topo.peers, key=lambda p: p.name)
    device = DeviceState(b'k' * 32, 51820, 0x20, [p2.replace(endpoint='198.51.100.7:51820', allowed_ips=[]),
                                                  p3.replace(allowed_ips=p3.allowed_ips + p2.allowed_ips)], {})
    seen = plan.Observations(relays={p2.public_key: p3.public_key}, keep_endpoints=True)
    assert plan.plan(topo, device, seen, NOW).ops == []
    # without the watcher's relays the same run would undo them
    undo = plan.plan(topo, device, plan.Observations(keep_endpoints=True), NOW).ops
    assert sorted(op.public_key for op in undo) == sorted([p2.public_key, p3.public_key])


def test_a_moved_peer_tries_its_new_place_first():
    me = record(1)
    moved = record(2, observed={})
    moved.extra_endpoints = []
    observer = record(3, observed={key(2): '203.0.113.50:40000'})
    moved.public_ip = ipaddress.ip_address('203.0.113.77')
    topo = plan.topology([], me, [me, moved, observer], me.public_key)
    before = [reason for _e, reason in plan.candidates_of(topo)[key(2)]]
    after = [reason for _e, reason in plan.candidates_of(topo, moved={key(2)})[key(2)]]
    assert before.index('observed') < before.index('discovery')
    assert after.index('discovery') < after.index('observed')


def test_stale_is_shown_only_for_a_peer_up_by_its_handshake():
    assert liveness.peer_state(NOW - 10, NOW, stale=True) == liveness.STALE
    assert liveness.peer_state(NOW - 400, NOW, stale=True) == liveness.DOWN
    assert liveness.peer_state(0, NOW) == liveness.UNKNOWN


def test_the_record_to_publish_carries_observations_relays_and_port():
    base = dict(name='n1', public_key=key(1), port=51820, observed={key(9): '192.0.2.9:1'})
    out = plan.record_to_publish(base, {key(2): '192.0.2.2:51820'}, {key(3): key(4)}, 51833)
    assert out['observed'] == {key(2): '192.0.2.2:51820'} and out['relays'] == {key(3): key(4)}
    assert out['port'] == 51833 and base['port'] == 51820
    assert plan.record_to_publish(None, {}, {}) is None
