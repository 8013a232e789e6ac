"""Relay choice and allowed-IP moves (relay.py), and the sweeper's bookkeeping (watcher.Sweeper)."""
import base64
import ipaddress

from ansible_collections.wglan.mesh.plugins.module_utils import mesh, relay
from ansible_collections.wglan.mesh.plugins.module_utils.kubernetes_source import annotations_for_record
from ansible_collections.wglan.mesh.plugins.module_utils.peers import Peer
from ansible_collections.wglan.mesh.plugins.module_utils.watcher import Sweeper


def key(n):
    return base64.b64encode(n.to_bytes(32, 'big')).decode()


A, B, HUB, HUB2, C = key(1), key(2), key(3), key(4), key(5)


def record(name, k, observed=(), relay_on=False):
    raw = dict(name=name, public_key=k, node_ips=['192.0.2.%d/26' % (ord(k[-2]) % 60 + 1)],
               observed=dict((o, '203.0.113.9:51820') for o in observed))
    if relay_on:
        raw['relay'] = True
    return mesh.parse_record(raw)


def test_the_relay_flag_survives_every_record_form():
    on = record('hub1', HUB, relay_on=True)
    assert on.relay and on.as_dict()['relay'] is True
    assert mesh.parse_record(on.as_dict()).relay
    off = record('a1', A)
    assert not off.relay and 'relay' not in off.as_dict()  # old records read and write the same
    assert not mesh.parse_record(dict(off.as_dict(), relay='yes')).relay  # only a real true counts
    assert annotations_for_record(on.as_dict())['wglan.mesh/relay'] == 'true'
    assert annotations_for_record(off.as_dict())['wglan.mesh/relay'] == 'false'


def test_a_relay_must_offer_it_and_reach_both_ends_and_both_ends_choose_alike():
    records = [record('a1', A), record('b1', B),
               record('hub2', HUB2, [A, B], relay_on=True),
               record('hub1', HUB, [A, B], relay_on=True),
               record('c1', C, [A, B]),                       # reaches both but does not offer
               ]
    assert relay.relay_candidates(A, B, records) == sorted([HUB, HUB2])
    # both ends see both hubs up: the same (smallest) key on each side
    assert relay.choose_relay(A, B, records, {HUB, HUB2, C}) == relay.choose_relay(B, A, records, {HUB, HUB2, C})
    assert relay.choose_relay(A, B, records, {HUB, HUB2}) == min(HUB, HUB2)
    # the first candidate not up here: no relay yet, never another one (the two ends would split)
    assert relay.choose_relay(A, B, records, {max(HUB, HUB2)}) is None
    assert relay.choose_relay(A, B, records, set()) is None
    # a hub that does not see B cannot relay to B
    blind = [record('a1', A), record('b1', B), record('hub1', HUB, [A], relay_on=True)]
    assert relay.choose_relay(A, B, blind, {HUB}) is None


def net(text):
    return ipaddress.ip_network(text)


def test_relayed_addresses_move_onto_the_relay_and_back():
    peers = [Peer(B, '203.0.113.102:51820', [net('192.0.2.74/32'), net('10.244.2.0/24')]),
             Peer(HUB, '203.0.113.10:51820', [net('203.0.113.10/32')]),
             Peer(C, None, [net('192.0.2.80/32')])]
    moved = relay.apply_relays(peers, {B: HUB})
    by_key = dict((p.public_key, p) for p in moved)
    assert list(by_key[B].allowed_ips) == [] and by_key[B].endpoint == '203.0.113.102:51820'  # still swept
    assert sorted(by_key[HUB].allowed_ips) == sorted([net('203.0.113.10/32'), net('192.0.2.74/32'), net('10.244.2.0/24')])
    assert list(by_key[C].allowed_ips) == [net('192.0.2.80/32')]
    assert [p.allowed_ips for p in relay.apply_relays(peers, {})] == [p.allowed_ips for p in peers]
    # a relay that is gone, or itself relayed, or the peer itself: the peer stays direct
    for bad in ({B: key(9)}, {B: HUB, HUB: C}, {B: B}):
        kept = dict((p.public_key, p) for p in relay.apply_relays(peers, bad))
        assert kept[B].allowed_ips == peers[0].allowed_ips, bad


def test_relays_file_round_trip_and_bad_files(tmp_path):
    path = str(tmp_path / 'paths.json')
    assert relay.read_relays(path) == {}
    relay.write_relays({B: HUB}, path)
    assert relay.read_relays(path) == {B: HUB}
    with open(path, 'w') as handle:
        handle.write('{not json')
    assert relay.read_relays(path) == {}  # unreadable: no relays, never a crash
    with open(path, 'w') as handle:
        handle.write('{"relays": {"x": 1}}')
    assert relay.read_relays(path) == {}


def test_sweeper_moves_after_the_interval_and_reports_exhaustion():
    sweeper = Sweeper(6.0)
    options = {B: [('198.51.100.1:1', 'observed'), ('198.51.100.2:2', 'observed'), ('192.0.2.74:51820', 'own')]}
    chosen, moved = sweeper.endpoints(options, set(), 100.0)
    assert chosen == {B: '198.51.100.1:1'} and moved == {B}  # first sight: kick at once
    chosen, moved = sweeper.endpoints(options, set(), 105.9)
    assert chosen == {B: '198.51.100.1:1'} and moved == set()
    assert not sweeper.exhausted(B, 3, 105.9)
    chosen, moved = sweeper.endpoints(options, set(), 106.0)
    assert chosen == {B: '198.51.100.2:2'} and moved == {B}
    chosen, moved = sweeper.endpoints(options, set(), 112.0)
    assert chosen == {B: '192.0.2.74:51820'}
    assert not sweeper.exhausted(B, 3, 117.9)
    assert sweeper.exhausted(B, 3, 118.0)  # every candidate held a full interval
    chosen, moved = sweeper.endpoints(options, set(), 118.0)
    assert chosen == {B: '198.51.100.1:1'} and moved == {B}  # round again
    # up: forgotten, nothing chosen
    chosen, moved = sweeper.endpoints(options, {B}, 119.0)
    assert chosen == {} and moved == set() and not sweeper.exhausted(B, 3, 200.0)
