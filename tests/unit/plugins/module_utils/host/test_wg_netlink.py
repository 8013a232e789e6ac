"""Message building for the kernel backend.

The kernel here has no WireGuard module, so these tests check the messages we
build and that pyroute2 encodes and decodes them; the lab's Debian-kernel
machine runs the backend for real.
"""
import base64
import ipaddress
import os
import socket

import pytest

from ansible_collections.wglan.mesh.plugins.module_utils.host import wg_netlink as nl
from ansible_collections.wglan.mesh.plugins.module_utils.model.peers import PeerOp

try:
    from pyroute2.netlink.generic.wireguard import wgmsg
except ImportError:
    if os.environ.get('CI'):  # under CI a missing library fails, as tests/collection.py does for tools
        raise
    wgmsg = None
# Only the encode/decode round trips need pyroute2; the message building below is pure and always runs.
needs_pyroute2 = pytest.mark.skipif(wgmsg is None, reason='pyroute2 is not installed')


def key(n):
    return base64.b64encode(n.to_bytes(32, 'big')).decode()


def attrs_of(entry):
    return dict((k, v) for k, v in entry['attrs'])


def test_flags_match_kernel_uapi():
    assert (nl.WGPEER_F_REMOVE_ME, nl.WGPEER_F_REPLACE_ALLOWEDIPS, nl.WGPEER_F_UPDATE_ONLY) == (1, 2, 4)


def test_peer_attrs_per_action():
    remove = dict(nl.peer_attrs(PeerOp(PeerOp.REMOVE, key(1))))
    assert remove == {'WGPEER_A_PUBLIC_KEY': key(1), 'WGPEER_A_FLAGS': 1}
    update = dict(nl.peer_attrs(PeerOp(PeerOp.UPDATE, key(2), {'endpoint': '[2001:db8::1]:51820'})))
    assert update['WGPEER_A_FLAGS'] == nl.WGPEER_F_UPDATE_ONLY
    assert update['WGPEER_A_ENDPOINT'] == {'addr': '2001:db8::1', 'port': 51820}
    assert 'WGPEER_A_ALLOWEDIPS' not in update
    add = dict(nl.peer_attrs(PeerOp(PeerOp.ADD, key(3), {
        'allowed_ips': [ipaddress.ip_network('192.0.2.0/24')], 'persistent_keepalive': 25, 'preshared_key': None})))
    assert add['WGPEER_A_FLAGS'] == nl.WGPEER_F_REPLACE_ALLOWEDIPS
    assert add['WGPEER_A_PRESHARED_KEY'] == 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='
    (allowed,) = add['WGPEER_A_ALLOWEDIPS']
    assert dict(allowed['attrs']) == {'WGALLOWEDIP_A_FAMILY': socket.AF_INET,
                                      'WGALLOWEDIP_A_IPADDR': bytes([192, 0, 2, 0]),
                                      'WGALLOWEDIP_A_CIDR_MASK': 24}


def test_device_fields_only_in_first_message_and_peers_batched():
    ops = [PeerOp(PeerOp.REMOVE, key(i)) for i in range(1, 150)]
    messages = nl.build_set_messages('wglan0', key(50), 51820, 32, ops)
    assert len(messages) == 3
    first = dict(messages[0])
    assert first['WGDEVICE_A_PRIVATE_KEY'] == key(50) and first['WGDEVICE_A_FWMARK'] == 32
    for later in messages[1:]:
        assert dict(later).keys() == {'WGDEVICE_A_IFNAME', 'WGDEVICE_A_PEERS'}
    sent = [attrs_of(p)['WGPEER_A_PUBLIC_KEY'] for m in messages for p in dict(m)['WGDEVICE_A_PEERS']]
    assert sent == [key(i) for i in range(1, 150)]


def test_many_allowed_ips_continue_with_update_only():
    nets = [ipaddress.ip_network('10.%d.%d.0/24' % (i // 256, i % 256)) for i in range(1200)]
    messages = nl.build_set_messages('wglan0', ops=[PeerOp(PeerOp.ADD, key(1), {'allowed_ips': nets})])
    pieces = [attrs_of(p) for m in messages for p in dict(m)['WGDEVICE_A_PEERS']]
    assert len(pieces) == 3
    assert pieces[0]['WGPEER_A_FLAGS'] == nl.WGPEER_F_REPLACE_ALLOWEDIPS
    assert all(p['WGPEER_A_FLAGS'] == nl.WGPEER_F_UPDATE_ONLY for p in pieces[1:])
    assert sum(len(p['WGPEER_A_ALLOWEDIPS']) for p in pieces) == 1200


def test_empty_change_still_names_the_device():
    assert nl.build_set_messages('wglan0', listen_port=51820) == [
        [['WGDEVICE_A_IFNAME', 'wglan0'], ['WGDEVICE_A_LISTEN_PORT', 51820]]]


@needs_pyroute2
def test_pyroute2_encodes_and_decodes_our_messages():
    ops = [PeerOp(PeerOp.ADD, key(1), {'allowed_ips': [ipaddress.ip_network('200:1001::1/128'),
                                                       ipaddress.ip_network('192.0.2.1/32')],
                                       'endpoint': '198.51.100.1:51820', 'persistent_keepalive': 25,
                                       'preshared_key': key(9)}),
           PeerOp(PeerOp.UPDATE, key(2), {'endpoint': '[2001:db8::2]:51820'})]
    (attrs,) = nl.build_set_messages('wglan0', key(5), 51820, 32, ops)
    msg = wgmsg()
    msg['cmd'] = nl.WG_CMD_SET_DEVICE
    msg['version'] = nl.WG_GENL_VERSION
    msg['attrs'] = attrs
    msg.encode()
    decoded = wgmsg(msg.data)
    decoded.decode()
    state = nl.parse_dump([decoded])
    assert state.private_key == (5).to_bytes(32, 'big')
    assert (state.listen_port, state.fwmark) == (51820, 32)
    first, second = state.peers
    assert first.public_key == key(1) and first.endpoint == '198.51.100.1:51820'
    assert first.preshared_key == key(9) and first.persistent_keepalive == 25
    assert set(map(str, first.allowed_ips)) == {'200:1001::1/128', '192.0.2.1/32'}
    assert second.endpoint == '[2001:db8::2]:51820'
    flags = [p.get_attr('WGPEER_A_FLAGS') for p in decoded.get_attr('WGDEVICE_A_PEERS')]
    assert flags == [nl.WGPEER_F_REPLACE_ALLOWEDIPS, nl.WGPEER_F_UPDATE_ONLY]


def test_parse_dump_merges_a_peer_split_over_messages():
    def peer(n, nets):
        return {'attrs': [['WGPEER_A_PUBLIC_KEY', {'value': key(n).encode()}],
                          ['WGPEER_A_ALLOWEDIPS', [{'addr': net} for net in nets]]]}
    second_batch = [peer(1, ['192.0.2.2/32']), peer(2, ['192.0.2.3/32'])]
    messages = [
        {'attrs': [['WGDEVICE_A_LISTEN_PORT', 51820], ['WGDEVICE_A_PEERS', [peer(1, ['192.0.2.1/32'])]]]},
        {'attrs': [['WGDEVICE_A_LISTEN_PORT', 51820], ['WGDEVICE_A_PEERS', second_batch]]},
    ]
    state = nl.parse_dump(messages)
    assert [p.public_key for p in state.peers] == [key(1), key(2)]
    assert set(map(str, state.peers[0].allowed_ips)) == {'192.0.2.1/32', '192.0.2.2/32'}
