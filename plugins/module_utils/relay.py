# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Relaying: reaching a peer through a third node when no direct path works.

WireGuard routes by allowed IPs, and an address belongs to one peer only. To
send to peer P through node R, this node moves P's allowed IPs onto R; R
forwards what it decrypts back into its own interface, where those addresses
belong to P. P does the same for this node (both ends decide alike, from the
same records), so replies come back through R and pass R's and P's
allowed-IPs checks.

Who relays for whom is decided from the records alone, so both ends agree:
a relay for the pair (A, B) is a node whose record says `relay: true` and
whose observations show it up with both A and B (it reaches both: the
watcher publishes only peers it receives from). Of those, the one with the
smallest public key is chosen, and used once this node sees it up itself.

The peer itself stays configured (without allowed IPs), and the watcher keeps
sweeping its endpoints; when a handshake completes the addresses move back
and the path is direct again.

The watcher writes its current relays to PATHS, so that a wglan_peers run
on the same node builds the same allowed IPs instead of undoing them.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.wglan.mesh.plugins.module_utils import node_record
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError

PATHS = '/run/wglan/paths.json'


def relay_candidates(me_key, peer_key, records):
    """Public keys of the nodes that can relay between me and peer, best first (smallest key)."""
    out = []
    for record in records:
        if not record.relay or record.public_key in (me_key, peer_key):
            continue
        if me_key in record.observed and peer_key in record.observed:
            out.append(record.public_key)
    return sorted(out)


def choose_relay(me_key, peer_key, records, up):
    """The relay to use for peer, or None. up: keys of peers this node sees up.

    Always the first candidate by the records, which both ends read alike, so
    both choose the same node; None while this node does not see that one up
    (choosing another here could split the pair over two relays, and each
    would drop the other's replies).
    """
    candidates = relay_candidates(me_key, peer_key, records)
    if candidates and candidates[0] in up:
        return candidates[0]
    return None


def apply_relays(peers, relays):
    """Peers with each relayed peer's allowed IPs moved onto its relay.

    relays: {peer public key: relay public key}. An entry whose relay is not
    among the peers (or is itself relayed) is ignored: that peer stays direct.
    """
    by_key = dict((p.public_key, p) for p in peers)
    extra = {}
    moved = set()
    for key, relay in sorted(relays.items()):
        if key not in by_key or relay not in by_key or relay in relays or relay == key:
            continue
        extra.setdefault(relay, []).extend(by_key[key].allowed_ips)
        moved.add(key)
    out = []
    for peer in peers:
        if peer.public_key in moved:
            out.append(peer.replace(allowed_ips=[]))
        elif peer.public_key in extra:
            nets = list(peer.allowed_ips)
            nets.extend(n for n in extra[peer.public_key] if n not in nets)
            out.append(peer.replace(allowed_ips=nets))
        else:
            out.append(peer)
    return out


def read_relays(path=PATHS):
    """{peer key: relay key} the watcher last wrote; {} when there is none or it is unreadable."""
    try:
        data = node_record.read_json(path)
    except WglanError:
        return {}
    if not isinstance(data, dict) or not isinstance(data.get('relays'), dict):
        return {}
    return dict((k, v) for k, v in data['relays'].items() if isinstance(k, str) and isinstance(v, str))


def write_relays(relays, path=PATHS):
    node_record.write_json_if_changed(path, dict(version=1, relays=dict(sorted(relays.items()))), 0o644)
