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

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.model import node_records
from ansible_collections.wglan.mesh.plugins.module_utils.model.relay import relay_rank

DEFAULT = 'default'


def segments_of(record):
    return set(record.segments or (DEFAULT,))


def share(a, b):
    return bool(segments_of(a) & segments_of(b))


def gateway(me, other, records):
    """The public key of the gateway between me and other (records: every node's), or None."""
    ranked = sorted((r for r in records if r.relay and r.public_key not in (me.public_key, other.public_key)
                     and share(r, me) and share(r, other)), key=relay_rank)
    return ranked[0].public_key if ranked else None


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
    return any(r.segments and set(r.segments) != {DEFAULT} for r in list(records) + [me])


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


# -- the policy: who may open connections to whom, over the mesh ----------------------------------
PROTOCOLS = ('tcp', 'udp')


class Allow:
    """One kind of traffic a node lets in from the mesh: from these prefixes (IPv4 and IPv6), of this
    protocol (None: any) to these destination ports ([(low, high)]; none: every port)."""
    __slots__ = ('nets4', 'nets6', 'proto', 'ports', 'why')

    def __init__(self, nets, proto=None, ports=(), why=''):
        nets = sorted(set(nets), key=lambda n: (n.version, int(n.network_address), n.prefixlen))
        self.nets4 = [n for n in nets if n.version == 4]
        self.nets6 = [n for n in nets if n.version == 6]
        self.proto = proto
        self.ports = list(ports)
        self.why = why

    def key(self):
        return (tuple(self.nets4), tuple(self.nets6), self.proto, tuple(self.ports))

    def __eq__(self, other):
        return isinstance(other, Allow) and self.key() == other.key()

    def __ne__(self, other):
        return not self == other

    def __repr__(self):
        return 'Allow(%s)' % (self.why or repr(self.key()))


def _port_range(value, what):
    low, _sep, high = str(value).partition('-')
    try:
        low, high = int(low), int(high or low)
    except ValueError:
        raise WglanError('%s: port %r is not a port or a range (8000-8100)' % (what, value))
    if not 0 < low <= high < 65536:
        raise WglanError('%s: port %r is not within 1-65535' % (what, value))
    return low, high


def parse_policy(entries):
    """[{from, to, ports?, proto?}] -> [(from segment, to segment, proto or None, [(low, high)])].
    ports without proto: tcp. None: no policy (no filter)."""
    if entries is None:
        return None
    if not isinstance(entries, (list, tuple)):
        raise WglanError('segment_policy must be a list of {from, to, ports, proto}')
    out = []
    for index, entry in enumerate(entries):
        what = 'segment_policy[%d]' % index
        if not isinstance(entry, dict):
            raise WglanError('%s must be a mapping with from and to' % what)
        unknown = set(entry) - set(('from', 'to', 'ports', 'proto'))
        if unknown:
            raise WglanError('%s: unknown keys %s (from, to, ports, proto)' % (what, ', '.join(sorted(unknown))))
        ends = []
        for end in ('from', 'to'):
            names = node_records.parse_segments([entry.get(end)] if entry.get(end) else None, '%s.%s' % (what, end))
            if len(names) != 1:
                raise WglanError('%s: %s must name one segment' % (what, end))
            ends.append(names[0])
        ports = entry.get('ports') or []
        if not isinstance(ports, (list, tuple)):
            ports = [ports]
        ports = [_port_range(p, what) for p in ports]
        proto = entry.get('proto') or ('tcp' if ports else None)
        if proto not in PROTOCOLS + (None, 'any'):
            raise WglanError('%s: proto must be tcp, udp or any' % what)
        if proto == 'any':
            if ports:
                raise WglanError('%s: ports need proto tcp or udp' % what)
            proto = None
        out.append((ends[0], ends[1], proto, ports))
    return out


def allowed(me, records, policy, nets_of):
    """What me lets in over the mesh under policy (parse_policy's; None: no filter, returns None): every
    node that shares a segment with me, every port; and per policy entry whose destination is one of my
    segments, the nodes of its source segment, to its ports. nets_of(record): a node's addresses."""
    if policy is None:
        return None
    mine = segments_of(me)
    others = [r for r in records if r.public_key != me.public_key]
    out = [Allow([n for r in others if share(r, me) for n in nets_of(r)], why='the segments of this node')]
    for source, target, proto, ports in policy:
        if target in mine:
            nets = [n for r in others if source in segments_of(r) for n in nets_of(r)]
            out.append(Allow(nets, proto, ports, why='%s to %s' % (source, target)))
    return [a for a in out if a.nets4 or a.nets6]
