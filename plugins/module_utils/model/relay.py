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

Who relays for whom: a relay for the pair (A, B) is a node whose record says
`relay: true` (or `preferred`) and whose observations show it up with both A
and B (it reaches both: the watcher publishes only peers it receives from).
Preferred relays come first, then the smallest public key. The two ends must
use the same relay, or each drops the other's packets (they arrive from a peer
that does not hold their addresses), yet they may see the records at different
moments and the path fail one way only. So of each pair, the node with the
smaller public key (the leader) decides, and says so in its record (`relays`);
the other end follows what the leader's record says, and asks for a relay by
listing it in its own record. A node whose record has no `relays` (it runs no
watcher, or an older version) leaves each end to decide alone, as before. A
relay in use is kept while it is up: a warm path beats a better-ranked cold one.

The peer itself stays configured (without allowed IPs), and the watcher keeps
sweeping its endpoints; when a handshake completes the addresses move back
and the path is direct again.

The watcher writes its current relays to PATHS, so that a wglan_peers run
on the same node builds the same allowed IPs instead of undoing them."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.wglan.mesh.plugins.module_utils.model.node_records import PREFERRED


def relay_rank(record):
    """The order relays are chosen in, the same at both ends of a pair: preferred ones first, then the
    smallest public key (also a segment's gateway, model.segments)."""
    return (record.relay != PREFERRED, record.public_key)


def relay_candidates(me_key, peer_key, records):
    """Public keys of the nodes that can relay between me and peer, best first (preferred, then smallest key)."""
    out = []
    for record in records:
        if not record.relay or record.public_key in (me_key, peer_key):
            continue
        if me_key in record.observed and peer_key in record.observed:
            out.append(record)
    return [r.public_key for r in sorted(out, key=relay_rank)]


def choose_relay(me_key, peer_key, records, up, current=None):
    """The relay to use for peer, or None. up: keys of peers this node sees up.

    The one in use (current) while it is still a candidate and up; else the
    best candidate this node sees up.
    """
    candidates = relay_candidates(me_key, peer_key, records)
    if current in candidates and current in up:
        return current
    for key in candidates:
        if key in up:
            return key
    return None


def agree(me_key, wanted, records, up, current):
    """The relays both ends of each pair agree on: ({peer: relay} to use, {peer: relay} to publish).

    wanted: keys of the peers this node wants a relay for (no direct path);
    current: {peer: relay} in use now. See the module's docstring.
    """
    by_key = dict((r.public_key, r) for r in records if r.public_key != me_key)
    use, publish = {}, {}
    for key in sorted(set(by_key) | set(wanted)):
        record = by_key.get(key)
        theirs = record.relays.get(me_key) if record is not None and record.relays is not None else None
        if record is None or record.relays is None or me_key < key:
            if key in wanted or theirs:
                chosen = choose_relay(me_key, key, records, up, current.get(key) or theirs)
                if chosen is not None:
                    use[key] = publish[key] = chosen
            continue
        if theirs is not None and theirs in up and theirs != key:
            use[key] = theirs
        if key in wanted:  # ask the leader for a relay; a hint of which one
            hint = choose_relay(me_key, key, records, up, current.get(key))
            if hint is not None:
                publish[key] = hint
    return use, publish


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


def reached_through_relay(keys, up, relays):
    """Of keys (peers not up themselves), those whose relay is up: they are reached all the same."""
    return set(key for key in keys if key not in up and relays.get(key) in up)
