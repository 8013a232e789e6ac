# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kernel WireGuard backend: the generic netlink family "wireguard".

Messages are built here as plain attribute lists (pure, unit-tested) and only
encoded and sent through pyroute2. pyroute2's own WireGuard.set() is not used:
in the 0.7 series (Debian 12) its peer flag constants are off by one bit and it
always replaces allowed IPs.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import ipaddress
import socket

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.model.peers import Peer, PeerOp, ZERO_KEY
from ansible_collections.wglan.mesh.plugins.module_utils.model.device import DeviceState, PeerStats

try:
    from pyroute2.netlink import NLM_F_ACK, NLM_F_DUMP, NLM_F_REQUEST
    from pyroute2.netlink.generic import GenericNetlinkSocket
    from pyroute2.netlink.generic.wireguard import wgmsg
    HAS_PYROUTE2 = True
    PYROUTE2_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised by the import sanity test
    HAS_PYROUTE2 = False
    PYROUTE2_IMPORT_ERROR = exc

WG_GENL_NAME = 'wireguard'
WG_GENL_VERSION = 1
WG_CMD_GET_DEVICE = 0
WG_CMD_SET_DEVICE = 1
# include/uapi/linux/wireguard.h
WGDEVICE_F_REPLACE_PEERS = 1 << 0
WGPEER_F_REMOVE_ME = 1 << 0
WGPEER_F_REPLACE_ALLOWEDIPS = 1 << 1
WGPEER_F_UPDATE_ONLY = 1 << 2
# Keep each message well under the netlink buffer, as wg(8) does by splitting.
MAX_ALLOWED_IPS_PER_MESSAGE = 512
MAX_PEERS_PER_MESSAGE = 64


def _endpoint_value(endpoint):
    host, _sep, port = endpoint.rpartition(':')
    return {'addr': host.strip('[]'), 'port': int(port)}


def _allowed_ip_attrs(net):
    family = socket.AF_INET if net.version == 4 else socket.AF_INET6
    return {'attrs': [
        ['WGALLOWEDIP_A_FAMILY', family],
        ['WGALLOWEDIP_A_IPADDR', net.network_address.packed],
        ['WGALLOWEDIP_A_CIDR_MASK', net.prefixlen],
    ]}


def peer_attrs(op):
    """One PeerOp -> the attribute list of one WGDEVICE_A_PEERS entry."""
    attrs = [['WGPEER_A_PUBLIC_KEY', op.public_key]]
    if op.action == PeerOp.REMOVE:
        attrs.append(['WGPEER_A_FLAGS', WGPEER_F_REMOVE_ME])
        return attrs
    fields = op.fields
    flags = WGPEER_F_UPDATE_ONLY if op.action == PeerOp.UPDATE else 0
    if 'allowed_ips' in fields:
        flags |= WGPEER_F_REPLACE_ALLOWEDIPS
    attrs.append(['WGPEER_A_FLAGS', flags])
    if 'preshared_key' in fields:
        attrs.append(['WGPEER_A_PRESHARED_KEY', fields['preshared_key'] or ZERO_KEY])
    if fields.get('endpoint'):
        attrs.append(['WGPEER_A_ENDPOINT', _endpoint_value(fields['endpoint'])])
    if 'persistent_keepalive' in fields:
        attrs.append(['WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL', fields['persistent_keepalive']])
    if 'allowed_ips' in fields:
        attrs.append(['WGPEER_A_ALLOWEDIPS', [_allowed_ip_attrs(net) for net in fields['allowed_ips']]])
    return attrs


def build_set_messages(ifname, private_key_b64=None, listen_port=None, fwmark=None, ops=()):
    """Device fields and peer operations -> attribute lists of WG_CMD_SET_DEVICE messages.

    The device fields go in the first message. Peers are batched; a peer with
    very many allowed IPs continues in the next message with UPDATE_ONLY and
    without REPLACE_ALLOWEDIPS, exactly as the kernel expects continuations.
    """
    messages = []
    head = [['WGDEVICE_A_IFNAME', ifname]]
    if private_key_b64 is not None:
        head.append(['WGDEVICE_A_PRIVATE_KEY', private_key_b64])
    if listen_port is not None:
        head.append(['WGDEVICE_A_LISTEN_PORT', listen_port])
    if fwmark is not None:
        head.append(['WGDEVICE_A_FWMARK', fwmark])
    current = []
    budget = MAX_ALLOWED_IPS_PER_MESSAGE

    def flush():
        attrs = list(head) if not messages else [['WGDEVICE_A_IFNAME', ifname]]
        if current:
            attrs.append(['WGDEVICE_A_PEERS', list(current)])
        messages.append(attrs)
        del current[:]

    for op in ops:
        attrs = peer_attrs(op)
        allowed = None
        for item in attrs:
            if item[0] == 'WGPEER_A_ALLOWEDIPS':
                allowed = item
        if allowed is None or len(allowed[1]) <= budget:
            if len(current) >= MAX_PEERS_PER_MESSAGE:
                flush()
                budget = MAX_ALLOWED_IPS_PER_MESSAGE
            current.append({'attrs': attrs})
            budget -= len(allowed[1]) if allowed else 0
            continue
        # Split this peer's allowed IPs over several messages.
        entries = allowed[1]
        first = True
        while entries:
            if budget <= 0 or len(current) >= MAX_PEERS_PER_MESSAGE:
                flush()
                budget = MAX_ALLOWED_IPS_PER_MESSAGE
            chunk, entries = entries[:budget], entries[budget:]
            if first:
                piece = [a for a in attrs if a[0] != 'WGPEER_A_ALLOWEDIPS'] + [['WGPEER_A_ALLOWEDIPS', chunk]]
                first = False
            else:
                piece = [['WGPEER_A_PUBLIC_KEY', op.public_key], ['WGPEER_A_FLAGS', WGPEER_F_UPDATE_ONLY],
                         ['WGPEER_A_ALLOWEDIPS', chunk]]
            current.append({'attrs': piece})
            budget -= len(chunk)
    if current or not messages:
        flush()
    return messages


def _attr(msg, name, default=None):
    for key, value in msg.get('attrs', []):
        if key == name:
            return value
    return default


def parse_dump(messages):
    """Decoded GET_DEVICE dump messages -> DeviceState (a peer may span messages)."""
    state = DeviceState()
    order = []
    merged = {}
    for msg in messages:
        get = msg.get_attr if hasattr(msg, 'get_attr') else (lambda name, m=msg: _attr(m, name))
        key = get('WGDEVICE_A_PRIVATE_KEY')
        if key:
            raw = _key_bytes(key)
            if raw != b'\x00' * 32:
                state.private_key = raw
        state.listen_port = get('WGDEVICE_A_LISTEN_PORT') or state.listen_port
        state.fwmark = get('WGDEVICE_A_FWMARK') or state.fwmark
        for peer in get('WGDEVICE_A_PEERS') or []:
            pget = peer.get_attr if hasattr(peer, 'get_attr') else (lambda name, m=peer: _attr(m, name))
            public = _key_b64(pget('WGPEER_A_PUBLIC_KEY'))
            entry = merged.get(public)
            if entry is None:
                entry = merged[public] = {'allowed': [], 'endpoint': None, 'psk': None, 'keepalive': 0,
                                          'handshake': 0, 'rx': 0, 'tx': 0}
                order.append(public)
            endpoint = pget('WGPEER_A_ENDPOINT')
            if endpoint and endpoint.get('addr') and endpoint.get('port'):
                addr = ipaddress.ip_address(endpoint['addr'])
                entry['endpoint'] = ('[%s]:%d' if addr.version == 6 else '%s:%d') % (addr.compressed, endpoint['port'])
            psk = pget('WGPEER_A_PRESHARED_KEY')
            if psk:
                entry['psk'] = _key_b64(psk)
            entry['keepalive'] = pget('WGPEER_A_PERSISTENT_KEEPALIVE_INTERVAL') or entry['keepalive']
            handshake = pget('WGPEER_A_LAST_HANDSHAKE_TIME')
            if handshake:
                entry['handshake'] = handshake.get('tv_sec', 0)
            entry['rx'] = pget('WGPEER_A_RX_BYTES') or entry['rx']
            entry['tx'] = pget('WGPEER_A_TX_BYTES') or entry['tx']
            for allowed in pget('WGPEER_A_ALLOWEDIPS') or []:
                if allowed.get('addr'):
                    entry['allowed'].append(ipaddress.ip_network(allowed['addr'], strict=False))
    for public in order:
        entry = merged[public]
        peer = Peer(public, entry['endpoint'], entry['allowed'], entry['psk'], entry['keepalive'])
        state.peers.append(peer)
        state.stats[peer.key_hex] = PeerStats(entry['handshake'], entry['rx'], entry['tx'])
    return state


def _key_value(value):
    return value.get('value') if isinstance(value, dict) else value


def _key_b64(value):
    value = _key_value(value)
    return value.decode('ascii') if isinstance(value, bytes) else value


def _key_bytes(value):
    return base64.b64decode(_key_b64(value))


class NetlinkBackend:
    """Kernel WireGuard through generic netlink."""

    name = 'kernel'

    def __init__(self, ifname):
        if not HAS_PYROUTE2:
            raise WglanError('the Python library "pyroute2" is required for the kernel backend')
        self.ifname = ifname

    def _socket(self):
        sock = GenericNetlinkSocket()
        try:
            sock.bind(WG_GENL_NAME, wgmsg)
        except Exception as exc:
            sock.close()
            raise WglanError('the kernel has no WireGuard netlink family: %s' % exc)
        return sock

    def start_read(self, with_stats=True):
        """Same shape as the userspace backend's; the kernel answers at once."""
        return self.read

    def read(self, with_stats=True):  # pylint: disable=unused-argument
        sock = self._socket()
        try:
            msg = wgmsg()
            msg['cmd'] = WG_CMD_GET_DEVICE
            msg['version'] = WG_GENL_VERSION
            msg['attrs'].append(['WGDEVICE_A_IFNAME', self.ifname])
            answer = sock.nlm_request(msg, msg_type=sock.prid, msg_flags=NLM_F_REQUEST | NLM_F_DUMP)
            return parse_dump(list(answer))
        finally:
            sock.close()

    def write(self, private_key=None, listen_port=None, fwmark=None, ops=()):
        key_b64 = base64.b64encode(private_key).decode('ascii') if private_key is not None else None
        if key_b64 is None and listen_port is None and fwmark is None and not ops:
            return
        sock = self._socket()
        try:
            for attrs in build_set_messages(self.ifname, key_b64, listen_port, fwmark, ops):
                msg = wgmsg()
                msg['cmd'] = WG_CMD_SET_DEVICE
                msg['version'] = WG_GENL_VERSION
                msg['attrs'] = attrs
                try:
                    list(sock.nlm_request(msg, msg_type=sock.prid, msg_flags=NLM_F_REQUEST | NLM_F_ACK))
                except Exception as exc:
                    raise WglanError('the kernel refused the WireGuard update for %s: %s' % (self.ifname, exc))
        finally:
            sock.close()
