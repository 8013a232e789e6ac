# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Node certificates: who the operator admitted to a mesh, and what each member may claim.

The operator's fleet CA is an Ed25519 key made once on the controller (wglan_ca). Only its public key
goes to the nodes. For each node the controller signs a certificate binding the mesh's name, the
node's name, its WireGuard public key, the addresses it may claim (its mesh address, its IPv4 overlay
address), the pod CIDRs and segments it may announce, the prefixes its node IPs may lie in, and a
validity period. The certificate travels inside the node's record, through every source.

A node that holds the CA's public key (admission: certificates) takes from every source only what a
valid certificate grants (admit): a record without one, for another key, another name or another
mesh, expired, or revoked, is no peer; a claim the certificate does not grant (an address, a pod CIDR,
a segment, a node IP to route) is dropped, never the peer's certified addresses. Names therefore come
from certificates, and a member's token alone takes nobody's name, slot or addresses.

A revocation list, signed by the same CA, names keys and nodes no longer admitted. It is carried by the
records too: every node republishes the newest list it holds, so the list reaches every node through
every source; an older list than the one a node holds is ignored (the issue time orders them).

Format (text, so that it fits a record, an annotation and a variable alike):
    wglan-cert-1.<base64url of the canonical JSON payload>.<base64url of the Ed25519 signature>
    wglan-revoked-1.<payload>.<signature>
The signature covers the two first parts as ASCII.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import copy
import hashlib
import ipaddress
import json
import secrets

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.model import keys
from ansible_collections.wglan.mesh.plugins.module_utils.model.keys import normalize_key, public_key_from_private
from ansible_collections.wglan.mesh.plugins.module_utils.model.node_records import SIGNED_TEXT_MAX, parse_record

try:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - exercised by the import sanity test
    HAS_CRYPTOGRAPHY = False

CERT_TAG = 'wglan-cert-1'
REVOKED_TAG = 'wglan-revoked-1'
MAX_TEXT = SIGNED_TEXT_MAX  # a certificate or list longer than a record may carry is refused before it is decoded
MAX_ENTRIES = 4096       # revoked keys plus names in one list
DAY = 86400
DEFAULT_LIFETIME = 365 * DAY
RENEW_BEFORE = 30 * DAY  # a run renews a certificate that expires within this
BACKDATE = DAY           # not_before lies this far before the signing: a node whose clock is behind still admits
CERTIFICATES = 'certificates'
TOKEN = 'token'
ADMISSIONS = (CERTIFICATES, TOKEN)


def _require_crypto():
    if not HAS_CRYPTOGRAPHY:
        raise WglanError('the Python library "cryptography" is required')


def _b64u(raw):
    return base64.urlsafe_b64encode(raw).decode('ascii').rstrip('=')


def _unb64u(text):
    return base64.urlsafe_b64decode(str(text) + '=' * (-len(text) % 4))


def _canonical(payload):
    return json.dumps(payload, sort_keys=True, separators=(',', ':')).encode('utf-8')


# -- the CA key -----------------------------------------------------------------

def new_ca_key():
    """A new CA key: the 32 raw bytes of an Ed25519 private key."""
    _require_crypto()
    return Ed25519PrivateKey.generate().private_bytes(serialization.Encoding.Raw, serialization.PrivateFormat.Raw,
                                                      serialization.NoEncryption())


CA_KEY_HEAD = 'wglan-ca-key-1:'


def ca_key_text(raw):
    """The CA key as the key file (or a vaulted variable) holds it."""
    return CA_KEY_HEAD + base64.b64encode(raw).decode('ascii') + '\n'


def parse_ca_key(text):
    """The CA key's 32 raw bytes from its text; WglanError that never echoes it."""
    if isinstance(text, bytes):
        try:
            text = text.decode('ascii')
        except UnicodeDecodeError:
            raise WglanError('the CA key is not a wglan.mesh CA key (not text)')
    text = str(text or '').strip()
    if not text.startswith(CA_KEY_HEAD):
        raise WglanError('the CA key is not a wglan.mesh CA key (it must begin with %s)' % CA_KEY_HEAD)
    try:
        raw = base64.b64decode(text[len(CA_KEY_HEAD):], validate=True)
    except (binascii.Error, ValueError):
        raise WglanError('the CA key is corrupt (not base64)')
    if len(raw) != 32:
        raise WglanError('the CA key is corrupt (it must hold 32 bytes)')
    return raw


def ca_public_key(raw):
    """The CA's public key, base64 (what the nodes hold: wglan_ca_public_key)."""
    _require_crypto()
    public = Ed25519PrivateKey.from_private_bytes(raw).public_key()
    return base64.b64encode(public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)).decode('ascii')


def parse_ca_public_key(text):
    """The CA's public key in canonical base64, or WglanError."""
    try:
        raw = base64.b64decode(str(text or '').strip(), validate=True)
    except (binascii.Error, ValueError):
        raise WglanError('the CA public key is not base64')
    if len(raw) != 32:
        raise WglanError('the CA public key must decode to 32 bytes')
    return base64.b64encode(raw).decode('ascii')


def _sign(raw_key, tag, payload):
    _require_crypto()
    head = '%s.%s' % (tag, _b64u(_canonical(payload)))
    signature = Ed25519PrivateKey.from_private_bytes(raw_key).sign(head.encode('ascii'))
    return '%s.%s' % (head, _b64u(signature))


def _open(text, tag, ca_public, what):
    """The payload of a signed text (certificate or list) the CA made, or WglanError naming why not."""
    _require_crypto()
    if not isinstance(text, str) or not text:
        raise WglanError('%s is missing' % what)
    if len(text) > MAX_TEXT:
        raise WglanError('%s is too long (%d characters, at most %d)' % (what, len(text), MAX_TEXT))
    parts = text.split('.')
    if len(parts) != 3 or parts[0] != tag:
        raise WglanError('%s is not a %s' % (what, tag))
    try:
        payload_raw, signature = _unb64u(parts[1]), _unb64u(parts[2])
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(ca_public))
    except (binascii.Error, ValueError, TypeError):
        raise WglanError('%s is not well formed' % what)
    try:
        public.verify(signature, ('%s.%s' % (parts[0], parts[1])).encode('ascii'))
    except InvalidSignature:
        raise WglanError('%s is not signed by this mesh\'s CA' % what)
    try:
        payload = json.loads(payload_raw.decode('utf-8'))
    except (ValueError, UnicodeDecodeError):
        raise WglanError('%s holds no JSON' % what)
    if not isinstance(payload, dict):
        raise WglanError('%s holds no mapping' % what)
    return payload


# -- certificates ---------------------------------------------------------------

class Certificate:
    """What a certificate grants (parsed, signature checked)."""

    __slots__ = ('mesh', 'name', 'public_key', 'signer', 'addresses', 'pod_cidrs', 'node_ip_prefixes', 'segments',
                 'not_before', 'not_after', 'serial', 'slot')

    def __init__(self, mesh, name, public_key, signer, addresses, pod_cidrs, node_ip_prefixes, segments, not_before,
                 not_after, serial, slot=None):
        self.mesh, self.name, self.public_key = mesh, name, public_key
        self.signer = signer  # the node's own signing key (Ed25519, from its WireGuard key): its records are signed with it
        self.addresses = tuple(addresses)            # ip_address: the mesh address, the IPv4 overlay address
        self.pod_cidrs = tuple(pod_cidrs)            # ip_network
        self.node_ip_prefixes = tuple(node_ip_prefixes)  # ip_network
        self.segments = tuple(segments)
        self.not_before, self.not_after, self.serial = not_before, not_after, serial
        # the CA's slot grant for a discovery service (slot_message), base64; None in certificates made before
        self.slot = slot

    def payload(self):
        out = dict(v=1, mesh=self.mesh, name=self.name, key=self.public_key, signer=self.signer,
                   addresses=[str(a) for a in self.addresses], pod_cidrs=[str(n) for n in self.pod_cidrs],
                   node_ips=[str(n) for n in self.node_ip_prefixes], segments=list(self.segments),
                   not_before=self.not_before, not_after=self.not_after, serial=self.serial)
        if self.slot is not None:
            out['slot'] = self.slot
        return out

    def grants_node_ip(self, ip):
        return any(ip in net for net in self.node_ip_prefixes)

    def grants_pod_cidr(self, net):
        return any(net.version == granted.version and net.subnet_of(granted) for granted in self.pod_cidrs)


def _networks(values, what):
    if not isinstance(values, list):
        raise WglanError('certificate: %s is not a list' % what)
    try:
        return [ipaddress.ip_network(str(v), strict=False) for v in values]
    except ValueError as exc:
        raise WglanError('certificate: bad %s: %s' % (what, exc))


def _payload_certificate(payload):
    try:
        if payload.get('v') != 1:
            raise WglanError('certificate of version %r: this collection reads version 1' % payload.get('v'))
        mesh, name = payload['mesh'], payload['name']
        if not isinstance(mesh, str) or not isinstance(name, str) or not name:
            raise WglanError('certificate without a mesh or a name')
        public_key = normalize_key(payload['key'], 'certified key')
        signer = normalize_key(payload['signer'], 'certified signing key')
        addresses = [ipaddress.ip_address(str(a)) for a in payload['addresses']]
        segments = payload.get('segments') or []
        if not isinstance(segments, list) or not all(isinstance(s, str) for s in segments):
            raise WglanError('certificate: segments is not a list of names')
        times = payload['not_before'], payload['not_after']
        if not all(isinstance(t, int) and not isinstance(t, bool) for t in times):
            raise WglanError('certificate: validity times are not integers')
        serial = str(payload.get('serial') or '')
        slot = payload.get('slot')
        if slot is not None and not isinstance(slot, str):
            raise WglanError('certificate: slot is not text')
    except (KeyError, TypeError, AttributeError):
        raise WglanError('certificate: a field is missing or of the wrong kind')
    except ValueError as exc:
        raise WglanError('certificate: %s' % exc)
    return Certificate(mesh, name, public_key, signer, addresses, _networks(payload.get('pod_cidrs') or [], 'pod CIDR'),
                       _networks(payload.get('node_ips') or [], 'node IP prefix'), segments, times[0], times[1],
                       serial, slot)


def wanted(mesh, name, public_key, signer, addresses, pod_cidrs=(), node_ip_prefixes=(), segments=(), now=0,
           lifetime=DEFAULT_LIFETIME, serial=None):
    """The Certificate a node's claims ask for (not signed yet)."""
    if not mesh or not name:
        raise WglanError('a certificate needs the mesh and the node name')
    if lifetime < DAY:
        raise WglanError('a certificate lives at least a day (lifetime %s s)' % lifetime)
    try:
        return Certificate(str(mesh), str(name), normalize_key(public_key, 'public key of %s' % name),
                           normalize_key(signer, 'signing key of %s' % name),
                           sorted(set(ipaddress.ip_address(str(a)) for a in addresses if a), key=_order),
                           sorted(set(ipaddress.ip_network(str(n), strict=False) for n in pod_cidrs), key=_order),
                           sorted(set(ipaddress.ip_network(str(n), strict=False) for n in node_ip_prefixes), key=_order),
                           sorted(set(segments)), int(now) - BACKDATE, int(now) + int(lifetime),
                           serial or secrets.token_hex(8))
    except ValueError as exc:
        raise WglanError('certificate of %s: %s' % (name, exc))


def slot_message(member, signer, until):
    """What the CA signs for a node's slot on a discovery service that pins slots to certificates
    (roles/discovery/files/wglan_discovery.py checks the same bytes)."""
    return ('wglan-slot|1|%s|%s|%d' % (member, signer, until)).encode('ascii')


def sign_certificate(ca_key, cert):
    """A Certificate signed with the CA key (raw bytes): its text. It carries the slot grant of the node's
    key and signing key until the certificate's end."""
    _require_crypto()
    cert = copy.copy(cert)
    grant = Ed25519PrivateKey.from_private_bytes(ca_key).sign(
        slot_message(keys.discovery_slot(cert.public_key), cert.signer, cert.not_after))
    cert.slot = base64.b64encode(grant).decode('ascii')
    return _sign(ca_key, CERT_TAG, cert.payload())


def slot_grant(text, public_key):
    """What a write to a discovery service carries of a certificate (text) for the node's key: {slot_sig,
    slot_until}, or {} when the certificate is unreadable, for another key, or without a grant. The service
    checks the grant; a wrong one is refused there, never here."""
    cert = grant_of(text) if text else None
    if cert is None or cert.slot is None or cert.public_key != public_key:
        return {}
    return dict(slot_sig=cert.slot, slot_until=cert.not_after)


def issue(ca_key, mesh, name, public_key, signer, addresses, pod_cidrs=(), node_ip_prefixes=(), segments=(), now=0,
          lifetime=DEFAULT_LIFETIME, serial=None):
    """A certificate (text) for one node, signed with the CA key (raw bytes)."""
    return sign_certificate(ca_key, wanted(mesh, name, public_key, signer, addresses, pod_cidrs, node_ip_prefixes,
                                           segments, now, lifetime, serial))


def _order(value):
    return (value.version, str(value))


def read_certificate(text, ca_public, what='certificate'):
    """The Certificate a text holds when the CA signed it (no check of time, mesh or key), else WglanError."""
    return _payload_certificate(_open(text, CERT_TAG, ca_public, what))


def grant_of(text):
    """What a certificate says, unchecked (for display and for deciding a renewal); None when unreadable."""
    try:
        parts = str(text).split('.')
        return _payload_certificate(json.loads(_unb64u(parts[1]).decode('utf-8'))) if len(parts) == 3 else None
    except (WglanError, ValueError, TypeError, UnicodeDecodeError, binascii.Error, AttributeError):
        return None


def fingerprint(text):
    """A short, non-secret name of a certificate (for logs and facts)."""
    return hashlib.sha256(str(text).encode('ascii', 'replace')).hexdigest()[:16]


def needs_renewal(text, wanted, now, renew_before=RENEW_BEFORE):
    """Whether the certificate text (None: none yet) must be signed again: unreadable, for other claims
    than wanted (a Certificate), or expiring within renew_before."""
    held = grant_of(text) if text else None
    if held is None:
        return True
    if held.slot is None:
        return True  # (made before certificates carried a slot grant)
    same = held.payload()
    same.update(not_before=0, not_after=0, serial='', slot='')
    want = wanted.payload()
    want.update(not_before=0, not_after=0, serial='', slot='')
    return same != want or held.not_after - now < renew_before


# -- what a node signs itself --------------------------------------------------
# A certificate is public to the mesh: anyone could copy it into a record of their own. So a record is
# admitted only when its claims are signed by the node's own signing key (Ed25519, derived from its
# WireGuard private key; the certificate names its public half), and a key rotation only when the
# previous key signed the next one (a succession step). Observations, relays and where the service saw
# the node are not claims: they move on their own and grant nothing.
CLAIMED = ('name', 'public_key', 'address', 'address4', 'node_ips', 'port', 'extra_endpoints', 'pod_cidrs',
           'segments', 'next_public_key', 'next_key_at', 'withdrawn', 'relay', 'certificate', 'succession')


def signer_of(private_key):
    """The public signing key (base64) of a node's WireGuard private key (raw bytes or base64)."""
    return keys.public_signer(keys.signing_key(private_key))


def claims_message(record):
    """The bytes a node signs of its record (a NodeRecord): its claims, normalized as every reader parses them."""
    data = record.as_dict()
    claims = dict((k, data[k]) for k in CLAIMED if k in data)
    return b'wglan-claims-1|' + _canonical(claims)


def sign_claims(raw, private_key):
    """raw (a record dict) with its claims signed by the node's key (raw bytes or base64)."""
    record = parse_record(dict((k, v) for k, v in raw.items() if k != 'claims_sig'))
    signature = keys.signing_key(private_key).sign(claims_message(record))
    return dict(raw, claims_sig=_b64u(signature))


def succession_message(name, key, next_key, next_signer):
    return ('wglan-succession-1|%s|%s|%s|%s' % (name, key, next_key, next_signer)).encode('utf-8')


def succession_step(name, private_key, next_private_key):
    """[next public key, next signing key, signature by the current key]: what a node adds to its
    succession when it rotates to next_private_key (both raw bytes or base64)."""
    current = public_key_from_private(_raw(private_key))
    next_key = public_key_from_private(_raw(next_private_key))
    next_signer = signer_of(next_private_key)
    signature = keys.signing_key(private_key).sign(succession_message(name, current, next_key, next_signer))
    return [next_key, next_signer, _b64u(signature)]


def _raw(private_key):
    return private_key if isinstance(private_key, bytes) else base64.b64decode(private_key)


def _verify(signer, signature, message):
    try:
        Ed25519PublicKey.from_public_bytes(base64.b64decode(signer)).verify(_unb64u(signature), message)
        return True
    except (InvalidSignature, ValueError, TypeError, binascii.Error):
        return False


def signing_key_of(record, cert):
    """The signing key of record's current key: the certificate's, followed through the record's
    succession (each step signed by the key before it; parse_record bounds their number). WglanError when
    a step does not verify or the chain does not end at the record's key."""
    key, signer = cert.public_key, cert.signer
    for next_key, next_signer, signature in record.succession:
        if not _verify(signer, signature, succession_message(record.name, key, next_key, next_signer)):
            raise WglanError('a key rotation in its succession is not signed by the key before it')
        key, signer = next_key, next_signer
    if key != record.public_key:
        raise WglanError('its certificate is for another key')
    return signer


# -- revocation lists -----------------------------------------------------------

class Revocations:
    """A CA-signed list of keys and node names no longer admitted, ordered by its issue time."""

    __slots__ = ('mesh', 'issued', 'keys', 'names', 'text')

    def __init__(self, mesh, issued, keys=(), names=(), text=None):
        self.mesh, self.issued = mesh, issued
        self.keys, self.names = frozenset(keys), frozenset(names)
        self.text = text

    def revokes(self, record):
        return record.public_key in self.keys or record.name in self.names


def revocation_list(ca_key, mesh, keys=(), names=(), now=0):
    """A revocation list (text) naming keys and node names, issued now (the newer list wins)."""
    keys = sorted(set(normalize_key(k, 'revoked key') for k in keys))
    names = sorted(set(str(n) for n in names))
    if len(keys) + len(names) > MAX_ENTRIES:
        raise WglanError('a revocation list holds at most %d keys and names' % MAX_ENTRIES)
    return _sign(ca_key, REVOKED_TAG, dict(v=1, mesh=str(mesh), issued=int(now), keys=keys, names=names))


def read_revocations(text, ca_public, mesh):
    """The Revocations a text holds when this mesh's CA signed it for this mesh, else WglanError."""
    payload = _open(text, REVOKED_TAG, ca_public, 'revocation list')
    try:
        issued, keys, names = payload['issued'], payload['keys'], payload['names']
        if payload.get('v') != 1 or not isinstance(issued, int) or isinstance(issued, bool):
            raise WglanError('revocation list of another version')
        if not isinstance(keys, list) or not isinstance(names, list) or len(keys) + len(names) > MAX_ENTRIES:
            raise WglanError('revocation list: keys and names must be lists of at most %d' % MAX_ENTRIES)
        keys = [normalize_key(k, 'revoked key') for k in keys]
        names = [str(n) for n in names]
    except (KeyError, TypeError):
        raise WglanError('revocation list: a field is missing or of the wrong kind')
    if payload.get('mesh') != mesh:
        raise WglanError('revocation list of mesh %r, not of this mesh (%r)' % (payload.get('mesh'), mesh))
    return Revocations(mesh, issued, keys, names, text)


def newest_revocations(texts, ca_public, mesh, held=None, warn=None):
    """The newest valid list among texts and held (a Revocations or None); a list that does not verify
    is skipped (with a warning)."""
    best = held
    seen = set()
    for text in texts:
        if not text or text in seen or (best is not None and text == best.text):
            continue
        seen.add(text)
        try:
            found = read_revocations(text, ca_public, mesh)
        except WglanError as exc:
            if warn:
                warn('revocation list skipped: %s' % exc)
            continue
        if best is None or found.issued > best.issued:
            best = found
    return best


# -- admission ------------------------------------------------------------------

class Trust:
    """What a node checks records against: the mesh's name, its CA's public key, the newest revocation list."""

    __slots__ = ('mesh', 'ca_public', 'revocations', 'uncertified')

    def __init__(self, mesh, ca_public, revocations=None, uncertified=False):
        self.mesh = str(mesh)
        self.ca_public = parse_ca_public_key(ca_public)
        self.revocations = revocations
        # a mesh moving from the token to certificates: a record that carries no certificate is still taken
        # whole, as under the token (unless revoked), while the others get theirs
        self.uncertified = uncertified


def check(record, trust, now):
    """The Certificate that admits record now, or WglanError naming why it is not admitted."""
    text = getattr(record, 'certificate', None)
    if not text:
        raise WglanError('it has no certificate')
    cert = read_certificate(text, trust.ca_public)
    if cert.mesh != trust.mesh:
        raise WglanError('its certificate is for mesh %r, not %r' % (cert.mesh, trust.mesh))
    signer = signing_key_of(record, cert)
    if not record.claims_sig or not _verify(signer, record.claims_sig, claims_message(record)):
        raise WglanError('its claims are not signed by its own key (a copy of another node\'s certificate?)')
    if cert.name != record.name:
        raise WglanError('it claims the name %r; its certificate is for %r' % (record.name, cert.name))
    if now < cert.not_before:
        raise WglanError('its certificate is not valid yet (from %d; this clock says %d)' % (cert.not_before, now))
    if now >= cert.not_after:
        raise WglanError('its certificate expired (at %d; this clock says %d)' % (cert.not_after, now))
    if trust.revocations is not None and trust.revocations.revokes(record):
        raise WglanError('it is revoked (list of %d)' % trust.revocations.issued)
    return cert


def granted_part(record, cert):
    """(record holding only what cert grants, [what was dropped]). The certified addresses stay."""
    kept = copy.copy(record)
    dropped = []
    granted = set(cert.addresses)
    if record.address is not None and record.address not in granted:
        dropped.append('address %s' % record.address)
        kept.address = None
    if record.address is None or kept.address is None:
        kept.address = next((a for a in cert.addresses if a.version == 6), None)
    if record.address4 is not None and record.address4 not in granted:
        dropped.append('IPv4 overlay address %s' % record.address4)
        kept.address4 = next((a for a in cert.addresses if a.version == 4), None)
    pods = [n for n in record.pod_cidrs if cert.grants_pod_cidr(n)]
    dropped.extend('pod CIDR %s' % n for n in record.pod_cidrs if n not in pods)
    kept.pod_cidrs = pods
    segments = tuple(s for s in record.segments if s in cert.segments)
    dropped.extend('segment %s' % s for s in record.segments if s not in segments)
    kept.segments = segments
    # a node IP outside the granted prefixes is still where the node may be reached (WireGuard
    # authenticates what comes from there), never an address routed to it
    kept.unrouted = frozenset(iface.ip for iface in record.node_ips if not cert.grants_node_ip(iface.ip))
    dropped.extend('node IP %s (as a route)' % ip for ip in sorted(kept.unrouted, key=_order))
    return kept, dropped


def admit(records, trust, now, warn, counts=None):
    """The records a node takes (each holding only what its certificate grants); the others left out,
    each with a line naming why. counts ({reason: n}) is incremented for what was dropped.

    A node IP granted by a host prefix (/32, /128: the default, the node's addresses when it was signed)
    is routed to its node. One granted only by a wider prefix (a site's LAN, or anywhere, for a node that
    moves) is routed to it while no other admitted node claims it: a contested one goes to the node whose
    certificate names it exactly, else to none (a member cannot pull another's address into its tunnel
    by claiming it, whatever its key)."""
    admitted, as_before = [], []
    for record in records:
        if trust.uncertified and not getattr(record, 'certificate', None):
            if trust.revocations is not None and trust.revocations.revokes(record):
                warn('node %s is not admitted: it is revoked (list of %d)' % (record.name, trust.revocations.issued))
                _count(counts, 'not_admitted')
            else:
                as_before.append(record)
            continue
        try:
            cert = check(record, trust, now)
        except WglanError as exc:
            warn('node %s is not admitted: %s' % (record.name, exc))
            _count(counts, 'not_admitted')
            continue
        kept, dropped = granted_part(record, cert)
        admitted.append((kept, cert, dropped))
    claims = {}
    for kept, cert, _dropped in admitted:
        for iface in kept.node_ips:
            if iface.ip not in kept.unrouted:
                claims.setdefault(iface.ip, []).append((kept.public_key, _exact(cert, iface.ip)))
    out = []
    for kept, cert, dropped in admitted:
        contested = set()
        for iface in kept.node_ips:
            others = [c for c in claims.get(iface.ip, ()) if c[0] != kept.public_key]
            if iface.ip in kept.unrouted or not others:
                continue
            if not _exact(cert, iface.ip) or any(exact for _key, exact in others):
                contested.add(iface.ip)
        if contested:
            kept.unrouted = kept.unrouted | contested
            dropped = dropped + ['node IP %s (as a route: another node claims it too)' % ip
                                 for ip in sorted(contested, key=_order)]
        if dropped:
            warn('node %s: not granted by its certificate, left out: %s' % (kept.name, ', '.join(dropped)))
            _count(counts, 'claim_dropped', len(dropped))
        out.append(kept)
    return out + as_before


def _exact(cert, ip):
    return any(net.prefixlen == net.max_prefixlen and ip in net for net in cert.node_ip_prefixes)


def _count(counts, reason, n=1):
    if counts is not None:
        counts[reason] = counts.get(reason, 0) + n


def overlaps(grants):
    """[(name, name, what)] of what two certificates would both grant ({name: Certificate}): an address, or
    overlapping pod CIDRs. Refused at signing, where the operator can mend it. Node IPs may be shared (two
    sites' LANs often use the same private addresses): admit routes a contested one to its single exact
    holder, else to none."""
    out = []
    names = sorted(grants)
    for i, a in enumerate(names):
        for b in names[i + 1:]:
            ga, gb = grants[a], grants[b]
            for address in sorted(set(ga.addresses) & set(gb.addresses), key=_order):
                out.append((a, b, 'address %s' % address))
            for na in ga.pod_cidrs:
                for nb in gb.pod_cidrs:
                    if na.version == nb.version and na.overlaps(nb):
                        out.append((a, b, 'pod CIDR %s / %s' % (na, nb)))
    return out
