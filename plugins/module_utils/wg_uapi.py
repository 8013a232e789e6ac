# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Userspace WireGuard backend: the cross-platform UAPI over a unix socket.

wireguard-go and boringtun listen on /var/run/wireguard/<ifname>.sock and speak
a line protocol: 'get=1' returns key=value lines, 'set=1' takes them. Keys are
hex on this wire.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import ipaddress
import os
import socket
import subprocess
import time

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.peers import Peer, PeerOp, ZERO_KEY
from ansible_collections.wglan.mesh.plugins.module_utils.wg_state import DeviceState, PeerStats

SOCKET_DIR = '/var/run/wireguard'
WIREGUARD_GO = 'wireguard-go'
START_TIMEOUT = 10.0
IO_TIMEOUT = 30.0


def socket_path(ifname, socket_dir=SOCKET_DIR):
    return os.path.join(socket_dir, ifname + '.sock')


def b64_to_hex(value):
    return binascii.hexlify(base64.b64decode(value)).decode('ascii')


def hex_to_b64(value):
    return base64.b64encode(binascii.unhexlify(value)).decode('ascii')


def parse_get_response(text):
    """The text of a 'get=1' answer -> DeviceState. Raises on a non-zero errno."""
    state = DeviceState()
    peers = state.peers
    stats = state.stats
    public_key = None
    endpoint = None
    allowed = []
    psk = None
    keepalive = 0
    handshake = 0
    rx = tx = 0

    def finish():
        if public_key is not None:
            peers.append(Peer(public_key, endpoint, allowed, psk, keepalive))
            stats[public_key] = PeerStats(handshake, rx, tx)

    errno = None
    for line in text.split('\n'):
        if not line:
            continue
        key, _, value = line.partition('=')
        if key == 'public_key':
            finish()
            public_key = hex_to_b64(value)
            endpoint = None
            allowed = []
            psk = None
            keepalive = 0
            handshake = 0
            rx = tx = 0
        elif key == 'allowed_ip':
            allowed.append(ipaddress.ip_network(value, strict=False))
        elif key == 'endpoint':
            endpoint = _canonical_endpoint(value)
        elif key == 'last_handshake_time_sec':
            handshake = int(value)
        elif key == 'rx_bytes':
            rx = int(value)
        elif key == 'tx_bytes':
            tx = int(value)
        elif key == 'persistent_keepalive_interval':
            keepalive = int(value)
        elif key == 'preshared_key':
            psk = hex_to_b64(value)
            if psk == ZERO_KEY:
                psk = None
        elif key == 'private_key':
            state.private_key = binascii.unhexlify(value)
        elif key == 'listen_port':
            state.listen_port = int(value)
        elif key == 'fwmark':
            state.fwmark = int(value)
        elif key == 'errno':
            errno = int(value)
    finish()
    if errno:
        raise WglanError('userspace WireGuard refused the request (errno %d: %s)' % (errno, os.strerror(errno)))
    if state.private_key == b'\x00' * 32:
        state.private_key = None
    return state


def _canonical_endpoint(value):
    host, _, port = value.rpartition(':')
    host = host.strip('[]')
    if '%' in host:
        return value
    addr = ipaddress.ip_address(host)
    if addr.version == 6:
        if addr.ipv4_mapped:
            return '%s:%s' % (addr.ipv4_mapped, port)
        return '[%s]:%s' % (addr.compressed, port)
    return '%s:%s' % (addr, port)


def build_set_request(private_key=None, listen_port=None, fwmark=None, ops=()):
    """Device fields and peer operations -> the text of one 'set=1' request.

    Updates carry update_only so a peer removed meanwhile is not re-created;
    allowed IPs are replaced as a whole only when they are sent.
    """
    lines = ['set=1']
    if private_key is not None:
        lines.append('private_key=' + binascii.hexlify(private_key).decode('ascii'))
    if listen_port is not None:
        lines.append('listen_port=%d' % listen_port)
    if fwmark is not None:
        lines.append('fwmark=%d' % fwmark)
    for op in ops:
        lines.append('public_key=' + b64_to_hex(op.public_key))
        if op.action == PeerOp.REMOVE:
            lines.append('remove=true')
            continue
        if op.action == PeerOp.UPDATE:
            lines.append('update_only=true')
        fields = op.fields
        if 'preshared_key' in fields:
            lines.append('preshared_key=' + b64_to_hex(fields['preshared_key'] or ZERO_KEY))
        if fields.get('endpoint'):
            lines.append('endpoint=' + fields['endpoint'])
        if 'persistent_keepalive' in fields:
            lines.append('persistent_keepalive_interval=%d' % fields['persistent_keepalive'])
        if 'allowed_ips' in fields:
            lines.append('replace_allowed_ips=true')
            for net in fields['allowed_ips']:
                lines.append('allowed_ip=%s' % net)
    return '\n'.join(lines) + '\n\n'


class UapiBackend:
    """Talks to a userspace WireGuard implementation through its UAPI socket."""

    name = 'userspace'

    def __init__(self, ifname, socket_dir=SOCKET_DIR, binary=WIREGUARD_GO):
        self.ifname = ifname
        self.path = socket_path(ifname, socket_dir)
        self.binary = binary

    def available(self):
        return os.path.exists(self.path)

    def _exchange(self, request):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(IO_TIMEOUT)
        try:
            try:
                sock.connect(self.path)
            except OSError as exc:
                raise WglanError('cannot reach userspace WireGuard for %s at %s: %s'
                                 % (self.ifname, self.path, exc.strerror or exc))
            sock.sendall(request.encode('ascii'))
            chunks = []
            tail = b''
            while True:
                chunk = sock.recv(1 << 16)
                if not chunk:
                    break
                chunks.append(chunk)
                tail = (tail + chunk)[-2:]
                if tail == b'\n\n':
                    break
            return b''.join(chunks).decode('ascii')
        except socket.timeout:
            raise WglanError('userspace WireGuard for %s did not answer in %ds' % (self.ifname, IO_TIMEOUT))
        finally:
            sock.close()

    def read(self):
        return parse_get_response(self._exchange('get=1\n\n'))

    def write(self, private_key=None, listen_port=None, fwmark=None, ops=()):
        request = build_set_request(private_key, listen_port, fwmark, ops)
        if request == 'set=1\n\n':
            return
        answer = self._exchange(request)
        parse_get_response(answer)

    def start(self, env=None):
        """Start wireguard-go for this interface; it daemonizes once the socket is up."""
        run_env = dict(os.environ)
        run_env.pop('WG_PROCESS_FOREGROUND', None)
        run_env.update(env or {})
        try:
            proc = subprocess.run([self.binary, self.ifname], env=run_env, stdin=subprocess.DEVNULL,
                                  stdout=subprocess.PIPE, stderr=subprocess.PIPE, timeout=START_TIMEOUT)
        except FileNotFoundError:
            raise WglanError('the kernel cannot create WireGuard links and %s is not installed' % self.binary)
        except subprocess.TimeoutExpired:
            raise WglanError('%s %s did not start within %ds' % (self.binary, self.ifname, START_TIMEOUT))
        if proc.returncode != 0:
            message = proc.stderr.decode('utf-8', 'replace').strip().splitlines()
            raise WglanError('%s %s failed: %s' % (self.binary, self.ifname, message[-1] if message else proc.returncode))
        deadline = time.monotonic() + START_TIMEOUT
        while not self.available():
            if time.monotonic() > deadline:
                raise WglanError('%s started but its socket %s did not appear' % (self.binary, self.path))
            time.sleep(0.02)

    def stop(self):
        """Ask the daemon to exit: removing its socket makes wireguard-go shut down."""
        if os.path.exists(self.path):
            os.unlink(self.path)
