"""Key rotation in the model: a record's next key, the stand-by, the switch at the announced time, the
old record superseded, relays kept through a switch; and the watcher's key_lifetime option."""
import base64
import ipaddress

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.model import plan, source_merge, watcher_options
from ansible_collections.wglan.mesh.plugins.module_utils.model.keys import pair_preshared_key
from ansible_collections.wglan.mesh.plugins.module_utils.model.node_records import parse_record


def key(n):
    return base64.b64encode(bytes([n]) * 32).decode('ascii')


ME, OLD, NEW, OTHER = key(1), key(2), key(3), key(4)
AT = 1800000000


def raw(name, public_key, address, **extra):
    data = dict(name=name, public_key=public_key, address=address, node_ips=['192.0.2.%d/24' % len(name)], port=51820)
    data.update(extra)
    return data


def topo(*raws, secret='token'):
    records = [parse_record(r) for r in raws]
    me = next(r for r in records if r.public_key == ME)
    return plan.topology([], me, records, ME, psk_secret=secret)


def by_key(peers):
    return dict((p.public_key, p) for p in peers)


def test_a_record_carries_its_next_key_and_bad_ones_are_refused():
    record = parse_record(raw('b', OLD, '200:1001::2', next_public_key=NEW, next_key_at=AT))
    assert record.next_key == (NEW, AT) and record.as_dict()['next_public_key'] == NEW
    for bad in (dict(next_public_key='x', next_key_at=AT), dict(next_public_key=NEW, next_key_at='soon'),
                dict(next_public_key=NEW), dict(next_public_key=OLD, next_key_at=AT),
                dict(next_public_key=NEW, next_key_at=True)):
        with pytest.raises(WglanError):
            parse_record(raw('b', OLD, '200:1001::2', **bad))


def test_before_the_switch_the_next_key_stands_by_and_at_it_takes_the_peers_place():
    t = topo(raw('me', ME, '200:1001::1'), raw('b', OLD, '200:1001::2', next_public_key=NEW, next_key_at=AT))
    before = by_key(plan.plan(t, None, now=AT - 1).peers)
    assert set(before) == {OLD, NEW}
    assert before[NEW].allowed_ips == () and before[NEW].persistent_keepalive == 0
    assert before[NEW].preshared_key == pair_preshared_key('token', ME, NEW)
    assert ipaddress.ip_network('200:1001::2/128') in before[OLD].allowed_ips
    after = by_key(plan.plan(t, None, now=AT + plan.PEER_SWITCH_LAG).peers)
    assert set(after) == {NEW}
    assert after[NEW].allowed_ips == before[OLD].allowed_ips
    assert after[NEW].preshared_key == pair_preshared_key('token', ME, NEW)
    assert after[NEW].persistent_keepalive == before[OLD].persistent_keepalive
    lag = plan.PEER_SWITCH_LAG
    assert plan.next_rotation(t, AT - 5) == AT + lag and plan.next_rotation(t, AT + lag) is None


def test_the_record_with_the_new_key_supersedes_the_old_one():
    t = topo(raw('me', ME, '200:1001::1'), raw('b', OLD, '200:1001::2', next_public_key=NEW, next_key_at=AT),
             raw('b', NEW, '200:1001::2'))
    for now in (AT - 10, AT + 10):
        assert set(by_key(plan.plan(t, None, now=now).peers)) == {NEW}


def test_this_nodes_own_record_from_before_its_switch_is_not_a_peer():
    t = plan.topology([], parse_record(raw('me', NEW, '200:1001::1')),
                      [parse_record(raw('me', ME, '200:1001::1', next_public_key=NEW, next_key_at=AT)),
                       parse_record(raw('c', OTHER, '200:1001::4'))], NEW)
    assert set(by_key(plan.plan(t, None, now=AT + 1).peers)) == {OTHER}


def test_a_relayed_peer_stays_relayed_through_its_switch_and_the_relays():
    relays = {OLD: OTHER, OTHER: OLD}
    assert plan.switched_keys(relays, {OLD: (NEW, AT, None)}, AT - 1) == relays
    assert plan.switched_keys(relays, {OLD: (NEW, AT, None)}, AT + plan.PEER_SWITCH_LAG) == {NEW: OTHER, OTHER: NEW}


@pytest.mark.parametrize('given,seconds', [(0, 0), ('0', 0), ('90d', 90 * 86400), ('12h', 43200), ('30m', 1800),
                                           ('3600', 3600), (7200, 7200), ('90s', 90)])
def test_key_lifetime_takes_seconds_or_units(given, seconds):
    assert watcher_options.validate(dict(key_lifetime=given))['key_lifetime'] == seconds


@pytest.mark.parametrize('given', ['soon', '-1', -5, True, '5w', ''])
def test_a_bad_key_lifetime_is_refused_by_name(given):
    with pytest.raises(WglanError) as err:
        watcher_options.validate(dict(key_lifetime=given))
    assert 'key_lifetime' in str(err.value)


def test_a_key_lifetime_shorter_than_two_overlaps_is_refused():
    with pytest.raises(WglanError) as err:
        watcher_options.validate(dict(key_lifetime=50, key_overlap=30))
    assert 'twice key_overlap' in str(err.value)


def test_after_its_own_switch_a_node_makes_every_preshared_key_again_also_with_a_peers_next_key():
    from ansible_collections.wglan.mesh.plugins.module_utils.model.peers import Peer
    rotating = raw('b', OLD, '200:1001::2', next_public_key=NEW, next_key_at=AT)
    records = [parse_record(raw('me', ME, '200:1001::1')), parse_record(rotating)]
    explicit = Peer(OTHER, '192.0.2.99:51820', [ipaddress.ip_network('192.0.2.99/32')], preshared_key=key(9))
    t = plan.topology([explicit], records[0], records, ME, psk_secret='token')
    mine = key(7)
    switched = plan.with_own_key(t, mine, 'token')
    peers = by_key(switched.peers)
    assert peers[OLD].preshared_key == pair_preshared_key('token', mine, OLD) != by_key(t.peers)[OLD].preshared_key
    assert peers[OTHER].preshared_key == key(9)  # a peer the user gave keeps the key the user gave
    assert switched.rotations[OLD][2] == pair_preshared_key('token', mine, NEW)
    after = by_key(plan.rotated(switched.peers, switched.rotations, AT + 1))
    assert after[NEW].preshared_key == pair_preshared_key('token', mine, NEW)
    assert t.rotations[OLD][2] == pair_preshared_key('token', ME, NEW)  # (the topology itself is not changed)


# A rotation seen through two sources: the inventory's record (made by the last run, so it has the old
# key and no next key) and a live source's (the node's own, up to date). The defaults of the node role
# have both when a discovery service or Kubernetes is configured.
MID = key(5)


def inventory_and_live(live, successors=None, warnings=None):
    inventory = [parse_record(raw('me', ME, '200:1001::1')), parse_record(raw('b', OLD, '200:1001::2'))]
    return source_merge.merge(inventory, [parse_record(r) for r in live], (warnings if warnings is not None else []).append,
                              'discovery', live=True, successors=successors)


def test_the_next_key_a_live_source_announces_reaches_the_inventorys_record_of_the_node():
    merged = inventory_and_live([raw('b', OLD, '200:1001::2', next_public_key=NEW, next_key_at=AT)])
    t = plan.topology([], merged[0], merged, ME, psk_secret='token')
    assert t.rotations[OLD][:2] == (NEW, AT)
    assert set(by_key(plan.plan(t, None, now=AT - 1).peers)) == {OLD, NEW}
    assert set(by_key(plan.plan(t, None, now=AT).peers)) == {NEW}


def test_after_the_switch_the_new_key_takes_the_inventorys_record_when_the_old_key_announced_it():
    warnings = []
    merged = inventory_and_live([raw('b', NEW, '200:1001::2', node_ips=['198.51.100.9/24'])],
                                successors={OLD: [NEW, AT]}, warnings=warnings)
    assert [(r.name, r.public_key) for r in merged] == [('me', ME), ('b', NEW)] and not warnings
    assert [str(i) for i in merged[1].node_ips] == ['198.51.100.9/24'] and merged[1].next_key is None
    t = plan.topology([], merged[0], merged, ME, psk_secret='token')
    assert set(by_key(t.peers)) == {NEW}
    assert ipaddress.ip_network('200:1001::2/128') in by_key(t.peers)[NEW].allowed_ips


def test_through_several_rotations_and_never_without_an_announcement():
    assert [r.public_key for r in inventory_and_live([raw('b', NEW, '200:1001::2')],
                                                     successors={OLD: [MID, AT], MID: [NEW, AT + 60]})] == [ME, NEW]
    # a member that takes the name with a key of its own: the inventory's node stays, with a warning
    for successors in (None, {}, {NEW: [OLD, AT]}, {OTHER: [NEW, AT]}, {OLD: [OLD, AT]}, {OLD: [MID, AT], MID: [OLD, AT]}):
        warnings = []
        merged = inventory_and_live([raw('b', NEW, '200:1001::2')], successors=successors, warnings=warnings)
        assert [r.public_key for r in merged] == [ME, OLD], successors
        assert 'has another public key' in warnings[0]


def test_announcements_are_kept_bounded_and_what_is_not_one_is_dropped():
    fresh = source_merge.announced([parse_record(raw('b', OLD, '200:1001::2', next_public_key=NEW, next_key_at=AT))])
    assert fresh == {OLD: [NEW, AT]}
    kept = source_merge.kept_successors({MID: [OTHER, AT - 10], 'x': 'y', OTHER: [1, 2], NEW: [ME, True]}, fresh)
    assert kept == {MID: [OTHER, AT - 10], OLD: [NEW, AT]}
    assert source_merge.kept_successors(['not', 'a', 'dict'], {}) == {}
    many = dict((key(n), [key(n + 1), AT + n]) for n in range(1, 200))
    source_merge_kept = source_merge.SUCCESSORS_KEPT
    try:
        source_merge.SUCCESSORS_KEPT = 50
        bounded = source_merge.kept_successors(many, {})
    finally:
        source_merge.SUCCESSORS_KEPT = source_merge_kept
    assert len(bounded) == 50 and min(at for _k, at in bounded.values()) == AT + 150  # the latest stay


@settings(max_examples=150, deadline=None)
@given(st.lists(st.tuples(st.integers(10, 30), st.integers(10, 30)), max_size=12), st.integers(10, 30))
def test_merge_gives_each_name_one_record_and_a_new_key_only_through_announcements(links, live_key):
    successors = dict((key(a), [key(b), AT]) for a, b in links)
    warnings = []
    merged = inventory_and_live([raw('b', key(live_key), '200:1001::2')], successors=successors, warnings=warnings)
    assert sorted(r.name for r in merged) == ['b', 'me']
    b = next(r for r in merged if r.name == 'b')
    if b.public_key == key(live_key):
        assert source_merge.succeeds(successors, OLD, key(live_key))
    else:
        assert b.public_key == OLD


@pytest.mark.parametrize('params, refused', [
    (dict(watcher=True, discovery_urls=['https://203.0.113.10:8443'], cluster_token='t'), None),
    (dict(watcher=True, discovery_url='https://203.0.113.10:8443', cluster_token='t'), None),
    (dict(watcher=True, kubernetes=True), None),
    (dict(watcher=True, kubeconfig='/etc/wglan/kubeconfig'), None),
    (dict(watcher=True, members=['a', 'b'], records=[]), 'needs a live source'),
    (dict(watcher=True, discovery_urls=['https://203.0.113.10:8443']), 'needs a live source'),  # no token
    (dict(watcher=False, kubernetes=True), 'needs the watcher'),
])
def test_a_rotation_is_refused_with_the_reason_where_the_peers_could_not_follow(params, refused):
    from ansible_collections.wglan.mesh.plugins.module_utils.model import settings as mesh_settings
    why = mesh_settings.rotation_refused(params)
    assert (why is None) if refused is None else (refused in why)


def test_wglan_rotate_key_refuses_at_once_without_a_live_source(tmp_path, capsys):
    """`wglan rotate-key --wait 90` on a node whose settings have the inventory alone: refused at once, with
    the reason, and no request is left for the watcher (it used to wait the whole 90 s)."""
    import json
    from ansible_collections.wglan.mesh.plugins.module_utils.daemon import cli
    settings_path, config = tmp_path / 'settings.json', tmp_path / 'watcher.json'
    request = tmp_path / 'rotate-key'
    settings_path.write_text(json.dumps(dict(watcher=True, members=['a'], records=[],
                                             private_key_path=str(tmp_path / 'private.key'))))
    config.write_text(json.dumps(dict(rotate_request=str(request))))
    assert cli.main(['rotate-key', '--wait', '90', '--settings', str(settings_path), '--config', str(config)]) == 1
    assert 'needs a live source' in capsys.readouterr().err and not request.exists()


def test_a_node_that_withdrew_is_dropped_from_every_source_until_it_is_back():
    """A node that left (state absent) publishes a withdrawal signed with its key: its peers drop it, also the
    inventory's record of it from the last run, keep that across reconciles, and take it again when a record
    of the same key that is not a withdrawal comes (it joined again)."""
    inventory = [parse_record(raw('me', ME, '200:1001::1')), parse_record(raw('b', OLD, '200:1001::2'))]
    left = parse_record(raw('b', OLD, '200:1001::2', withdrawn=True))
    withdrawn = source_merge.withdrawals({}, [left], 1000)
    assert withdrawn == {OLD: 1000}
    assert [r.name for r in source_merge.without_withdrawn(inventory, withdrawn)] == ['me']
    assert source_merge.without_withdrawn([left], {}) == []  # (a withdrawal is never a peer)
    kept = source_merge.withdrawals(withdrawn, [], 2000)  # the source no longer has it (its TTL): still gone
    assert kept == {OLD: 1000}
    back = source_merge.withdrawals(kept, [parse_record(raw('b', OLD, '200:1001::2'))], 3000)
    assert back == {} and len(source_merge.without_withdrawn(inventory, back)) == 2
    assert source_merge.withdrawals({'x': 'y', OLD: True, NEW: 5}, [], 0) == {NEW: 5}
