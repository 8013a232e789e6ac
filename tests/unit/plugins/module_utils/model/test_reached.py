"""Whom a node reaches, by name through a key rotation: what wglan_node notes as a run begins and
wglan_info waits for at its end (the device is read on real wireguard-go in the namespace and lab tests)."""
import base64

from ansible_collections.wglan.mesh.plugins.module_utils.model import liveness


def key(n):
    return base64.b64encode(bytes([n]) * 32).decode('ascii')


def peer(public_key, state):
    return dict(public_key=public_key, state=state)


def status(*rows):
    return dict(peers=[dict(name=name, public_key=k) for name, k in rows])


def test_a_peer_is_named_by_the_watcher_and_reached_when_up_or_relayed_through_one_that_is():
    peers = [peer(key(1), 'up'), peer(key(2), 'down'), peer(key(3), 'unknown'), peer(key(4), 'down')]
    got = liveness.reached(peers, {key(3)}, status(('a', key(1)), ('b', key(2)), ('c', key(3))))
    assert got == {'a': True, 'b': False, 'c': True, key(4): False}


def test_a_rotated_peer_is_the_same_peer_by_its_name():
    before = liveness.reached([peer(key(1), 'up')], set(), status(('a', key(1))))
    after = liveness.reached([peer(key(9), 'up')], set(), status(('a', key(9))))
    assert [n for n, ok in before.items() if ok] == [n for n, ok in after.items() if ok] == ['a']
    # during the overlap the stand-by (the next key, not in the status yet) does not hide the node
    overlap = liveness.reached([peer(key(1), 'up'), peer(key(9), 'unknown')], set(), status(('a', key(1))))
    assert overlap['a'] is True


def test_without_a_watcher_or_with_a_status_that_is_not_ours_peers_are_their_keys():
    peers = [peer(key(1), 'up')]
    for bad in (None, {}, dict(peers='x'), dict(peers=[1, dict(name=3, public_key=key(1))])):
        assert liveness.reached(peers, set(), bad) == {key(1): True}
