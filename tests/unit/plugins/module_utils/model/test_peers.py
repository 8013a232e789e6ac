import base64
import ipaddress

import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.wglan.mesh.plugins.module_utils.host import names
from ansible_collections.wglan.mesh.plugins.module_utils.model import peers as model
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.model.peers import Peer, PeerOp


def key(n):
    return base64.b64encode(n.to_bytes(32, 'big')).decode()


K1, K2, K3 = key(1), key(2), key(3)


# --- parsing -----------------------------------------------------------------

def test_parse_peer_normalizes():
    peer = model.parse_peer({'public_key': K1, 'endpoint': '[2001:DB8::1]:51820',
                             'allowed_ips': ['192.0.2.1/32', '192.0.2.0/25', '2001:db8::/64']})
    assert peer.endpoint == '[2001:db8::1]:51820'
    assert [str(n) for n in peer.allowed_ips] == ['192.0.2.0/25', '2001:db8::/64']
    assert peer.persistent_keepalive == model.DEFAULT_KEEPALIVE


@pytest.mark.parametrize('raw,fragment', [
    ({'public_key': 'short'}, 'not a WireGuard key'),
    ({}, 'public_key is required'),
    ({'public_key': K1, 'allowed_ips': ['192.0.2.1/24']}, 'invalid allowed IP'),
    ({'public_key': K1, 'allowed_ips': ['300.0.0.1/32']}, 'invalid allowed IP'),
    ({'public_key': K1, 'endpoint': '192.0.2.1'}, 'expected host:port'),
    ({'public_key': K1, 'endpoint': '192.0.2.1:0'}, 'port must be'),
    ({'public_key': K1, 'endpoint': '2001:db8::1:51820'}, 'IPv6 in brackets'),
    ({'public_key': K1, 'endpoint': 'bad_host!:51820'}, 'not an IP address or host name'),
    ({'public_key': K1, 'persistent_keepalive': 70000}, 'between 0 and 65535'),
    ({'public_key': K1, 'preshared_key': 'nope'}, 'preshared_key'),
    ({'public_key': K1, 'colour': 'red'}, 'unknown peer field'),
    ('not a dict', 'mapping'),
])
def test_parse_peer_rejects(raw, fragment):
    with pytest.raises(WglanError) as err:
        model.parse_peer(raw)
    assert fragment in str(err.value)


def test_parse_errors_never_echo_a_preshared_key():
    secret = 'S3cr3t' * 7 + 'xy'
    with pytest.raises(WglanError) as err:
        model.parse_peers([{'public_key': K1, 'preshared_key': secret}])
    assert secret not in str(err.value)


def test_duplicate_public_keys_rejected():
    with pytest.raises(WglanError) as err:
        model.parse_peers([{'public_key': K1}, {'public_key': K2}, {'public_key': K1}])
    assert 'peers[2]: duplicate public key (also peers[0])' in str(err.value)


def test_hostname_endpoint_resolves_locally():
    assert model.parse_endpoint('localhost:51820', resolve=names.resolve) in ('127.0.0.1:51820', '[::1]:51820')
    with pytest.raises(WglanError):
        model.parse_endpoint('localhost:51820', resolve=False)


# --- overlap resolution --------------------------------------------------------

def test_host_address_beats_range_regardless_of_key_order():
    ranged = Peer(K1, allowed_ips=[ipaddress.ip_network('192.0.2.0/24')])
    host = Peer(K2, allowed_ips=[ipaddress.ip_network('192.0.2.7/32')])
    result, dropped = model.resolve_overlaps([ranged, host])
    assert result[1].allowed_ips == (ipaddress.ip_network('192.0.2.7/32'),)
    covered = ipaddress.ip_network('192.0.2.7/32')
    assert not any(covered.overlaps(n) for n in result[0].allowed_ips)
    assert sum(n.num_addresses for n in result[0].allowed_ips) == 255
    assert dropped == [(K1, '192.0.2.0/24', 'overlaps an address of another peer')]


def test_identical_range_goes_to_lowest_key():
    a = Peer(K2, allowed_ips=[ipaddress.ip_network('10.0.0.0/8')])
    b = Peer(K1, allowed_ips=[ipaddress.ip_network('10.0.0.0/8')])
    result, _dropped = model.resolve_overlaps([a, b])
    assert result[0].allowed_ips == () and result[1].allowed_ips == (ipaddress.ip_network('10.0.0.0/8'),)


small_nets = st.one_of(
    st.tuples(st.integers(0, 255), st.integers(24, 32)).map(
        lambda t: ipaddress.ip_network(('198.51.100.%d' % t[0], t[1]), strict=False)),
    st.tuples(st.integers(0, 255), st.integers(120, 128)).map(
        lambda t: ipaddress.ip_network(('2001:db8::%x' % t[0], t[1]), strict=False)),
)
peer_sets = st.lists(st.lists(small_nets, max_size=4), min_size=1, max_size=6).map(
    lambda nets_per_peer: [Peer(key(i + 1), allowed_ips=list(ipaddress.collapse_addresses([n for n in nets if n.version == 4]))
                                + list(ipaddress.collapse_addresses([n for n in nets if n.version == 6])))
                           for i, nets in enumerate(nets_per_peer)])


def _addresses(nets):
    out = set()
    for net in nets:
        out.update(int(a) + (net.version << 200) for a in net)
    return out


@settings(max_examples=200, deadline=None)
@given(peer_sets, st.randoms())
def test_overlap_resolution_properties(peer_list, rnd):
    result, _dropped = model.resolve_overlaps(peer_list)
    # 1. no address belongs to two peers
    owned = [(_addresses(p.allowed_ips)) for p in result]
    for i in range(len(owned)):
        for j in range(i + 1, len(owned)):
            assert not owned[i] & owned[j]
    # 2. each peer keeps a subset of what it asked for
    for before, after in zip(peer_list, result):
        assert _addresses(after.allowed_ips) <= _addresses(before.allowed_ips)
    # 3. nothing anybody asked for is lost altogether
    assert set().union(*owned) == set().union(*(_addresses(p.allowed_ips) for p in peer_list))
    # 4. the outcome does not depend on input order
    shuffled = list(peer_list)
    rnd.shuffle(shuffled)
    again, _dropped = model.resolve_overlaps(shuffled)
    assert dict((p.public_key, p.allowed_ips) for p in again) == dict((p.public_key, p.allowed_ips) for p in result)


# --- diff --------------------------------------------------------------------

def apply(current, ops, desired):
    """Test oracle: what a device holds after ops (same semantics as the UAPI)."""
    state = dict((p.public_key, p) for p in current)
    wanted = dict((p.public_key, p) for p in desired)
    for op in ops:
        if op.action == PeerOp.REMOVE:
            del state[op.public_key]
        elif op.action == PeerOp.ADD:
            assert op.public_key not in state
            state[op.public_key] = wanted[op.public_key]
        else:
            state[op.public_key] = state[op.public_key].replace(**op.fields)
    return state


def test_one_changed_endpoint_is_one_update():
    current = [Peer(key(i), '192.0.2.1:%d' % (1000 + i), [ipaddress.ip_network('10.0.%d.0/24' % i)], None, 25)
               for i in range(1, 50)]
    desired = list(current)
    desired[10] = desired[10].replace(endpoint='192.0.2.9:51820')
    assert model.diff_peers(desired, current) == [PeerOp(PeerOp.UPDATE, key(11), {'endpoint': '192.0.2.9:51820'})]
    assert model.diff_peers(current, current, purge=True) == []
    assert model.diff_peers(current[1:], current, purge=True) == [PeerOp(PeerOp.REMOVE, key(1))]
    assert model.diff_peers(current[1:], current, purge=False) == []


def test_missing_endpoint_keeps_roamed_one():
    running = [Peer(K1, '203.0.113.5:40000', [], None, 25)]
    assert model.diff_peers([Peer(K1, None, [], None, 25)], running) == []


peer_records = st.builds(
    lambda n, ep, nets, psk, ka: Peer(key(n), ep, nets, psk, ka),
    st.integers(1, 12),
    st.one_of(st.none(), st.integers(1, 3).map(lambda i: '192.0.2.%d:51820' % i)),
    st.lists(small_nets, max_size=3).map(lambda nets: list(set(nets))),
    st.one_of(st.none(), st.just(key(99))),
    st.sampled_from([0, 25]),
)
unique_peers = st.lists(peer_records, max_size=8, unique_by=lambda p: p.public_key)


@settings(max_examples=300, deadline=None)
@given(unique_peers, unique_peers, st.booleans())
def test_diff_reaches_desired_state_with_minimal_ops(desired, current, purge):
    ops = model.diff_peers(desired, current, purge=purge)
    after = apply(current, ops, desired)
    current_by_key = dict((p.public_key, p) for p in current)
    for peer in desired:
        got = after[peer.public_key]
        assert set(got.allowed_ips) == set(peer.allowed_ips)
        assert got.persistent_keepalive == peer.persistent_keepalive
        assert got.preshared_key == peer.preshared_key
        expected_endpoint = peer.endpoint or (current_by_key[peer.public_key].endpoint
                                              if peer.public_key in current_by_key else None)
        assert got.endpoint == expected_endpoint
    desired_keys = set(p.public_key for p in desired)
    extra = set(after) - desired_keys
    assert extra == (set() if purge else set(current_by_key) - desired_keys)
    # one operation per peer at most, and none for a peer that already matches
    assert len(set(op.public_key for op in ops)) == len(ops)
    assert model.diff_peers(desired, list(after.values()), purge=purge) == []


def test_ops_are_ordered_removals_first():
    current = [Peer(K3, None, [ipaddress.ip_network('192.0.2.1/32')], None, 25)]
    desired = [Peer(K1, None, [ipaddress.ip_network('192.0.2.1/32')], None, 25)]
    ops = model.diff_peers(desired, current, purge=True)
    assert [op.action for op in ops] == ['remove', 'add']
    assert model.summarize_ops(ops) == {'peers_added': [K1], 'peers_changed': [], 'peers_removed': [K3]}


def test_redacted_views_hide_preshared_keys():
    peer = Peer(K1, None, [], key(77), 25)
    assert key(77) not in repr(peer.as_dict()) and peer.as_dict()['preshared_key'] == 'set'
    op = PeerOp(PeerOp.ADD, K1, {'preshared_key': key(77)})
    assert key(77) not in repr(op)
