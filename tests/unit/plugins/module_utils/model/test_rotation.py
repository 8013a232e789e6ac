"""Key rotation in the model: a record's next key, the stand-by, the switch at the announced time, the
old record superseded, relays kept through a switch; and the watcher's key_lifetime option."""
import base64
import ipaddress

import pytest

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.model import plan, watcher_options
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
