# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""WireGuard key handling: X25519 key pairs, validation and the key file."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import binascii
import hashlib
import hmac
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError


try:
    from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    HAS_CRYPTOGRAPHY = True
    CRYPTOGRAPHY_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised by the import sanity test
    HAS_CRYPTOGRAPHY = False
    CRYPTOGRAPHY_IMPORT_ERROR = exc


KEY_LEN = 32


def decode_key(value, what='key'):
    """Standard base64 of 32 bytes -> bytes. The message never echoes the value."""
    if not isinstance(value, str):
        raise WglanError('%s must be a base64 string' % what)
    text = value.strip()
    if len(text) != 44 or not text.endswith('='):
        raise WglanError('%s is not a WireGuard key: expected 44 base64 characters' % what)
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise WglanError('%s is not valid base64' % what)
    if len(raw) != KEY_LEN:
        raise WglanError('%s must decode to %d bytes' % (what, KEY_LEN))
    return raw


def normalize_key(value, what='key'):
    """Canonical base64 form of a key (validates it)."""
    return base64.b64encode(decode_key(value, what)).decode('ascii')


def _require_crypto():
    if not HAS_CRYPTOGRAPHY:
        raise WglanError('the Python library "cryptography" is required')


def generate_private_key():
    """A new X25519 private key, 32 raw bytes (clamping is done by X25519 itself)."""
    _require_crypto()
    key = X25519PrivateKey.generate()
    return key.private_bytes(
        encoding=serialization.Encoding.Raw,
        format=serialization.PrivateFormat.Raw,
        encryption_algorithm=serialization.NoEncryption(),
    )


def public_key_from_private(private_raw):
    """Raw private key bytes -> base64 public key."""
    _require_crypto()
    key = X25519PrivateKey.from_private_bytes(private_raw)
    pub = key.public_key().public_bytes(
        encoding=serialization.Encoding.Raw,
        format=serialization.PublicFormat.Raw,
    )
    return base64.b64encode(pub).decode('ascii')


def pair_preshared_key(secret, public_a, public_b):
    """A preshared key for one pair of peers, derived from a shared secret.

    Both sides compute the same value with no coordination: the two public keys
    are sorted so the order of the arguments does not matter.
    """
    if not secret:
        raise WglanError('a non-empty secret is needed to derive preshared keys')
    first, second = sorted([decode_key(public_a, 'public key'), decode_key(public_b, 'public key')])
    digest = hmac.new(secret.encode('utf-8'), b'wglan-psk-v1' + first + second, hashlib.sha256).digest()
    return base64.b64encode(digest).decode('ascii')


_SIGNING_SALT = b'wglan.mesh discovery signing v1'


def signing_key(private_key=None):
    """This node's Ed25519 signing key: derived from its WireGuard private key (32 raw bytes, or base64),
    so it needs no file of its own and is the same at every run; or a new one for a publisher without a
    node key. It signs the node's writes to a discovery service and, in a mesh with certificates, its
    claims (model.certificates)."""
    _require_crypto()
    if private_key is None:
        return Ed25519PrivateKey.generate()
    if isinstance(private_key, Ed25519PrivateKey):
        return private_key
    raw = private_key if isinstance(private_key, bytes) else base64.b64decode(private_key)
    seed = HKDF(algorithm=hashes.SHA256(), length=32, salt=_SIGNING_SALT, info=b'ed25519').derive(raw)
    return Ed25519PrivateKey.from_private_bytes(seed)


def discovery_slot(public_key):
    """A node's member slot on a discovery service: hex SHA-256 of its raw WireGuard public key (the key
    itself stays private to the cluster)."""
    return hashlib.sha256(base64.b64decode(public_key)).hexdigest()


def public_signer(key):
    """The signing key's public half, base64 (what a discovery service pins and a certificate names)."""
    raw = key.public_key().public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return base64.b64encode(raw).decode('ascii')
