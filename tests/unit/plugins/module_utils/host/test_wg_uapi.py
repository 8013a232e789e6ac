import base64
import ipaddress

import pytest

from ansible_collections.wglan.mesh.plugins.module_utils.host import wg_uapi
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.model.peers import Peer, PeerOp, diff_peers


def key(n):
    return base64.b64encode(n.to_bytes(32, 'big')).decode()


def hexkey(n):
    return n.to_bytes(32, 'big').hex()


GET_ANSWER = '\n'.join([
    'private_key=' + hexkey(5),
    'listen_port=51820',
    'fwmark=32',
    'public_key=' + hexkey(1),
    'preshared_key=' + '00' * 32,
    'protocol_version=1',
    'endpoint=192.0.2.10:51820',
    'last_handshake_time_sec=1700000000',
    'last_handshake_time_nsec=5',
    'tx_bytes=100',
    'rx_bytes=200',
    'persistent_keepalive_interval=25',
    'allowed_ip=200:1001::1/128',
    'allowed_ip=192.0.2.10/32',
    'public_key=' + hexkey(2),
    'preshared_key=' + hexkey(9),
    'protocol_version=1',
    'endpoint=[2001:db8::2]:51821',
    'last_handshake_time_sec=0',
    'last_handshake_time_nsec=0',
    'tx_bytes=0',
    'rx_bytes=0',
    'persistent_keepalive_interval=0',
    'errno=0', '', ''])


def test_parse_get_response():
    state = wg_uapi.parse_get_response(GET_ANSWER)
    assert state.private_key == (5).to_bytes(32, 'big')
    assert (state.listen_port, state.fwmark) == (51820, 32)
    first, second = state.peers
    assert first.public_key == key(1) and first.preshared_key is None
    assert first.endpoint == '192.0.2.10:51820' and first.persistent_keepalive == 25
    assert set(first.allowed_ips) == {ipaddress.ip_network('200:1001::1/128'), ipaddress.ip_network('192.0.2.10/32')}
    assert second.preshared_key == key(9) and second.endpoint == '[2001:db8::2]:51821'
    assert second.allowed_ips == ()
    stats = state.stats_of(first)
    assert stats.last_handshake == 1700000000 and stats.rx_bytes == 200 and stats.tx_bytes == 100
    assert stats.state(now=1700000100) == 'up'
    assert stats.state(now=1700000300) == 'down'
    assert state.stats_of(second).state() == 'unknown'


def test_parse_get_response_raises_on_errno():
    with pytest.raises(WglanError) as err:
        wg_uapi.parse_get_response('errno=22\n\n')
    assert 'errno 22' in str(err.value)


def test_device_spelling_differences_are_not_changes():
    text = ('public_key=%s\nendpoint=[::ffff:192.0.2.1]:51820\npersistent_keepalive_interval=25\n'
            'allowed_ip=2001:db8:0:0::0/64\nerrno=0\n\n' % hexkey(1))
    running = wg_uapi.parse_get_response(text).peers
    desired = [Peer(key(1), '192.0.2.1:51820', [ipaddress.ip_network('2001:db8::/64')], None, 25)]
    assert running[0].same_endpoint(desired[0])
    assert diff_peers(desired, running) == []
    moved = [desired[0].replace(endpoint='192.0.2.2:51820')]
    assert diff_peers(moved, running) == [PeerOp(PeerOp.UPDATE, key(1), {'endpoint': '192.0.2.2:51820'})]


def test_build_set_request_sends_only_what_changes():
    ops = [
        PeerOp(PeerOp.REMOVE, key(3)),
        PeerOp(PeerOp.UPDATE, key(1), {'endpoint': '192.0.2.11:51820'}),
        PeerOp(PeerOp.ADD, key(2), {'allowed_ips': [ipaddress.ip_network('192.0.2.2/32')],
                                    'persistent_keepalive': 25, 'preshared_key': None}),
    ]
    text = wg_uapi.build_set_request(listen_port=51820, ops=ops)
    assert text == '\n'.join([
        'set=1', 'listen_port=51820',
        'public_key=' + hexkey(3), 'remove=true',
        'public_key=' + hexkey(1), 'update_only=true', 'endpoint=192.0.2.11:51820',
        'public_key=' + hexkey(2), 'preshared_key=' + '00' * 32, 'persistent_keepalive_interval=25',
        'replace_allowed_ips=true', 'allowed_ip=192.0.2.2/32',
    ]) + '\n\n'
    assert 'replace_peers' not in text


def test_build_set_request_private_key_is_hex():
    text = wg_uapi.build_set_request(private_key=(5).to_bytes(32, 'big'))
    assert text == 'set=1\nprivate_key=%s\n\n' % hexkey(5)


def test_reconcile_parse_skips_counters_but_keeps_what_is_compared():
    full = wg_uapi.parse_get_response(GET_ANSWER)
    lean = wg_uapi.parse_get_response(GET_ANSWER, with_stats=False)
    assert lean.stats == {}
    assert [p.as_dict() for p in lean.peers] == [p.as_dict() for p in full.peers]
    assert (lean.private_key, lean.listen_port, lean.fwmark) == (full.private_key, full.listen_port, full.fwmark)


def _view(state):
    return ([p.as_dict() for p in state.peers], state.private_key, state.listen_port, state.fwmark,
            dict((k, (v.last_handshake, v.rx_bytes, v.tx_bytes)) for k, v in state.stats.items()))


def test_fast_path_matches_line_parser():
    assert wg_uapi._parse_fast(GET_ANSWER, True) is not None
    assert _view(wg_uapi._parse_fast(GET_ANSWER, True)) == _view(wg_uapi._parse_lines(GET_ANSWER, True))


def test_other_field_orders_fall_back_to_line_parser():
    # e.g. another UAPI implementation writing allowed IPs before the counters
    reordered = GET_ANSWER.replace('persistent_keepalive_interval=25\nallowed_ip=200:1001::1/128\n'
                                   'allowed_ip=192.0.2.10/32\n',
                                   'allowed_ip=200:1001::1/128\nallowed_ip=192.0.2.10/32\n'
                                   'persistent_keepalive_interval=25\n')
    assert reordered != GET_ANSWER
    assert wg_uapi._parse_fast(reordered, True) is None
    assert _view(wg_uapi.parse_get_response(reordered)) == _view(wg_uapi.parse_get_response(GET_ANSWER))


def test_empty_device_and_errno_on_fast_path():
    state = wg_uapi.parse_get_response('listen_port=51820\nfwmark=32\nerrno=0\n\n')
    assert state.peers == [] and state.listen_port == 51820 and state.private_key is None
    with pytest.raises(WglanError):
        wg_uapi.parse_get_response('errno=1\n\n')


def test_a_socket_file_is_not_a_daemon_until_it_listens(tmp_path):
    # wireguard-go binds its socket (the file appears) a moment before it listens; a machine under
    # load showed that moment to wglan_peers as "connection refused" (20-machine lab): the start
    # waits until the socket answers, not until the file exists. A real socket, bound then listening.
    import socket
    backend = wg_uapi.UapiBackend('wgx0', socket_dir=str(tmp_path))
    assert not backend.answers()  # no file
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        server.bind(backend.path)
        assert backend.available() and not backend.answers()  # the file, nobody listening yet
        server.listen(1)
        assert backend.answers()
    finally:
        server.close()
