# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What "up" means, in one place (pure).

A peer is up when its last handshake is recent (PEER_DOWN_AFTER, as KubeSpan:
WireGuard re-keys every 120 s while traffic flows, so a live peer never goes
that long). That is all a run of a module can see: one look at the device.
The watcher looks every second and knows more; for it a peer up by its
handshake is *stale* while it is silent (nothing received for too long: see
silent()), and *suspect* after a move until it is heard from again. Both
count as not up: their addresses are relayed or fall back to the normal
routes.

Timing of silence: at rest the two ends of a pair take turns (WireGuard's
persistent keepalive timer restarts on every packet, sent or received, so the
keepalive of one end keeps the other's from firing) and each end hears from
the other every second keepalive interval. A peer this node keeps sending
data to answers within 10 s (WireGuard's passive keepalive) even when the
traffic is one way.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

PEER_DOWN_AFTER = 275
UP, DOWN, UNKNOWN, STALE = 'up', 'down', 'unknown', 'stale'

# Seconds of silence from a peer this node keeps sending data to before it is probed.
UNANSWERED = 5.0
KEEPALIVE_BYTES = 32      # a WireGuard keepalive: the data header and the empty payload's tag
HANDSHAKE_BYTES = 148     # a handshake initiation


# After this node's key switch: when (seconds after it) a pair with no handshake since is started again.
# Both ends send a handshake at the switch (this node its kick, the peer its traffic, now routed to the new
# key); when the two cross, each end answers the other's and drops the answer to its own (WireGuard keeps one
# handshake a peer), and neither sends again for 5 s (REKEY_TIMEOUT). The node that switched starts its end
# again (a new peer on the device, which may send at once); the peer answers (its own retry is 5 s away).
SWITCH_CHECKS = (0.3, 1.0, 2.0)


def stalled_since(peers, stats, since):
    """The peers (running Peer values) with no handshake since the unix time since (stats: {key hex:
    PeerStats}, the device's; a handshake's time has whole seconds, so one in since's second counts)."""
    floor = int(since)
    return [p for p in peers if p.key_hex not in stats or stats[p.key_hex].last_handshake < floor]


def handshake_state(last_handshake, now):
    """'up' after a recent handshake, 'down' after an old one, 'unknown' if never."""
    if not last_handshake:
        return UNKNOWN
    return UP if now - last_handshake <= PEER_DOWN_AFTER else DOWN


def peer_state(last_handshake, now, stale=False):
    """The state shown for a peer: its handshake's, except 'stale' when the watcher found it silent."""
    state = handshake_state(last_handshake, now)
    return STALE if stale and state == UP else state


def peers_up(device, now):
    """The peers on the device (a DeviceState) with a recent handshake."""
    if device is None or not device.stats:  # (read without handshake times: nobody is judged up)
        return []
    return [p for p in device.peers if handshake_state(device.stats_of(p).last_handshake, now) == UP]


def unanswered(sent, silence, keepalive):
    """Whether this node sent a peer data that went unanswered: more than keepalives and a handshake
    in silence seconds, for more than UNANSWERED seconds."""
    if silence <= UNANSWERED:
        return False
    return sent > KEEPALIVE_BYTES * (2 + int(silence // max(keepalive, 1))) + HANDSHAKE_BYTES


def silence_verdict(silence, keepalive, sent):
    """What silence seconds from a peer (up by its handshake, keepalive set) mean: 'dead' (stale
    without asking: 2 keepalives + 15 s), 'probe' (ask it: data unanswered, or 2 keepalives + 5 s at
    rest), or 'fine'."""
    if silence > 2 * keepalive + 15:
        return 'dead'
    if silence <= 2 * keepalive + 5 and not unanswered(sent, silence, keepalive):
        return 'fine'
    return 'probe'


def reached(peers, relayed, status):
    """{identity: reached} of every peer of the interface (peers: as wglan_info reads them; relayed: the keys
    of those reached through a relay that is up), an identity being the peer's name in the watcher's status
    (status: wglan_info's view of it; it follows a peer through a key rotation) or else its public key.
    Reached: up, or relayed."""
    names = {}
    for row in (status or {}).get('peers') or ():
        if isinstance(row, dict) and isinstance(row.get('public_key'), str) and isinstance(row.get('name'), str):
            names[row['public_key']] = row['name']
    out = {}
    for peer in peers or ():
        identity = names.get(peer['public_key'], peer['public_key'])
        ok = peer['state'] == UP or peer['public_key'] in relayed
        out[identity] = out.get(identity, False) or ok
    return out
