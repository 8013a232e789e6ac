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
import os
import re
import socket
import subprocess
import time

from ansible_collections.wglan.mesh.plugins.module_utils.host import process_owner
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.model.peers import Peer, PeerOp, ZERO_KEY
from ansible_collections.wglan.mesh.plugins.module_utils.model.device import DeviceState, PeerStats

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


ZERO_HEX = '00' * 32


_STAT_KEYS = ('last_handshake_time_sec', 'rx_bytes', 'tx_bytes')
# What a reconcile compares. The regex engine skips the other lines in C.
_RECONCILE_LINES = re.compile(
    r'^(public_key|allowed_ip|endpoint|persistent_keepalive_interval|preshared_key|private_key|listen_port|fwmark'
    r'|errno)=(.*)$', re.M)
_ALL_LINES = re.compile(r'^([a-z_]+)=(.*)$', re.M)


# One match per peer, in the order wireguard-go writes the fields. Used only when
# it accounts for every peer in the answer; anything else takes the line parser.
_PEER_BLOCK = re.compile(
    r'^public_key=([0-9a-f]{64})\n'
    r'preshared_key=([0-9a-f]{64})\n'
    r'(?:protocol_version=\d+\n)?'
    r'(?:endpoint=([^\n]*)\n)?'
    r'last_handshake_time_sec=(\d+)\n'
    r'last_handshake_time_nsec=\d+\n'
    r'tx_bytes=(\d+)\n'
    r'rx_bytes=(\d+)\n'
    r'persistent_keepalive_interval=(\d+)\n'
    r'((?:allowed_ip=[^\n]*\n)*)', re.M)
_DEVICE_FIELD = re.compile(r'^(private_key|listen_port|fwmark|errno)=([^\n]*)$', re.M)


def _device_field(state, key, value):
    """Store one device-level field; returns the errno when key is errno."""
    if key == 'private_key':
        state.private_key = None if value == ZERO_HEX else binascii.unhexlify(value)
    elif key == 'listen_port':
        state.listen_port = int(value)
    elif key == 'fwmark':
        state.fwmark = int(value)
    elif key == 'errno':
        return int(value)
    return None


def _parse_fast(text, with_stats):
    """The common wireguard-go layout, a regex match per peer; None if it does not fit."""
    matches = _PEER_BLOCK.findall(text)
    if len(matches) != text.count('public_key='):
        return None
    state = DeviceState()
    head = text[:text.find('public_key=')] if matches else text
    errno = 0
    for key, value in _DEVICE_FIELD.findall(head):
        errno = _device_field(state, key, value) or errno
    tail = _DEVICE_FIELD.findall(text[text.rfind('\n', 0, len(text.rstrip('\n'))):])
    for key, value in tail:
        if key == 'errno':
            errno = int(value)
    if errno:
        raise WglanError('userspace WireGuard refused the request (errno %d: %s)' % (errno, os.strerror(errno)))
    from_device = Peer.from_device
    peers = state.peers
    stats = state.stats
    for key_hex, psk, endpoint, handshake, tx, rx, keepalive, allowed in matches:
        peers.append(from_device(None, endpoint or None, allowed[11:-1].split('\nallowed_ip=') if allowed else (),
                                 None if psk == ZERO_HEX else hex_to_b64(psk), int(keepalive), key_hex))
        if with_stats:
            stats[key_hex] = PeerStats(handshake, rx, tx)
    return state


def parse_get_response(text, with_stats=True):
    """The text of a 'get=1' answer -> DeviceState. Raises on a non-zero errno."""
    state = _parse_fast(text, with_stats)
    if state is not None:
        return state
    return _parse_lines(text, with_stats)


def _parse_lines(text, with_stats=True):
    """Any field order: one regex match per line. Values are kept as the device
    wrote them and compared as text (see Peer.from_device). Without with_stats,
    handshake times and counters are not read at all."""
    state = DeviceState()
    peers = state.peers
    stats = state.stats
    from_device = Peer.from_device
    public_key = endpoint = psk = None
    allowed = []
    keepalive = 0
    counters = {}
    errno = 0
    pattern = _ALL_LINES if with_stats else _RECONCILE_LINES
    for key, value in pattern.findall(text):
        if key == 'allowed_ip':
            allowed.append(value)
        elif key == 'public_key':
            if public_key is not None:
                peers.append(from_device(None, endpoint, allowed, psk, keepalive, public_key))
                if with_stats:
                    stats[public_key] = PeerStats(*[counters.get(k, 0) for k in _STAT_KEYS])
            public_key = value
            endpoint = psk = None
            allowed = []
            keepalive = 0
            counters = {}
        elif key == 'endpoint':
            endpoint = value
        elif key == 'persistent_keepalive_interval':
            keepalive = int(value)
        elif key == 'preshared_key':
            psk = None if value == ZERO_HEX else hex_to_b64(value)
        elif key in _STAT_KEYS:
            counters[key] = value
        elif key in ('private_key', 'listen_port', 'fwmark', 'errno'):
            errno = _device_field(state, key, value) or errno
    if public_key is not None:
        peers.append(from_device(None, endpoint, allowed, psk, keepalive, public_key))
        if with_stats:
            stats[public_key] = PeerStats(*[counters.get(k, 0) for k in _STAT_KEYS])
    if errno:
        raise WglanError('userspace WireGuard refused the request (errno %d: %s)' % (errno, os.strerror(errno)))
    return state


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


def _daemon_error(proc):
    """The daemon's own error line, without the banner wireguard-go prints on Linux."""
    lines = (proc.stdout + proc.stderr).decode('utf-8', 'replace').splitlines()
    useful = [line.strip() for line in lines if line.strip() and not any(0x2500 <= ord(c) <= 0x257F for c in line)]
    errors = [line for line in useful if 'ERROR' in line or 'error' in line]
    return (errors or useful or ['exit status %d' % proc.returncode])[-1]


class UapiBackend:
    """Talks to a userspace WireGuard implementation through its UAPI socket."""

    name = 'userspace'

    def __init__(self, ifname, socket_dir=SOCKET_DIR, binary=WIREGUARD_GO):
        self.ifname = ifname
        self.path = socket_path(ifname, socket_dir)
        self.binary = binary

    def available(self):
        return os.path.exists(self.path)

    def answers(self):
        """Whether the daemon accepts connections on its socket: the file appears at bind(), a moment
        before listen(), and a machine under load can show that moment to a caller (connection refused)."""
        if not self.available():
            return False
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(IO_TIMEOUT)
        try:
            sock.connect(self.path)
            return True
        except OSError:
            return False
        finally:
            sock.close()

    def _connect(self):
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(IO_TIMEOUT)
        try:
            sock.connect(self.path)
        except OSError as exc:
            sock.close()
            raise WglanError('cannot reach userspace WireGuard for %s at %s: %s'
                             % (self.ifname, self.path, exc.strerror or exc))
        return sock

    def _receive(self, sock):
        """Read one answer (it ends with an empty line) and close the socket."""
        try:
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

    def _exchange(self, request):
        sock = self._connect()
        try:
            sock.sendall(request.encode('ascii'))
        except OSError as exc:
            sock.close()
            raise WglanError('cannot talk to userspace WireGuard for %s: %s' % (self.ifname, exc))
        return self._receive(sock)

    def read(self, with_stats=True):
        return parse_get_response(self._exchange('get=1\n\n'), with_stats)

    def start_read(self, with_stats=True):
        """Send 'get' now and return a function that collects the answer.

        The caller does its other reads (links, addresses) while the daemon
        prepares the answer, instead of one after the other.
        """
        sock = self._connect()
        try:
            sock.sendall(b'get=1\n\n')
        except OSError as exc:
            sock.close()
            raise WglanError('cannot talk to userspace WireGuard for %s: %s' % (self.ifname, exc))
        return lambda: parse_get_response(self._receive(sock), with_stats)

    def write(self, private_key=None, listen_port=None, fwmark=None, ops=()):
        request = build_set_request(private_key, listen_port, fwmark, ops)
        if request == 'set=1\n\n':
            return
        answer = self._exchange(request)
        parse_get_response(answer)

    @property
    def unit(self):
        return process_owner.unit_name('wglan-wireguard-go', self.ifname)

    def start(self, env=None):
        """Start wireguard-go for this interface, owned by systemd (or in a session of its own).

        Never as a child of the caller's session: an Ansible task over SSH with
        a tty ends with SIGHUP to everything left in it (see process_owner).
        """
        if process_owner.systemd_owns_processes():
            os.makedirs(os.path.dirname(self.path), mode=0o755, exist_ok=True)
            if not process_owner.start_unit(self.unit, [self.binary, '-f', self.ifname],
                                            'wglan.mesh: userspace WireGuard for %s' % self.ifname, env):
                # systemd restarts it (it crashed): the old socket may still be there, so wait
                # for the link, which only a running daemon has
                self._wait_for(self._link_exists, lambda: None, 'its interface')
                return
            self._wait_for(self.answers, lambda: process_owner.unit_failure(self.unit), 'its socket %s' % self.path)
            return
        run_env = dict(os.environ)
        run_env.pop('WG_PROCESS_FOREGROUND', None)
        run_env.update(env or {})
        try:
            proc = process_owner.start_detached([self.binary, self.ifname], run_env, START_TIMEOUT)
        except FileNotFoundError:
            raise WglanError('the kernel cannot create WireGuard links and %s is not installed' % self.binary)
        except subprocess.TimeoutExpired:
            raise WglanError('%s %s did not start within %ds' % (self.binary, self.ifname, START_TIMEOUT))
        if proc.returncode != 0:
            raise WglanError('%s %s failed: %s' % (self.binary, self.ifname, _daemon_error(proc)))
        self._wait_for(self.answers, lambda: None, 'its socket %s' % self.path)

    def _link_exists(self):
        return os.path.exists('/sys/class/net/%s' % self.ifname) and self.answers()

    def _wait_for(self, ready, failure, what):
        deadline = time.monotonic() + START_TIMEOUT
        while not ready():
            problem = failure()
            if problem or time.monotonic() > deadline:
                raise WglanError('%s %s started but %s did not appear%s'
                                 % (self.binary, self.ifname, what, ': %s' % problem if problem else ''))
            time.sleep(0.05)

    def stop(self):
        """Stop the daemon: its unit where systemd owns it; removing its socket makes wireguard-go exit."""
        if process_owner.systemd_owns_processes():
            process_owner.stop_unit(self.unit)
        if os.path.exists(self.path):
            os.unlink(self.path)
