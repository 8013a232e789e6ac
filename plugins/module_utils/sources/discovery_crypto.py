# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Client-side protection of discovery-service records.

Everything secret is derived from the cluster token with HKDF-SHA256, each key
for one purpose:

- cluster id (default): hex SHA-256 of the token. It names the cluster on the
  server and is not secret enough to protect anything by itself.
- record key: AES-256-GCM over each record, with a random 96-bit nonce. The
  additional data binds the ciphertext to its cluster, member slot and
  sequence number, so the server cannot move a record to another member or
  cluster, or replay an old one under a new number, without the client noticing.
- write key: proves to the server that a writer holds the token. The server
  keeps only SHA-256 of it (set by the cluster's first write) and refuses
  writes and deletes that do not present it: knowing the cluster id is not
  enough to overwrite or delete a member's record. The service files a
  cluster under its name and that hash together, so a write key not derived
  from the token makes a cluster of its own that no token holder reads: a
  cluster's name cannot be squatted.
- signing key (per node, Ed25519): derived from the node's WireGuard private
  key, so it needs no file of its own and is the same at every run. Each
  write and delete is signed with it. The service pins a member slot to the
  key of its first write and checks every later one; clients check the
  signature too, remember the key and the highest sequence number they
  accepted per member, and take nothing older (a service that replays an old
  record, or a member that writes another's slot, is caught).

The server sees ciphertext, member ids (a hash of the member's public key),
sequence numbers and source addresses, never a key, address or endpoint.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import hashlib
import json
import os

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.model import keys

try:
    from cryptography.exceptions import InvalidSignature, InvalidTag
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF
    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - exercised by the import sanity test
    HAS_CRYPTOGRAPHY = False

VERSION = 1
_SALT = b'wglan.mesh discovery v1'
NONCE_LEN = 12


def _derive(token, info, length=32):
    if not HAS_CRYPTOGRAPHY:
        raise WglanError('the Python library "cryptography" is required')
    if not token:
        raise WglanError('a cluster token is required for the discovery service')
    return HKDF(algorithm=hashes.SHA256(), length=length, salt=_SALT, info=info).derive(token.encode('utf-8'))


def cluster_id(token):
    """The default cluster identity: hex SHA-256 of the token."""
    if not token:
        raise WglanError('a cluster token is required for the discovery service')
    return hashlib.sha256(token.encode('utf-8')).hexdigest()


member_id = keys.discovery_slot  # a member's slot (a certificate's slot grant names it too)


def write_key(token):
    return base64.b64encode(_derive(token, b'write')).decode('ascii')


def write_key_verifier(write_key_b64):
    """What the server stores: SHA-256 of the write key."""
    return hashlib.sha256(write_key_b64.encode('ascii')).hexdigest()


# this node's signing key: model.keys (a node's certificate names its public half too)
signing_key = keys.signing_key
public_signer = keys.public_signer


def signed_message(kind, cluster, member, seq, ttl, data):
    """What a write (kind put) or delete (kind delete, ttl 0, data '') signs. The service builds the
    same bytes (roles/discovery/files/wglan_discovery.py, which imports nothing of the collection)."""
    head = 'wglan-discovery|1|%s|%s|%s|%d|%d|' % (kind, cluster, member, seq, ttl)
    return head.encode('ascii') + data.encode('ascii')


def sign(key, kind, cluster, member, seq, ttl, data=''):
    return base64.b64encode(key.sign(signed_message(kind, cluster, member, seq, ttl, data))).decode('ascii')


def verify(signer, signature, kind, cluster, member, seq, ttl, data):
    """Whether signature (base64) is signer's (base64 Ed25519 public key) over that write."""
    try:
        public = Ed25519PublicKey.from_public_bytes(base64.b64decode(signer, validate=True))
        public.verify(base64.b64decode(signature, validate=True), signed_message(kind, cluster, member, seq, ttl, data))
        return True
    except (ValueError, TypeError, InvalidSignature):
        return False


def _aad(cluster, member, seq):
    return ('wglan-record|%d|%s|%s|%d' % (VERSION, cluster, member, seq)).encode('ascii')


class RecordBox:
    """Seals and opens records for one cluster."""

    def __init__(self, token, cluster=None):
        self.cluster = cluster or cluster_id(token)
        self._aead = AESGCM(_derive(token, b'record'))

    def seal(self, member, seq, record):
        data = json.dumps(record, sort_keys=True, separators=(',', ':')).encode('utf-8')
        nonce = os.urandom(NONCE_LEN)
        return base64.b64encode(nonce + self._aead.encrypt(nonce, data, _aad(self.cluster, member, seq))).decode('ascii')

    def open(self, member, seq, sealed):
        """The record, or WglanError when it was not made by a token holder for this slot and number."""
        try:
            raw = base64.b64decode(sealed, validate=True)
        except (ValueError, TypeError):
            raise WglanError('record of member %s is not base64' % member[:12])
        if len(raw) < NONCE_LEN + 16:
            raise WglanError('record of member %s is too short' % member[:12])
        try:
            data = self._aead.decrypt(raw[:NONCE_LEN], raw[NONCE_LEN:], _aad(self.cluster, member, seq))
        except InvalidTag:
            raise WglanError('record of member %s does not authenticate (tampered, replayed under another '
                             'number or slot, or another cluster)' % member[:12])
        try:
            record = json.loads(data.decode('utf-8'))
        except ValueError:
            raise WglanError('record of member %s is not JSON' % member[:12])
        if not isinstance(record, dict):
            raise WglanError('record of member %s is not a mapping' % member[:12])
        return record
