# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""This node's own record: what it publishes so that others can peer with it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import ipaddress
import json
import re

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.model.keys import normalize_key
from ansible_collections.wglan.mesh.plugins.module_utils.model.peers import format_endpoint, parse_endpoint, parse_network


def build_record(name, public_key, address, node_ips, port, extra_endpoints=(), pod_cidrs=(), observed=None,
                 relay=False, address4=None, segments=()):
    """This node's record (wglan_record's), through the one serializer: NodeRecord.as_dict. A record its
    peers would refuse (a port out of range) is refused here, before it is published."""
    check_port(port, name)
    return NodeRecord(name, public_key, address, node_ips, port,
                      [parse_endpoint(e, resolve=False) for e in extra_endpoints],
                      [parse_network(n, 'pod CIDR') for n in pod_cidrs], observed, relay=relay,
                      address4=address4, segments=parse_segments(segments)).as_dict()


def without_observations(data):
    """A record, or a state holding records, minus what nodes observed and the relays they use (caches that
    move), and the sequence numbers of the discovery service's members (which every publish moves)."""
    if not isinstance(data, dict):
        return data
    sections = [k for k in ('records', 'discovery', 'kubernetes') if isinstance(data.get(k), dict)]
    if sections:  # a state: records by name under each source
        stripped = dict((k, v) for k, v in data.items() if k != 'discovery_seen')
        for section in sections:
            stripped[section] = dict((k, without_observations(v)) for k, v in data[section].items())
        return stripped
    return dict((k, v) for k, v in data.items() if k not in ('observed', 'relays'))


RECORD_VERSION = 1


def check_port(port, name):
    """port, when it is a UDP port; else WglanError."""
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise WglanError('record of %s: port must be 1-65535, not %r' % (name, port))
    return port


def digest(raw, name=None):
    """A short fingerprint of what a record says that matters to its peers (observations and relays
    left out, the form normalized): equal for the record a node published and the copy another node
    kept of it. None for a record that does not parse."""
    try:
        record = parse_record(raw, name)
    except WglanError:
        return None
    text = json.dumps(without_observations(record.as_dict()), sort_keys=True, separators=(',', ':'))
    return hashlib.sha256(text.encode('utf-8')).hexdigest()[:16]


PREFERRED = 'preferred'
SEGMENT = re.compile(r'^[a-z0-9][a-z0-9-]{0,31}$')


def parse_segments(values, what='segments'):
    """A sorted tuple of segment names (model.segments), each once; a text is a comma-separated list."""
    if values is None:
        return ()
    if isinstance(values, str):
        values = [v for v in values.split(',') if v.strip()]
    if not isinstance(values, (list, tuple)):
        raise WglanError('%s must be a list of segment names' % what)
    out = set()
    for value in values:
        name = str(value).strip()
        if not SEGMENT.match(name):
            raise WglanError('%s: %r is not a segment name (1-32 lower case letters, digits and dashes, '
                             'a letter or digit first)' % (what, value))
        out.add(name)
    return tuple(sorted(out))


class NodeRecord:
    __slots__ = ('name', 'public_key', 'address', 'node_ips', 'port', 'extra_endpoints', 'pod_cidrs', 'observed',
                 'public_ip', 'relay', 'relays', 'address4', 'next_key', 'segments', 'withdrawn', 'certificate',
                 'revocations', 'claims_sig', 'succession', 'unrouted')

    def __init__(self, name, public_key, address, node_ips=(), port=51820, extra_endpoints=(), pod_cidrs=(),
                 observed=None, public_ip=None, relay=False, relays=None, address4=None, next_key=None, segments=(),
                 withdrawn=False, certificate=None, revocations=None, claims_sig=None, succession=()):
        self.name = name
        self.public_key = public_key
        self.address = address
        self.node_ips = list(node_ips)
        self.port = port
        self.extra_endpoints = list(extra_endpoints)
        self.pod_cidrs = list(pod_cidrs)
        self.observed = dict(observed or {})
        self.public_ip = public_ip  # the address a discovery service saw this node's requests come from
        self.relay = PREFERRED if relay == PREFERRED else bool(relay)
        self.relays = None if relays is None else dict(relays)  # None: the node publishes no relays
        self.address4 = address4  # its address in the IPv4 overlay (None: the mesh has none)
        self.next_key = next_key  # (public key, unix time) it switches to at that time (key rotation), or None
        self.segments = tuple(segments or ())  # the segments it is in (model.segments; none: the default one)
        self.withdrawn = bool(withdrawn)  # the node left the mesh (its last record, signed by its key): no peer
        self.certificate = certificate  # its certificate (model.certificates), text, or None
        self.revocations = revocations  # the newest revocation list it holds (it passes it on), text, or None
        self.claims_sig = claims_sig  # its node's signature over what it claims (model.certificates.sign_claims)
        self.succession = tuple(succession or ())  # key rotations since its certificate: ((key, signer, sig), ...)
        self.unrouted = frozenset()  # node IPs its certificate does not grant: endpoints, never routed to it

    def own_endpoints(self):
        return sorted(format_endpoint(iface.ip, self.port) for iface in self.node_ips)

    def own_ips(self):
        return set(iface.ip for iface in self.node_ips)

    def as_dict(self):
        out = {
            'version': RECORD_VERSION,
            'name': self.name,
            'public_key': self.public_key,
            'address': str(self.address) if self.address else None,
            'node_ips': [str(i) for i in self.node_ips],
            'port': self.port,
            'extra_endpoints': list(self.extra_endpoints),
            'pod_cidrs': [str(n) for n in self.pod_cidrs],
            'observed': dict(sorted(self.observed.items())),
        }
        if self.address4 is not None:
            out['address4'] = str(self.address4)
        if self.next_key is not None:
            out['next_public_key'], out['next_key_at'] = self.next_key
        if self.segments:
            out['segments'] = list(self.segments)
        if self.withdrawn:
            out['withdrawn'] = True
        if self.certificate:
            out['certificate'] = self.certificate
        if self.revocations:
            out['revocations'] = self.revocations
        if self.claims_sig:
            out['claims_sig'] = self.claims_sig
        if self.succession:
            out['succession'] = [list(step) for step in self.succession]
        if self.public_ip is not None:
            out['discovery_observed'] = str(self.public_ip)
        if self.relay:
            out['relay'] = self.relay
        if self.relays is not None:
            out['relays'] = dict(sorted(self.relays.items()))
        return out


def parse_record(raw, name=None):
    """Untrusted dict -> NodeRecord, or WglanError naming the problem."""
    if not isinstance(raw, dict):
        raise WglanError('record is not a mapping')
    name = raw.get('name') or name
    if not name or not isinstance(name, str):
        raise WglanError('record has no name')
    version = raw.get('version', RECORD_VERSION)
    if version != RECORD_VERSION:
        raise WglanError('record of %s has version %r, this collection reads version %d' % (name, version, RECORD_VERSION))
    if not raw.get('public_key'):
        raise WglanError('record of %s has no public key yet' % name)
    public_key = normalize_key(raw['public_key'], 'public key of %s' % name)
    address = None
    if raw.get('address'):
        try:
            address = ipaddress.IPv6Address(str(raw['address']))
        except ValueError:
            raise WglanError('record of %s: address %r is not an IPv6 address' % (name, raw['address']))
    address4 = None
    if raw.get('address4'):
        try:
            address4 = ipaddress.IPv4Address(str(raw['address4']))
        except ValueError:
            raise WglanError('record of %s: address4 %r is not an IPv4 address' % (name, raw['address4']))
        if address4.is_global or address4.is_loopback or address4.is_multicast or address4.is_unspecified \
                or address4.is_link_local:
            raise WglanError('record of %s: address4 %s is not a private address' % (name, address4))
    try:
        node_ips = [ipaddress.ip_interface(str(v)) for v in raw.get('node_ips') or []]
    except ValueError as exc:
        raise WglanError('record of %s: bad node IP: %s' % (name, exc))
    port = check_port(raw.get('port', 51820), name)
    try:
        extra = [parse_endpoint(e, resolve=False) for e in raw.get('extra_endpoints') or []]
        pods = [parse_network(n, 'pod CIDR') for n in raw.get('pod_cidrs') or []]
    except WglanError as exc:
        raise WglanError('record of %s: %s' % (name, exc))
    observed = {}
    for key, endpoint in (raw.get('observed') or {}).items():
        try:
            observed[normalize_key(key, 'observed peer key')] = parse_endpoint(endpoint, resolve=False)
        except WglanError:
            continue  # one stale or odd observation does not invalidate the record
    public_ip = None
    if raw.get('discovery_observed'):
        try:
            public_ip = ipaddress.ip_address(str(raw['discovery_observed']))
        except ValueError:
            public_ip = None  # an odd observation does not invalidate the record
    relay = raw.get('relay')
    segments = parse_segments(raw.get('segments'), 'record of %s: segments' % name)
    withdrawn = raw.get('withdrawn', False)
    if not isinstance(withdrawn, bool):
        raise WglanError('record of %s: withdrawn must be true or false, not %r' % (name, withdrawn))
    return NodeRecord(name, public_key, address, node_ips, port, extra, pods, observed, public_ip,
                      relay if relay in (True, PREFERRED) else False, _relays(raw.get('relays')), address4,
                      _next_key(raw, name, public_key), segments, withdrawn,
                      _signed_text(raw, 'certificate', name), _signed_text(raw, 'revocations', name),
                      _signed_text(raw, 'claims_sig', name), _succession(raw.get('succession'), name))


SUCCESSION_MAX = 16


def _succession(raw, name):
    """The key rotations a record lists since its certificate: ((key, signer, signature), ...)."""
    if not raw:
        return ()
    if not isinstance(raw, list) or len(raw) > SUCCESSION_MAX:
        raise WglanError('record of %s: succession must be a list of at most %d steps' % (name, SUCCESSION_MAX))
    out = []
    for step in raw:
        if not isinstance(step, (list, tuple)) or len(step) != 3 or not all(isinstance(v, str) for v in step) \
                or len(step[2]) > 200:
            raise WglanError('record of %s: a succession step is [key, signing key, signature]' % name)
        out.append((normalize_key(step[0], 'succession key of %s' % name),
                    normalize_key(step[1], 'succession signing key of %s' % name), step[2]))
    return tuple(out)


SIGNED_TEXT_MAX = 8192


def _signed_text(raw, field, name):
    """A certificate or revocation list a record carries (checked where it is used): text of bounded size."""
    value = raw.get(field)
    if value is None or value == '':
        return None
    if not isinstance(value, str) or len(value) > SIGNED_TEXT_MAX:
        raise WglanError('record of %s: %s must be text of at most %d characters' % (name, field, SIGNED_TEXT_MAX))
    return value


def _next_key(raw, name, public_key):
    """The key a record says its node switches to, and when: (public key, unix time), or None."""
    if not raw.get('next_public_key'):
        return None
    key = normalize_key(raw['next_public_key'], 'next public key of %s' % name)
    at = raw.get('next_key_at')
    if isinstance(at, bool) or not isinstance(at, (int, float)) or not 0 < at < 2 ** 40:
        raise WglanError('record of %s: next_key_at must be a time (seconds since 1970)' % name)
    if key == public_key:
        raise WglanError('record of %s: its next public key is its public key' % name)
    return key, int(at)


def parse_known(raws, warn, source):
    """Records kept from the last time a source answered ({name: dict}) -> NodeRecords; one that no
    longer parses (written by another version) is left out with a warning."""
    out = []
    for name, raw in sorted((raws or {}).items()):
        try:
            out.append(parse_record(raw, name))
        except WglanError as exc:
            warn('%s: node %s: kept record skipped: %s' % (source, name, exc))
    return out


def _relays(raw):
    """A record's relays ({peer key: relay key}); None when it has none. Odd entries are left out."""
    if not isinstance(raw, dict):
        return None
    out = {}
    for peer, via in raw.items():
        try:
            out[normalize_key(peer, 'relayed peer key')] = normalize_key(via, 'relay key')
        except (WglanError, TypeError, AttributeError):
            continue
    return out
