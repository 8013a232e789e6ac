# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Segments (pure): a full mesh inside each segment, and gateways between them.

A node is in the segments its record names (`segments`), or in the segment "default" when it names
none: a mesh where no node names one is the full mesh it always was. Two nodes that share a segment
are peers. Two that do not reach each other through a gateway: a node in a segment of each (it
shares one with both) that relays (its record's `relay`). Of several, both ends take the same one
(preferred relays first, then the smallest public key), so that the replies come back the way the
requests went: each end puts the other's addresses on that gateway's peer entry, and the gateway,
which has both as peers, forwards between them with the relay table (model.relay, nft_objects).
A pair with no gateway does not reach each other at all.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.wglan.mesh.plugins.module_utils.model import node_records
from ansible_collections.wglan.mesh.plugins.module_utils.model.node_records import PREFERRED

DEFAULT = 'default'
parse_segments = node_records.parse_segments


def segments_of(record):
    return set(getattr(record, 'segments', None) or (DEFAULT,))


def share(a, b):
    return bool(segments_of(a) & segments_of(b))


def gateway(me, other, records):
    """The public key of the gateway between me and other (records: every node's), or None."""
    ranked = sorted((r.relay != PREFERRED, r.public_key) for r in records
                    if r.relay and r.public_key not in (me.public_key, other.public_key)
                    and share(r, me) and share(r, other))
    return ranked[0][1] if ranked else None


class Routes:
    """How me reaches every other node: directly (a peer), through a gateway, or not at all."""

    def __init__(self, direct, via, unreachable):
        self.direct = direct            # {public key} of the peers (they share a segment with me)
        self.via = via                  # {public key: the gateway's public key}
        self.unreachable = unreachable  # [name] of the nodes no gateway joins to me


def routes(me, records):
    direct, via, unreachable = set(), {}, []
    for record in records:
        if record.public_key == me.public_key:
            continue
        if share(me, record):
            direct.add(record.public_key)
            continue
        through = gateway(me, record, records)
        if through is None:
            unreachable.append(record.name)
        else:
            via[record.public_key] = through
    return Routes(direct, via, sorted(unreachable))


def segmented(me, records):
    """Whether segments change anything for me: some node is in a segment other than the default."""
    return any(getattr(r, 'segments', None) and set(r.segments) != {DEFAULT} for r in list(records) + [me])


def through_gateways(peers, route):
    """peers (built for every node) with each node reached through a gateway taken off as a peer and its
    addresses added to its gateway's, and each node no gateway joins taken off."""
    by_key = dict((p.public_key, p) for p in peers)
    extra = {}
    for key, through in sorted(route.via.items()):
        if key in by_key and through in by_key:
            extra.setdefault(through, []).extend(n for n in by_key[key].allowed_ips)
    out = []
    for peer in peers:
        if peer.public_key not in route.direct:
            continue
        if peer.public_key in extra:
            allowed = list(peer.allowed_ips) + [n for n in extra[peer.public_key] if n not in peer.allowed_ips]
            peer = peer.replace(allowed_ips=allowed)
        out.append(peer)
    return out
