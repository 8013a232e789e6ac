# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The WireGuard device applier: one interface, kernel or userspace backend.

read what runs -> diff against what is wanted -> send only the difference ->
report before/after. Check mode stops before anything is sent.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import gc
import time

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.model import liveness
from ansible_collections.wglan.mesh.plugins.module_utils.model.settings import DEFAULT_FWMARK, DEFAULT_MTU, DEFAULT_PORT  # noqa: F401 (re-exported)
from ansible_collections.wglan.mesh.plugins.module_utils.model.keys import public_key_from_private
from ansible_collections.wglan.mesh.plugins.module_utils.host.links import Links, validate_ifname
from ansible_collections.wglan.mesh.plugins.module_utils.model.peers import PeerOp, apply_ops, diff_peers, summarize_ops
from ansible_collections.wglan.mesh.plugins.module_utils.host.wg_netlink import NetlinkBackend
from ansible_collections.wglan.mesh.plugins.module_utils.host.wg_uapi import UapiBackend

BACKENDS = ('auto', 'kernel', 'userspace')
MIN_MTU = 1280


class DeviceConfig:
    """What the interface should be. addresses=None leaves addresses alone."""

    def __init__(self, ifname, private_key, listen_port=DEFAULT_PORT, fwmark=DEFAULT_FWMARK,
                 mtu=DEFAULT_MTU, addresses=None, backend='auto'):
        self.ifname = validate_ifname(ifname)
        self.private_key = private_key
        if not 0 <= int(listen_port) <= 65535:
            raise WglanError('listen_port must be between 0 and 65535')
        self.listen_port = int(listen_port)
        if not 0 <= int(fwmark) <= 0xFFFFFFFF:
            raise WglanError('fwmark must be a 32-bit value')
        self.fwmark = int(fwmark)
        if not MIN_MTU <= int(mtu) <= 65535:
            raise WglanError('mtu must be between %d and 65535 (IPv6 needs at least %d)' % (MIN_MTU, MIN_MTU))
        self.mtu = int(mtu)
        self.addresses = addresses
        if backend not in BACKENDS:
            raise WglanError('backend must be one of %s' % ', '.join(BACKENDS))
        self.backend = backend


def backend_for_link(link, requested):
    """Which backend drives an existing link, refusing a mismatch with what was asked."""
    if link.kind == 'wireguard':
        found = NetlinkBackend(link.name)
    else:
        found = UapiBackend(link.name)
        if not found.available():
            raise WglanError('interface %s exists but is not a WireGuard device (kind %s, no UAPI socket)'
                             % (link.name, link.kind or 'unknown'))
    if requested not in ('auto', found.name):
        raise WglanError('interface %s runs the %s backend, but backend=%s was asked: delete it first'
                         % (link.name, found.name, requested))
    return found


def create_device(links, ifname, requested):
    """Create the interface with the asked backend; auto prefers the kernel."""
    if requested in ('auto', 'kernel'):
        if links.create_wireguard(ifname):
            return NetlinkBackend(ifname)
        if requested == 'kernel':
            raise WglanError('the kernel cannot create WireGuard links (no wireguard module): use backend=userspace or auto')
    backend = UapiBackend(ifname)
    backend.start()
    return backend


class DeviceResult:
    def __init__(self):
        self.changed = False
        self.created = False
        self.deleted = False
        self.backend = None
        self.public_key = None
        self.device_changes = []
        self.ops = []
        self.addresses_added = []
        self.addresses_removed = []
        self.before = None
        self.after = None

    def summary(self):
        out = summarize_ops(self.ops)
        out.update({
            'changed': self.changed,
            'created': self.created,
            'backend': self.backend,
            'public_key': self.public_key,
            'device_changes': self.device_changes,
            'addresses_added': [str(a) for a in self.addresses_added],
            'addresses_removed': [str(a) for a in self.addresses_removed],
            'peer_operations': len(self.ops),
        })
        return out


def _peer_view(peers):
    return dict((p.public_key, p.as_dict()) for p in sorted(peers, key=lambda p: p.public_key))


@contextlib.contextmanager
def _gc_paused():
    """Reading thousands of peers allocates many small objects and no cycles;
    the cyclic collector would only rescan them mid-read, so it waits."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def apply_device(config, desired_peers, purge=False, check_mode=False, want_diff=False, current=None, ops=None):
    """Make the interface and its peers match. Returns a DeviceResult.

    current: what read_device() returned just before, so the device is not
    read twice (the watcher reads it every second anyway).
    ops: the peer operations the plan made against current (model.plan); used when the device is
    still the one current describes, else the operations are made here, against what was read.
    """
    with _gc_paused():
        return _apply_device(config, desired_peers, purge, check_mode, want_diff, current, ops)


def _apply_device(config, desired_peers, purge, check_mode, want_diff, current=None, planned=None):
    result = DeviceResult()
    if config.private_key is not None:
        result.public_key = public_key_from_private(config.private_key)
    # Handshake times are read only when some endpoint is a fallback guess (see diff_peers).
    with_stats = any(p.endpoint_fallback for p in desired_peers)
    with Links() as links:
        # Ask the device first: it prepares its answer while rtnetlink is read.
        pending = None
        if current is None and config.backend in ('auto', 'userspace'):
            candidate = UapiBackend(config.ifname)
            if candidate.available():
                try:
                    pending = (candidate, candidate.start_read(with_stats=with_stats))
                except WglanError:
                    pending = None
        if current is not None and current[0] is not None and current[0].name == config.ifname:
            link = current[0]  # (read with its addresses just before: the watcher's apply, every second)
        else:
            link = links.get(config.ifname, with_addresses=config.addresses is not None or want_diff)
        if link is None:
            ops = planned if planned is not None and current is None else diff_peers(desired_peers, [], purge=purge)
            return _create(links, config, desired_peers, ops, result, check_mode, want_diff)
        backend = backend_for_link(link, config.backend)
        result.backend = backend.name
        as_planned = current is not None and backend.name == current[1]
        if as_planned:
            state = current[2]
        elif pending is not None and backend.name == pending[0].name:
            state = pending[1]()
        else:
            state = backend.read(with_stats=with_stats)
        if as_planned and planned is not None:
            result.ops = planned
        else:
            result.ops = diff_peers(desired_peers, state.peers, purge=purge,
                                    up=set(p.key_hex for p in liveness.peers_up(state, time.time())))
        return _update(links, link, backend, state, config, desired_peers, result, check_mode, want_diff)


def _create(links, config, desired_peers, ops, result, check_mode, want_diff):
    """A new interface with everything (no interface yet)."""
    result.changed = result.created = True
    result.device_changes = ['interface', 'private_key', 'listen_port', 'fwmark', 'mtu', 'up']
    result.ops = ops
    if config.addresses:
        result.addresses_added = list(config.addresses)
    if want_diff:
        result.before = {'interface': None}
        result.after = _device_view(config, config.addresses or [], _peer_view(desired_peers))
    if check_mode:
        result.backend = config.backend
        return result
    backend = create_device(links, config.ifname, config.backend)
    result.backend = backend.name
    backend.write(config.private_key, config.listen_port, config.fwmark, result.ops)
    link = links.get(config.ifname)
    if link is None:
        raise WglanError('interface %s vanished right after it was created' % config.ifname)
    _apply_link(links, link, config, result, check_mode)
    return result


def _update(links, link, backend, state, config, desired_peers, result, check_mode, want_diff):
    """The existing interface (state: its settings and peers as read) made to match; result.ops given."""
    key = None
    if config.private_key is not None and state.private_key != config.private_key:
        key = config.private_key
        result.device_changes.append('private_key')
    port = None
    if config.listen_port and state.listen_port != config.listen_port:
        port = config.listen_port
        result.device_changes.append('listen_port')
    fwmark = None
    if state.fwmark != config.fwmark:
        fwmark = config.fwmark
        result.device_changes.append('fwmark')
    if want_diff:
        result.before = {
            'interface': config.ifname, 'listen_port': state.listen_port, 'fwmark': state.fwmark,
            'mtu': link.mtu, 'up': link.up, 'addresses': sorted(str(a) for a in link.addresses),
            'public_key': public_key_from_private(state.private_key) if state.private_key else None,
            'peers': _peer_view(state.peers),
        }
    if not check_mode and (key is not None or port is not None or fwmark is not None or result.ops):
        backend.write(key, port, fwmark, result.ops)
    _apply_link(links, link, config, result, check_mode)
    result.changed = bool(result.device_changes or result.ops or result.addresses_added or result.addresses_removed)
    if want_diff:
        after_addresses = [a for a in link.addresses if a not in result.addresses_removed] + result.addresses_added
        result.after = _device_view(config, after_addresses,
                                    _peer_view(apply_ops(state.peers, desired_peers, result.ops)))
    return result


def switch_key(config, private_key, preshared_keys):
    """A key rotation's switch: each peer's new preshared key first ({public key: key}), then the new private
    key, then a handshake to every peer at once (kick). In that order: a handshake WireGuard starts between
    the two writes pairs the new key with the new preshared key (the peers have both); the other way, the
    new key with an old preshared key fails and is not tried again for 5 s."""
    backend = _backend_of(config)
    if backend is None:
        raise WglanError('interface %s does not exist' % config.ifname)
    if preshared_keys:
        backend.write(ops=[PeerOp(PeerOp.UPDATE, key, {'preshared_key': psk}) for key, psk in preshared_keys.items()])
    backend.write(private_key=private_key)


def restart_handshakes(config, peers):
    """Each of peers (running Peer values) removed and added again as it was (endpoint, allowed IPs,
    preshared key, keepalive), then kicked: a new peer on the device has no handshake under way, so it sends
    one at once (a peer's handshake otherwise waits 5 s after the last one it sent)."""
    backend = _backend_of(config) if peers else None
    if backend is None:
        return
    backend.write(ops=[PeerOp(PeerOp.REMOVE, p.public_key) for p in peers])
    backend.write(ops=[PeerOp(PeerOp.ADD, p.public_key, dict(
        dict(endpoint=p.endpoint) if p.endpoint else {}, allowed_ips=p.allowed_ips,
        persistent_keepalive=p.persistent_keepalive, preshared_key=p.preshared_key)) for p in peers])
    _kick(backend, peers)


def kick(config, peers):
    """Make WireGuard send a handshake initiation to each of peers now, to the endpoint it has.

    WireGuard starts a handshake only when it has a packet for a peer. Turning
    persistent keepalive from off to on sends one keepalive at once (both the
    kernel and wireguard-go do so), which needs a session, hence a handshake,
    retried every 5 s for up to 90 s. The keepalive ends as it was.
    """
    backend = _backend_of(config) if peers else None
    if backend is not None:
        _kick(backend, peers)


def _backend_of(config):
    """The backend of config's interface, or None when it does not exist."""
    with Links() as links:
        link = links.get(config.ifname)
        return None if link is None else backend_for_link(link, config.backend)


def _kick(backend, peers):
    backend.write(ops=[PeerOp(PeerOp.UPDATE, p.public_key, {'persistent_keepalive': 0}) for p in peers])
    backend.write(ops=[PeerOp(PeerOp.UPDATE, p.public_key, {'persistent_keepalive': p.persistent_keepalive or 25})
                       for p in peers])
    off = [p for p in peers if not p.persistent_keepalive]
    if off:
        backend.write(ops=[PeerOp(PeerOp.UPDATE, p.public_key, {'persistent_keepalive': 0}) for p in off])


def _device_view(config, addresses, peers):
    return {
        'interface': config.ifname, 'listen_port': config.listen_port, 'fwmark': config.fwmark,
        'mtu': config.mtu, 'up': True, 'addresses': sorted(str(a) for a in addresses),
        'public_key': public_key_from_private(config.private_key) if config.private_key else None,
        'peers': peers,
    }


def _apply_link(links, link, config, result, check_mode):
    """MTU, addresses, up: each touched only if it differs."""
    if link.mtu != config.mtu:
        if 'mtu' not in result.device_changes:
            result.device_changes.append('mtu')
        if not check_mode:
            links.set_mtu(link.index, config.mtu)
    if config.addresses is not None:
        present = set(link.addresses)
        wanted = set(config.addresses)
        result.addresses_added = sorted(wanted - present, key=str)
        result.addresses_removed = sorted(present - wanted, key=str)
        if not check_mode:
            for iface in result.addresses_removed:
                links.del_address(link.index, iface)
            for iface in result.addresses_added:
                links.add_address(link.index, iface)
    if not link.up:
        if 'up' not in result.device_changes:
            result.device_changes.append('up')
        if not check_mode:
            links.set_up(link.index)


def read_device(ifname, with_stats=True):
    """(link, backend name, DeviceState) or None when the interface does not exist. Without with_stats,
    the handshake times and counters are not asked for (a plan needs them only for fallback endpoints)."""
    pending = None
    candidate = UapiBackend(validate_ifname(ifname))
    if candidate.available():  # ask the device first: it prepares its answer while rtnetlink is read
        try:
            pending = candidate.start_read(with_stats=with_stats)
        except WglanError:
            pending = None
    with Links() as links:
        link = links.get(ifname)
        if link is None:
            return None
        backend = backend_for_link(link, 'auto')
        if pending is not None and backend.name == candidate.name:
            return link, backend.name, pending()
        return link, backend.name, backend.read(with_stats=with_stats)


def remove_device(ifname, check_mode=False):
    """Delete the interface (and stop wireguard-go). Returns True if it existed."""
    with Links() as links:
        link = links.get(validate_ifname(ifname))
        if link is None:
            return False
        if check_mode:
            return True
        if link.kind != 'wireguard':
            UapiBackend(ifname).stop()
        links.delete(ifname)
        return True
