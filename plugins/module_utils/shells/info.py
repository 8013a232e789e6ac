# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""wglan_info: the interface and its peers as the device has them, with the model's "up"."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.wglan.mesh.plugins.module_utils.model import keys, liveness, relay
from ansible_collections.wglan.mesh.plugins.module_utils.host import state_files
from ansible_collections.wglan.mesh.plugins.module_utils.host import watcher_state
from ansible_collections.wglan.mesh.plugins.module_utils.host import wg_device
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.module_support import require_libs, run_or_fail


def gather(ifname):
    found = wg_device.read_device(ifname)
    if found is None:
        return dict(exists=False, interface=ifname)
    link, backend, state = found
    now = time.time()
    peers = []
    for peer in sorted(state.peers, key=lambda p: p.public_key):
        stats = state.stats_of(peer)
        peers.append(dict(
            public_key=peer.public_key,
            endpoint=peer.endpoint,
            allowed_ips=[str(n) for n in peer.allowed_ips],
            latest_handshake=stats.last_handshake,
            handshake_age=int(now - stats.last_handshake) if stats.last_handshake else None,
            rx_bytes=stats.rx_bytes,
            tx_bytes=stats.tx_bytes,
            persistent_keepalive=peer.persistent_keepalive,
            preshared_key=bool(peer.preshared_key),
            state=liveness.handshake_state(stats.last_handshake, now),
        ))
    return dict(
        exists=True, interface=ifname, backend=backend,
        public_key=keys.public_key_from_private(state.private_key) if state.private_key else None,
        listen_port=state.listen_port, fwmark=state.fwmark, mtu=link.mtu, up=link.up,
        addresses=sorted(str(a) for a in link.addresses), peers=peers,
        peers_up=sum(1 for p in peers if p['state'] == liveness.UP),
    )


def watcher_view(path):
    """The watcher's status file, with its age; None when there is none or it is unreadable."""
    try:
        status = state_files.read_json(path)
    except WglanError:
        return None
    if not isinstance(status, dict):
        return None
    view = dict(status)
    view['age'] = int(time.time() - status['time']) if isinstance(status.get('time'), (int, float)) else None
    return view


def gather_waiting(ifname, wait, relays_path=watcher_state.PATHS, settle=None):
    """gather(), again every half second until every peer is up (or relayed through a peer that is
    up) or wait seconds passed; with settle, also once no other peer came up for settle seconds
    (the peers that can answer now have: the others wait for what this node will publish)."""
    start = time.monotonic()
    last_news, seen_up = start, None
    while True:
        info = gather(ifname)
        up = set()
        if info['exists']:
            up, relayed = _up_and_relayed(info, relays_path)
            info['peers_relayed'] = len(relayed)
        now = time.monotonic()
        if up != seen_up:
            last_news, seen_up = now, up
        done = not info['exists'] or info['peers_up'] + info['peers_relayed'] == len(info['peers'])
        settled = settle is not None and now - last_news >= settle
        if done or settled or now - start >= wait:
            info['waited'] = round(now - start, 1)
            return info
        time.sleep(0.5)


def reached_now(ifname, status_path, relays_path=watcher_state.PATHS):
    """The identities (see reached) of the peers this node reaches now: what a run compares against at
    its end."""
    info = gather(ifname)
    if not info['exists']:
        return []
    reached = liveness.reached(info['peers'], _up_and_relayed(info, relays_path)[1], watcher_view(status_path))
    return sorted(identity for identity, ok in reached.items() if ok)


def _up_and_relayed(info, relays_path):
    """(keys of the peers up, keys of those reached through a relay that is up) of gather()'s info."""
    up = set(p['public_key'] for p in info['peers'] if p['state'] == liveness.UP)
    keys_on_device = [p['public_key'] for p in info['peers']]
    return up, relay.reached_through_relay(keys_on_device, up, watcher_state.read_relays(relays_path))


def wait_reached(ifname, expected, wait, status_path, relays_path=watcher_state.PATHS):
    """Until every identity of expected that is still a peer is reached again, or wait seconds passed:
    (info, the identities not reached). A peer that left the mesh (no longer on the device, nor named in
    the watcher's status) is not waited for."""
    start = time.monotonic()
    while True:
        info = gather(ifname)
        missing = list(expected)
        if info['exists']:
            now_reached = liveness.reached(info['peers'], _up_and_relayed(info, relays_path)[1],
                                           watcher_view(status_path))
            missing = sorted(e for e in expected if e in now_reached and not now_reached[e])
        if not missing or time.monotonic() - start >= wait:
            info['waited'] = round(time.monotonic() - start, 1)
            return info, missing
        time.sleep(0.5)


ARGUMENTS = dict(
    interface=dict(type='str', default='wglan0'),
    wait=dict(type='int', default=0),
    watcher_status=dict(type='path', default='/run/wglan/status.json'),
    relays_path=dict(type='path', default=watcher_state.PATHS),
    expect_reached=dict(type='list', elements='str'),
)


def run(module):
    require_libs(module, 'pyroute2', 'cryptography')
    if not 0 <= module.params['wait'] <= 3600:
        module.fail_json(msg='wait must be between 0 and 3600 seconds')
    if module.params['expect_reached'] is not None:
        info, missing = run_or_fail(module, wait_reached, module.params['interface'], module.params['expect_reached'],
                                    module.params['wait'], module.params['watcher_status'], module.params['relays_path'])
        info.update(watcher=watcher_view(module.params['watcher_status']), not_reached=missing, changed=False)
        if missing:
            module.fail_json(msg='%d peers this node reached before the run are not reached %d s after it: %s'
                             % (len(missing), module.params['wait'], ', '.join(missing)), **info)
        return info
    info = run_or_fail(module, gather_waiting, module.params['interface'], module.params['wait'],
                       module.params['relays_path'])
    info['watcher'] = watcher_view(module.params['watcher_status'])
    return dict(info, changed=False)
