"""Relay choice and allowed-IP moves (relay.py), and the sweeper's bookkeeping (watcher.Sweeper)."""
import base64
import ipaddress

from ansible_collections.wglan.mesh.plugins.module_utils.sources import kubernetes
from ansible_collections.wglan.mesh.plugins.module_utils.model import node_records
from ansible_collections.wglan.mesh.plugins.module_utils.model import relay
from ansible_collections.wglan.mesh.plugins.module_utils.host import watcher_state
from ansible_collections.wglan.mesh.plugins.module_utils.sources.kubernetes import annotations_for_record
from ansible_collections.wglan.mesh.plugins.module_utils.model.peers import Peer
from ansible_collections.wglan.mesh.plugins.module_utils.daemon.sweeper import Sweeper
from ansible_collections.wglan.mesh.plugins.module_utils.daemon.sweeper import pick as watcher_pick


def key(n):
    return base64.b64encode(n.to_bytes(32, 'big')).decode()


A, B, HUB, HUB2, C = key(1), key(2), key(3), key(4), key(5)


def record(name, k, observed=(), relay_on=False, relays=None):
    raw = dict(name=name, public_key=k, node_ips=['192.0.2.%d/26' % (ord(k[-2]) % 60 + 1)],
               observed=dict((o, '203.0.113.9:51820') for o in observed))
    if relay_on:
        raw['relay'] = relay_on
    if relays is not None:
        raw['relays'] = relays
    return node_records.parse_record(raw)


def test_the_relay_flag_survives_every_record_form():
    on = record('hub1', HUB, relay_on=True)
    assert on.relay and on.as_dict()['relay'] is True
    assert node_records.parse_record(on.as_dict()).relay
    off = record('a1', A)
    assert not off.relay and 'relay' not in off.as_dict()  # old records read and write the same
    assert not node_records.parse_record(dict(off.as_dict(), relay='yes')).relay  # only a real true counts
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
    # the best candidate this node sees up (the pair's leader decides, so the ends do not split: agree())
    assert relay.choose_relay(A, B, records, {max(HUB, HUB2)}) == max(HUB, HUB2)
    assert relay.choose_relay(A, B, records, set()) is None
    # the relay in use stays while it is up: a warm path beats a better-ranked cold one
    assert relay.choose_relay(A, B, records, {HUB, HUB2}, current=max(HUB, HUB2)) == max(HUB, HUB2)
    assert relay.choose_relay(A, B, records, {HUB}, current=HUB2) == HUB
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


def test_watcher_state_file_round_trip_and_bad_files(tmp_path):
    path = str(tmp_path / 'paths.json')
    assert watcher_state.read_relays(path) == {}
    watcher_state.write(watcher_state.WatcherState({B: HUB}), path)
    assert watcher_state.read_relays(path) == {B: HUB}
    with open(path, 'w') as handle:
        handle.write('{not json')
    assert watcher_state.read_relays(path) == {}  # unreadable: no relays, never a crash
    with open(path, 'w') as handle:
        handle.write('{"relays": {"x": 1}}')
    assert watcher_state.read_relays(path) == {}
    # what the record asks for, the port moved to and the host's addresses travel in the same file
    state = watcher_state.read(path)
    assert state.published is None and state.port is None and state.node_ips is None
    watcher_state.write(watcher_state.WatcherState({B: HUB}, {A: HUB}, 51837, ['192.0.2.7/24']), path)
    state = watcher_state.read(path)
    assert (state.relays, state.published, state.port, state.node_ips) == ({B: HUB}, {A: HUB}, 51837, ['192.0.2.7/24'])
    watcher_state.write(watcher_state.WatcherState({}, {}), path)
    assert watcher_state.read(path).published == {} and watcher_state.read(path).port is None
    for odd in ('{"port": true}', '{"port": 70000}', '{"port": "51821"}', '[]', '{"node_ips": ["nonsense"]}'):
        with open(path, 'w') as handle:
            handle.write(odd)
        assert watcher_state.read(path).port is None and watcher_state.read(path).node_ips is None, odd
    # the IPv4 overlay address the watcher moved to: an IPv4 address or nothing
    watcher_state.write(watcher_state.WatcherState({}, address4='198.51.100.9'), path)
    assert watcher_state.read(path).address4 == '198.51.100.9'
    for odd in ('{"address4": "2001:db8::1"}', '{"address4": 7}', '{"address4": "198.51.100.300"}'):
        with open(path, 'w') as handle:
            handle.write(odd)
        assert watcher_state.read(path).address4 is None, odd


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


def test_a_relayed_peer_s_favourite_endpoint_gets_two_slots_of_three():
    sweeper = Sweeper(6.0)
    options = {B: [('198.51.100.1:1', 'observed'), ('198.51.100.2:2', 'discovery'), ('192.0.2.74:51820', 'own')]}
    favourite = {B: '198.51.100.2:2'}
    slots = []
    for step in range(9):
        chosen, moved = sweeper.endpoints(options, set(), 100.0 + 6 * step, favourite)
        assert moved == {B}  # each slot kicks a handshake
        slots.append(chosen[B])
    assert [s for i, s in enumerate(slots) if i % 3 != 2] == ['198.51.100.2:2'] * 6
    assert [s for i, s in enumerate(slots) if i % 3 == 2] == ['198.51.100.1:1', '192.0.2.74:51820', '198.51.100.1:1']
    # a favourite that is the only candidate, or one not among them, is simply held
    assert watcher_pick([('198.51.100.9:9', 'observed')], 2, '198.51.100.9:9') == '198.51.100.9:9'
    assert watcher_pick([('198.51.100.9:9', 'observed')], 1, '203.0.113.5:5') == '203.0.113.5:5'
    assert watcher_pick([('198.51.100.9:9', 'observed')], 2, '203.0.113.5:5') == '198.51.100.9:9'


def test_a_preferred_relay_comes_first_and_the_flag_survives_every_record_form():
    records = [record('a1', A), record('b1', B), record('hub1', HUB, [A, B], relay_on=True),
               record('hub2', HUB2, [A, B], relay_on='preferred')]
    assert relay.relay_candidates(A, B, records) == [HUB2, HUB]  # preferred before the smaller key
    preferred = records[3]
    assert preferred.as_dict()['relay'] == 'preferred' and node_records.parse_record(preferred.as_dict()).relay == 'preferred'
    annotations = annotations_for_record(preferred.as_dict())
    assert annotations['wglan.mesh/relay'] == 'preferred'
    node = dict(metadata=dict(name='hub2', annotations=annotations))
    assert kubernetes.record_from_node(node).relay == 'preferred'


def test_relays_published_in_a_record_survive_every_form_and_odd_entries_are_dropped():
    rec = record('a1', A, relays={B: HUB, 'not a key': HUB, C: 'nor this'})
    assert rec.relays == {B: HUB}
    assert node_records.parse_record(rec.as_dict()).relays == {B: HUB}
    assert record('b1', B).relays is None and 'relays' not in record('b1', B).as_dict()
    assert record('b1', B, relays={}).relays == {}
    node = dict(metadata=dict(name='a1', annotations=annotations_for_record(rec.as_dict())))
    assert kubernetes.record_from_node(node).relays == {B: HUB}
    node = dict(metadata=dict(name='b1', annotations=annotations_for_record(record('b1', B).as_dict())))
    assert kubernetes.record_from_node(node).relays is None
    # a node's observations and relays are caches: they never make a record "changed"
    assert node_records.without_observations(rec.as_dict()) == node_records.without_observations(
        dict(rec.as_dict(), relays={}, observed={}))


def world(a_relays=None, b_relays=None, hubs=(HUB, HUB2)):
    """Records as both ends see them: a1 and b1 (A < B, so a1 leads the pair), hubs that reach both."""
    out = [record('a1', A, relays=a_relays), record('b1', B, relays=b_relays)]
    out.extend(record('hub%d' % i, k, [A, B], relay_on=True) for i, k in enumerate(hubs))
    return out


def test_the_leader_decides_and_the_other_end_follows_its_record():
    # b1 (not the leader) wants a relay: it asks in its record, and uses none until a1's record says one
    use, publish = relay.agree(B, {A}, world(a_relays={}, b_relays={}), {HUB, HUB2}, {})
    assert use == {} and publish == {A: min(HUB, HUB2)}
    # a1 sees b1 up itself, but b1 asked: a1 relays, through the relay a1 chooses, and says so
    use_a, publish_a = relay.agree(A, set(), world(a_relays={}, b_relays=publish), {B, HUB, HUB2}, {})
    assert use_a == publish_a == {B: min(HUB, HUB2)}
    # b1 follows a1's record, even where it would have chosen another relay
    use_b = relay.agree(B, {A}, world(a_relays={B: HUB2}, b_relays=publish), {HUB, HUB2}, {})[0]
    assert use_b == {A: HUB2}
    # ...but only through a relay it sees up (else it has no path to A anyway, and says what it wants)
    use_b, publish_b = relay.agree(B, {A}, world(a_relays={B: HUB2}, b_relays=publish), {HUB}, {})
    assert use_b == {} and publish_b == {A: HUB}


def test_both_ends_agree_whatever_each_sees_and_go_direct_when_neither_asks():
    import itertools
    ups = [set(), {HUB}, {HUB2}, {HUB, HUB2}]
    for up_a, up_b, wants_a, wants_b in itertools.product(ups, ups, (False, True), (False, True)):
        # one round: each publishes, then each reads the other's record
        pub_a = relay.agree(A, {B} if wants_a else set(), world({}, {}), up_a, {})[1]
        pub_b = relay.agree(B, {A} if wants_b else set(), world({}, {}), up_b, {})[1]
        records = world(pub_a, pub_b)
        use_a, pub_a = relay.agree(A, {B} if wants_a else set(), records, up_a, {})
        records = world(pub_a, pub_b)
        use_b = relay.agree(B, {A} if wants_b else set(), records, up_b, {})[0]
        case = (up_a, up_b, wants_a, wants_b, use_a, use_b)
        if use_a and use_b:
            assert use_a[B] == use_b[A], case          # never split over two relays
        if not (wants_a or wants_b):
            assert use_a == {} and use_b == {}, case   # direct when neither end asks
        if use_b:
            assert use_a, case                         # the follower never relays alone
        if (wants_a or (wants_b and up_b)) and up_a:
            assert use_a, case                         # asked for, and a relay is up: the leader relays


def test_a_peer_that_publishes_no_relays_leaves_each_end_to_itself():
    # b1 runs no watcher (no relays in its record): a1 decides alone, as before the agreement
    assert relay.agree(A, {B}, world(a_relays={}, b_relays=None), {HUB}, {})[0] == {B: HUB}
    assert relay.agree(B, {A}, world(a_relays=None, b_relays={}), {HUB}, {})[0] == {A: HUB}


def test_a_better_candidate_restarts_the_sweep_at_once():
    # a run (or a source) tells where another node sees the peer: the sweep goes there now and kicks
    # a handshake, instead of finishing its round of candidates first (up to a sweep per candidate)
    sweeper = Sweeper(6.0)
    before = {B: [('192.0.2.74:51820', 'own')]}
    sweeper.endpoints(before, set(), 100.0)
    chosen, moved = sweeper.endpoints(before, set(), 103.0)
    assert chosen == {B: '192.0.2.74:51820'} and moved == set()
    better = {B: [('203.0.113.102:14640', 'observed'), ('192.0.2.74:51820', 'own')]}
    chosen, moved = sweeper.endpoints(better, set(), 103.5)
    assert chosen == {B: '203.0.113.102:14640'} and moved == {B}
    # the same candidates again, or the best one moving down the list, do not restart it
    chosen, moved = sweeper.endpoints(better, set(), 104.0)
    assert moved == set()
    reordered = {B: [('192.0.2.74:51820', 'own'), ('203.0.113.102:14640', 'observed')]}
    chosen, moved = sweeper.endpoints(reordered, set(), 105.0)
    assert moved == set() and chosen == {B: '192.0.2.74:51820'}
    # the restart counts as a try: with both candidates held a full interval each, a relay is due
    # as soon as it would have been without the restart
    assert not sweeper.exhausted(B, 2, 109.4)
    assert sweeper.exhausted(B, 2, 109.5)
