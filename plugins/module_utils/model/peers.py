# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Peer records and the pure model around them.

- parse_peer / parse_peers: untrusted dicts -> validated Peer records.
- resolve_overlaps: no peer may claim an address another peer already holds.
- diff_peers: desired vs. running peers -> the smallest list of peer operations.

No I/O here except optional DNS resolution of endpoint host names in parsing.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import bisect
import ipaddress
import re

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.model.keys import normalize_key

ZERO_KEY = 'AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA='
DEFAULT_KEEPALIVE = 25
_HOSTNAME_RE = re.compile(r'^(?=.{1,253}$)[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$')


class Peer:
    """One desired or running peer.

    allowed_ips is a sorted tuple of ip_network. A running peer read from a
    device keeps the device's text and parses it only when asked: a reconcile
    compares text first (see allowed_text) and parses only where text differs,
    which keeps a no-op reconcile of thousands of peers cheap.
    """

    __slots__ = ('_public_key', '_key_hex', 'endpoint', '_allowed', '_allowed_text', 'preshared_key',
                 'persistent_keepalive', 'name', 'endpoint_fallback')
    FIELDS = ('public_key', 'endpoint', 'allowed_ips', 'preshared_key', 'persistent_keepalive', 'name')

    def __init__(self, public_key, endpoint=None, allowed_ips=(), preshared_key=None,
                 persistent_keepalive=0, name=None, endpoint_fallback=False):
        # endpoint_fallback: the endpoint is a best guess (an observation, an own
        # address). It is set for a peer that is not up, but never replaces the
        # endpoint of a peer that is up: WireGuard roamed there, so it works.
        self.endpoint_fallback = endpoint_fallback
        self._public_key = public_key
        self._key_hex = None
        self.endpoint = endpoint
        self._allowed = tuple(sorted(allowed_ips, key=network_sort_key))
        self._allowed_text = None
        self.preshared_key = None if preshared_key in (None, ZERO_KEY) else preshared_key
        self.persistent_keepalive = int(persistent_keepalive or 0)
        self.name = name

    @classmethod
    def from_device(cls, public_key, endpoint, allowed_text, preshared_key, persistent_keepalive, key_hex=None):
        """A running peer as a device reports it; allowed_text holds CIDR strings.

        A device speaking hex (the UAPI) passes key_hex and no public_key: the
        base64 form is made only if somebody asks for it.
        """
        peer = cls.__new__(cls)
        peer._public_key = public_key
        peer._key_hex = key_hex
        peer.endpoint = endpoint
        peer._allowed = None
        peer._allowed_text = frozenset(allowed_text)
        peer.preshared_key = None if preshared_key in (None, ZERO_KEY) else preshared_key
        peer.persistent_keepalive = persistent_keepalive
        peer.endpoint_fallback = False
        peer.name = None
        return peer

    @property
    def public_key(self):
        if self._public_key is None:
            self._public_key = base64.b64encode(binascii.unhexlify(self._key_hex)).decode('ascii')
        return self._public_key

    @property
    def key_hex(self):
        """The public key as hex: what the UAPI speaks, and what peers are matched by."""
        if self._key_hex is None:
            self._key_hex = binascii.hexlify(base64.b64decode(self._public_key)).decode('ascii')
        return self._key_hex

    @property
    def allowed_ips(self):
        if self._allowed is None:
            self._allowed = tuple(sorted((ipaddress.ip_network(t, strict=False) for t in self._allowed_text),
                                         key=network_sort_key))
        return self._allowed

    def allowed_text(self):
        """The allowed IPs as a frozenset of canonical CIDR strings."""
        if self._allowed_text is None:
            self._allowed_text = frozenset(str(net) for net in self._allowed)
        return self._allowed_text

    def same_allowed_ips(self, other):
        if self.allowed_text() == other.allowed_text():
            return True
        return set(self.allowed_ips) == set(other.allowed_ips)

    def same_endpoint(self, other):
        """Whether other's endpoint is this one's (spelling differences aside)."""
        if self.endpoint == other.endpoint:
            return True
        if not self.endpoint or not other.endpoint:
            return False
        return canonical_endpoint(self.endpoint) == canonical_endpoint(other.endpoint)

    def label(self):
        return self.name or self.public_key

    def replace(self, **changes):
        values = dict((field, getattr(self, field)) for field in self.FIELDS)
        values['endpoint_fallback'] = self.endpoint_fallback
        values.update(changes)
        return Peer(**values)

    def as_dict(self, redact=True):
        """Plain, JSON-friendly form. Preshared keys are shown only as present/absent."""
        out = {
            'public_key': self.public_key,
            'endpoint': self.endpoint,
            'allowed_ips': [str(net) for net in self.allowed_ips],
            'persistent_keepalive': self.persistent_keepalive,
        }
        if redact:
            out['preshared_key'] = 'set' if self.preshared_key else None
        else:
            out['preshared_key'] = self.preshared_key
        if self.name:
            out['name'] = self.name
        return out

    def __eq__(self, other):
        return isinstance(other, Peer) and all(getattr(self, f) == getattr(other, f) for f in self.FIELDS)

    def __ne__(self, other):
        return not self == other

    def __repr__(self):
        return 'Peer(%r)' % (self.as_dict(),)


def network_sort_key(net):
    return (net.version, int(net.network_address), net.prefixlen)


def parse_network(value, what='allowed IP'):
    """'192.0.2.1', '192.0.2.0/24', '2001:db8::/64' -> ip_network (host bits must be zero)."""
    text = str(value).strip()
    try:
        return ipaddress.ip_network(text, strict=True)
    except ValueError as exc:
        raise WglanError('invalid %s %r: %s' % (what, text, exc))


def format_endpoint(address, port):
    addr = ipaddress.ip_address(address)
    if addr.version == 6:
        return '[%s]:%d' % (addr.compressed, port)
    return '%s:%d' % (addr, port)


def canonical_endpoint(text):
    """An 'ip:port' as a device prints it -> the form parse_endpoint produces.

    IPv4-mapped IPv6 becomes IPv4; scoped (%zone) addresses are returned as they are.
    """
    host, _sep, port = text.rpartition(':')
    host = host.strip('[]')
    if '%' in host:
        return text
    try:
        addr = ipaddress.ip_address(host)
    except ValueError:
        return text
    if addr.version == 6 and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return format_endpoint(addr, int(port))


def parse_endpoint(value, resolve=None):
    """'host:port', '192.0.2.1:51820', '[2001:db8::1]:51820' -> canonical 'ip:port'.

    Host names are resolved once here (WireGuard itself takes only addresses) by resolve(host, port,
    text) -> address, when given; without it a host name is an error.
    """
    text = str(value).strip()
    if text.startswith('['):
        close = text.find(']')
        if close < 0 or text[close + 1:close + 2] != ':':
            raise WglanError('invalid endpoint %r: expected [IPv6]:port' % text)
        host, port_text = text[1:close], text[close + 2:]
    else:
        host, sep, port_text = text.rpartition(':')
        if not sep or ':' in host:
            raise WglanError('invalid endpoint %r: expected host:port (IPv6 in brackets)' % text)
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise WglanError('invalid endpoint %r: port must be 1-65535' % text)
    port = int(port_text)
    try:
        return format_endpoint(host, port)
    except ValueError:
        pass
    if not _HOSTNAME_RE.match(host):
        raise WglanError('invalid endpoint %r: not an IP address or host name' % text)
    if not resolve:
        raise WglanError('invalid endpoint %r: host names are not accepted here' % text)
    # (the model does no I/O: the shell that accepts host names gives the resolver, host.names.resolve)
    return format_endpoint(resolve(host, port, text), port)


def _as_int(value, what, low, high):
    if isinstance(value, bool):
        raise WglanError('%s must be a number' % what)
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise WglanError('%s must be a number, got %r' % (what, value))
    if not low <= number <= high:
        raise WglanError('%s must be between %d and %d' % (what, low, high))
    return number


def _may_collapse(nets):
    """Whether any two prefixes overlap or touch (only then can collapsing change them)."""
    spans = sorted((net.version,) + _interval(net) for net in nets)
    for before, after in zip(spans, spans[1:]):
        if before[0] == after[0] and after[1] <= before[2] + 1:
            return True
    return False


PEER_FIELDS = ('public_key', 'endpoint', 'allowed_ips', 'preshared_key', 'persistent_keepalive', 'name')


def parse_peer(raw, resolve=None, default_keepalive=DEFAULT_KEEPALIVE):
    """A dict from the user or a source -> Peer. Raises WglanError naming the problem."""
    if not isinstance(raw, dict):
        raise WglanError('a peer must be a mapping, got %s' % type(raw).__name__)
    unknown = sorted(set(raw) - set(PEER_FIELDS))
    if unknown:
        raise WglanError('unknown peer field(s): %s' % ', '.join(unknown))
    name = raw.get('name')
    where = 'peer %s' % name if name else 'peer'
    if not raw.get('public_key'):
        raise WglanError('%s: public_key is required' % where)
    public_key = normalize_key(raw['public_key'], '%s public_key' % where)
    where = 'peer %s' % (name or public_key)
    preshared = raw.get('preshared_key')
    if preshared:
        preshared = normalize_key(preshared, '%s preshared_key' % where)
    endpoint = raw.get('endpoint')
    if endpoint:
        try:
            endpoint = parse_endpoint(endpoint, resolve=resolve)
        except WglanError as exc:
            raise WglanError('%s: %s' % (where, exc))
    else:
        endpoint = None
    allowed = raw.get('allowed_ips') or []
    if isinstance(allowed, str):
        allowed = [item for item in allowed.split(',') if item.strip()]
    if not isinstance(allowed, (list, tuple)):
        raise WglanError('%s: allowed_ips must be a list' % where)
    try:
        nets = [parse_network(item) for item in allowed]
    except WglanError as exc:
        raise WglanError('%s: %s' % (where, exc))
    keepalive = raw.get('persistent_keepalive')
    keepalive = default_keepalive if keepalive is None else _as_int(keepalive, '%s persistent_keepalive' % where, 0, 65535)
    if len(nets) > 1 and _may_collapse(nets):
        nets = list(ipaddress.collapse_addresses([n for n in nets if n.version == 4])) + \
            list(ipaddress.collapse_addresses([n for n in nets if n.version == 6]))
    peer = Peer(public_key, endpoint, nets, preshared, keepalive, name)
    peer.allowed_text()  # computed once here, compared on every reconcile
    peer.key_hex  # pylint: disable=pointless-statement
    return peer


def parse_peers(raw_list, resolve=None, default_keepalive=DEFAULT_KEEPALIVE):
    """Parse a whole list; duplicate public keys are an error (which one wins is not guessable)."""
    if raw_list is None:
        return []
    if not isinstance(raw_list, (list, tuple)):
        raise WglanError('peers must be a list')
    peers = []
    seen = {}
    for index, raw in enumerate(raw_list):
        try:
            peer = parse_peer(raw, resolve=resolve, default_keepalive=default_keepalive)
        except WglanError as exc:
            raise WglanError('peers[%d]: %s' % (index, exc))
        if peer.public_key in seen:
            raise WglanError('peers[%d]: duplicate public key (also peers[%d])' % (index, seen[peer.public_key]))
        seen[peer.public_key] = index
        peers.append(peer)
    return peers


class _Claims:
    """Disjoint, sorted integer intervals of one address family already owned by a peer."""

    def __init__(self):
        self.starts = []
        self.ends = []

    def subtract(self, start, end):
        """Parts of [start, end] nobody owns yet, as intervals."""
        free = []
        cursor = start
        index = bisect.bisect_left(self.ends, start)
        while index < len(self.starts) and self.starts[index] <= end:
            if self.starts[index] > cursor:
                free.append((cursor, self.starts[index] - 1))
            cursor = max(cursor, self.ends[index] + 1)
            index += 1
        if cursor <= end:
            free.append((cursor, end))
        return free

    def claim(self, start, end):
        index = bisect.bisect_left(self.starts, start)
        self.starts.insert(index, start)
        self.ends.insert(index, end)


def _interval(net):
    start = int(net.network_address)
    return start, start + (1 << (net.max_prefixlen - net.prefixlen)) - 1


def _to_networks(version, start, end):
    cls = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
    return list(ipaddress.summarize_address_range(cls(start), cls(end)))


def resolve_overlaps(peers):
    """Give every address to at most one peer, deterministically.

    Order of precedence, independent of the order of the input:
    1. single addresses (/32, /128: a peer's own IPs) before ranges,
    2. then by public key.
    A later claim loses only the overlapping part. Returns (peers, dropped) where
    dropped lists (peer label, prefix given up, reason).
    """
    ordered = sorted(peers, key=lambda p: p.public_key)
    claims = {4: _Claims(), 6: _Claims()}
    kept = dict((p.public_key, []) for p in ordered)
    dropped = []
    for phase_hosts in (True, False):
        for peer in ordered:
            for net in peer.allowed_ips:
                is_host = net.prefixlen == net.max_prefixlen
                if is_host != phase_hosts:
                    continue
                start, end = _interval(net)
                table = claims[net.version]
                free = table.subtract(start, end)
                if free == [(start, end)]:
                    kept[peer.public_key].append(net)
                else:
                    dropped.append((peer.label(), str(net), 'overlaps an address of another peer'))
                    for part_start, part_end in free:
                        kept[peer.public_key].extend(_to_networks(net.version, part_start, part_end))
                for part_start, part_end in free:
                    table.claim(part_start, part_end)
    result = [peer.replace(allowed_ips=kept[peer.public_key]) for peer in peers]
    return result, dropped


class PeerOp:
    """One operation on one peer. fields holds only what is sent for it."""

    __slots__ = ('action', 'public_key', 'fields')

    ADD = 'add'
    UPDATE = 'update'
    REMOVE = 'remove'

    def __init__(self, action, public_key, fields=None):
        self.action = action
        self.public_key = public_key
        self.fields = fields or {}

    def __eq__(self, other):
        return isinstance(other, PeerOp) and (self.action, self.public_key, self.fields) == \
            (other.action, other.public_key, other.fields)

    def __repr__(self):
        shown = dict(self.fields)
        if 'preshared_key' in shown:
            shown['preshared_key'] = 'set' if shown['preshared_key'] else None
        return 'PeerOp(%s %s %r)' % (self.action, self.public_key, shown)


def diff_peers(desired, current, purge=False, up=()):
    """Operations that turn the running peers into the desired ones.

    - a peer not running is added with everything it has;
    - a running peer gets only the fields that differ (allowed IPs are replaced
      as a whole when the set differs);
    - a desired peer without an endpoint keeps whatever endpoint it has (it may
      have roamed there), and so does one whose endpoint is only a fallback
      guess while it is up (up: hex keys of running peers with a recent handshake);
    - running peers not desired are removed only when purge is set.
    Order: removals, then updates, then additions, each sorted by key, so that
    a freed address is released before another peer takes it.
    """
    current_by_key = dict((p.key_hex, p) for p in current)
    desired_keys = set()
    removes, updates, adds = [], [], []
    for peer in desired:
        desired_keys.add(peer.key_hex)
        running = current_by_key.get(peer.key_hex)
        if running is None:
            fields = {
                'allowed_ips': peer.allowed_ips,
                'persistent_keepalive': peer.persistent_keepalive,
                'preshared_key': peer.preshared_key,
            }
            if peer.endpoint:
                fields['endpoint'] = peer.endpoint
            adds.append(PeerOp(PeerOp.ADD, peer.public_key, fields))
            continue
        fields = {}
        if peer.endpoint and not peer.same_endpoint(running) \
                and not (peer.endpoint_fallback and running.key_hex in up):
            fields['endpoint'] = peer.endpoint
        if not peer.same_allowed_ips(running):
            fields['allowed_ips'] = peer.allowed_ips
        if peer.persistent_keepalive != running.persistent_keepalive:
            fields['persistent_keepalive'] = peer.persistent_keepalive
        if peer.preshared_key != running.preshared_key:
            fields['preshared_key'] = peer.preshared_key
        if fields:
            updates.append(PeerOp(PeerOp.UPDATE, peer.public_key, fields))
    if purge:
        for peer in current:
            if peer.key_hex not in desired_keys:
                removes.append(PeerOp(PeerOp.REMOVE, peer.public_key))
    return sorted(removes, key=_op_key) + sorted(updates, key=_op_key) + sorted(adds, key=_op_key)


def apply_ops(current, desired, ops):
    """The peers as they will be after ops (running peers current, the desired ones the ops came from)."""
    result = dict((p.public_key, p) for p in current)
    wanted = dict((p.public_key, p) for p in desired)
    for op in ops:
        if op.action == PeerOp.REMOVE:
            result.pop(op.public_key, None)
        elif op.action == PeerOp.ADD:
            result[op.public_key] = wanted[op.public_key]
        else:
            result[op.public_key] = result[op.public_key].replace(**op.fields)
    return list(result.values())


def _op_key(op):
    return op.public_key


def summarize_ops(ops):
    """{'peers_added': [...], 'peers_changed': [...], 'peers_removed': [...]} of public keys."""
    out = {'peers_added': [], 'peers_changed': [], 'peers_removed': []}
    names = {PeerOp.ADD: 'peers_added', PeerOp.UPDATE: 'peers_changed', PeerOp.REMOVE: 'peers_removed'}
    for op in ops:
        out[names[op.action]].append(op.public_key)
    return out
