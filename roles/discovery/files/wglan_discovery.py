# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The wglan discovery service: a small, self-hostable rendezvous for node records.

    python3 discovery_server.py --listen 0.0.0.0:8443 --db /var/lib/wglan-discovery/records.db \\
        [--cert C --key K]

It stores sealed records (see discovery_crypto) per cluster and member, tells
each client the address it sees it at, forgets records whose TTL ran out, and
lets clients watch a cluster (long poll: a change is answered at once).

HTTP/JSON API (v1):
  GET    /v1/hello                                   -> {"observed": ip}
  PUT    /v1/clusters/<cluster>/members/<member>     Authorization: Bearer <write key>
         {"seq": n, "data": "<sealed>", "ttl": s, "signer": "<Ed25519 public key>", "sig": "<signature>"}
                                                     -> {"observed", "version", "expires"}
  DELETE /v1/clusters/<cluster>/members/<member>     Authorization: Bearer <write key>
         {"seq": n, "signer": "...", "sig": "..."}   (seq newer than the record's)
  GET    /v1/clusters/<cluster>/members              Authorization: Bearer <read proof>
                                                     -> {"version", "members": [...]}
  GET    /v1/clusters/<cluster>/watch?since=V&timeout=T  Authorization: Bearer <read proof>
         -> {"version", "reset", "members": [changed], "deleted": [member ids]}
The read proof is the hex SHA-256 of the write key: what the service keeps to check writes with,
so it needs nothing more, and only token holders can read a cluster's sealed records.

A cluster is filed under its name and the SHA-256 of its write key together: a write with another
key makes another cluster, which nobody with the token reads, so a name cannot be squatted.
A member slot is pinned to the Ed25519 key of its first write (for as long as its record lives):
every later write and the delete must be signed with it, over
"wglan-discovery|1|<put or delete>|<cluster>|<member>|<seq>|<ttl, 0 for delete>|<data, '' for delete>",
and a listing gives each record's signer and signature, for clients to check as well.
With --slot-ca (the public key of a mesh's CA, base64; the discovery role passes it for a mesh with
certificates), every write must also carry a slot grant, "slot_sig" and "slot_until": that CA's
signature over "wglan-slot|1|<member>|<signer>|<slot_until>", which the CA signs into each node's
certificate. A write without one is refused, so a token holder cannot take a node's slot first; a write
with a grant takes its slot over from a key that held it without one. The grant names no node and no
address: the service learns nothing it did not see before.
Errors are {"error": "..."} with 400, 401, 403, 404, 405, 408, 409, 413, 429 or 503.

HTTP is aiohttp's (Debian: python3-aiohttp). Around it, this program bounds what a
client can hold: connections per source (an IPv4 address, an IPv6 /64) and in
all (under the process's file limit), a deadline for a connection's first
request and between requests, a deadline for each request body and for each
part of an answer the client does not read, and a token bucket per source that
counts connections as well as requests. Every table it keeps has a bound and an
expiry: clusters (dropped when their last member goes), each cluster's change
history (by count and age), the rate limiter's buckets.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import asyncio
import asyncio.sslproto
import base64
import collections
import hashlib
import inspect
import ipaddress
import itertools
import json
import logging
import math
import os
import re
import resource
import signal
import sqlite3
import ssl
import time

from aiohttp import web
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

LOG = logging.getLogger('wglan-discovery')
_CLUSTER_RE = re.compile(r'^[A-Za-z0-9._-]{1,128}$')
_MEMBER_RE = re.compile(r'^[0-9a-f]{64}$')
_DIGITS_RE = re.compile(r'^[0-9]{1,19}$')
MAX_SEQ = 2 ** 63 - 1           # SQLite's INTEGER
MAX_BODY = 16384
MAX_WRITE_KEY = 256
CHUNK = 16384                   # an answer goes out in parts this size, each with a deadline
WRITE_BUFFER = 2 * CHUNK        # what a connection may have waiting to go out before its writer waits
DELETE_BATCH = 500              # deletes written at one expiry sweep
FD_RESERVE = 64                 # file descriptors kept for the database, logs and the listener
MEMORY_BASE = 64 << 20          # the process at rest: Python, aiohttp, the records of a busy service
CONNECTION_COST = 44 << 10      # what one TLS connection may hold (measured: 37 to 39 KiB a held long poll, README)
# bytes read from a TLS socket at a time (asyncio's own: 256 KiB per connection; 32 KiB here cost 65 KiB
# a held long poll); requests are at most 16 KiB
TLS_READ_BUFFER = 4 << 10
MEMORY_TIGHT = 0.8              # share of the budget past which new connections and clusters are refused
RECORDS_SHARE = 0.2             # share of the budget the records may take (the connections take most of the rest)
RECORD_OVERHEAD = 2048          # a record's dict, keys and numbers beside its strings (measured: 1.9 KiB)


class Limits:
    def __init__(self, members_per_cluster=1024, bytes_per_record=2048, rate=15.0, burst=60,
                 default_ttl=1800, max_ttl=3600, max_watch=60, changes_kept=4096, max_clusters=10000,
                 history_seconds=300, connections_per_source=64, max_connections=None, header_timeout=10.0,
                 body_timeout=10.0, send_timeout=10.0, idle_timeout=15.0, max_buckets=100000,
                 memory_budget=None, max_handshakes=None, clusters_per_source=32, clusters_per_network=256,
                 slot_cas=()):
        self.members_per_cluster = members_per_cluster
        self.slot_cas = list(slot_cas)  # Ed25519 public keys: every write carries a slot grant from one
        self.bytes_per_record = bytes_per_record
        self.rate = rate
        self.burst = burst
        self.default_ttl = default_ttl
        self.max_ttl = max_ttl
        self.max_watch = max_watch
        self.changes_kept = changes_kept
        self.max_clusters = max_clusters
        # clusters an address (an IPv4 address or IPv6 /64), and a network (IPv4 /24, IPv6 /48), may have made
        # and that still live (0: no bound)
        self.clusters_per_source = clusters_per_source
        self.clusters_per_network = clusters_per_network
        self.history_seconds = history_seconds
        self.connections_per_source = connections_per_source
        self.memory_budget = memory_budget  # bytes, or None: no budget known
        self.record_bytes = int(memory_budget * RECORDS_SHARE) if memory_budget else None  # None: no bound
        self.max_connections = max_connections if max_connections else connection_budget(memory_budget)
        # TLS handshakes under way at once: each holds its connection's TLS state before anything is known of it
        self.max_handshakes = max_handshakes if max_handshakes else max(16, min(1024, self.max_connections // 8))
        self.header_timeout = header_timeout
        self.body_timeout = body_timeout
        self.send_timeout = send_timeout
        self.idle_timeout = idle_timeout
        self.max_buckets = max_buckets


def fd_budget():
    """Connections this process can hold: its soft file limit, less a reserve."""
    soft, _hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        soft = 65536
    return max(16, soft - FD_RESERVE)


def connection_budget(memory_budget):
    """Connections the process can hold: under its file limit, and under its memory budget at
    CONNECTION_COST each once the process at rest is counted."""
    fds = fd_budget()
    if not memory_budget:
        return fds
    return max(16, min(fds, int(memory_budget * (1 - RECORDS_SHARE) - MEMORY_BASE) // CONNECTION_COST))


def cgroup_memory_limit(proc_cgroup='/proc/self/cgroup', root='/sys/fs/cgroup'):
    """The memory limit of this process's cgroup and of every cgroup above it, the smallest (the
    unit's MemoryMax under systemd), in bytes; None when there is none or it cannot be read.
    cgroup v2 (memory.max) and v1 (the memory controller's memory.limit_in_bytes)."""
    try:
        with open(proc_cgroup) as handle:
            lines = handle.read().splitlines()
    except OSError:
        return None
    places = []
    for line in lines:
        _number, controllers, path = (line.split(':', 2) + ['', ''])[:3]
        if controllers == '':
            places.append((os.path.join(root, path.lstrip('/')), 'memory.max'))
        elif 'memory' in controllers.split(','):
            places.append((os.path.join(root, 'memory', path.lstrip('/')), 'memory.limit_in_bytes'))
    limits = []
    for directory, name in places:
        while True:
            try:
                with open(os.path.join(directory, name)) as handle:
                    text = handle.read().strip()
                if text.isdigit() and int(text) < 1 << 60:  # v1 says "no limit" with a number near 2**63
                    limits.append(int(text))
            except OSError:
                pass
            parent = os.path.dirname(directory)
            if len(parent) <= len(root) or parent == directory:
                break
            directory = parent
    return min(limits) if limits else None


def memory_size(text):
    """Bytes from a size as systemd writes MemoryMax (a number of bytes, or with K, M, G or T: powers of
    1024; a percentage: of the machine's memory); None for "infinity" or nothing. ValueError otherwise."""
    text = str(text).strip()
    if text in ('', '0', 'infinity'):
        return None
    if text.endswith('%'):
        share = float(text[:-1])
        if not 0 < share <= 100:
            raise ValueError('a memory budget of %s' % text)
        return int(os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') * share / 100)
    scale = dict(K=1 << 10, M=1 << 20, G=1 << 30, T=1 << 40).get(text[-1:].upper(), 1)
    number = text[:-1] if scale > 1 else text
    if not re.match(r'^[0-9]+(\.[0-9]+)?$', number) or float(number) * scale < 1 << 20:
        raise ValueError('a memory budget of %r: give bytes, or a size with K, M, G or T, of 1M at least' % text)
    return int(float(number) * scale)


def memory_budget(given):
    """The budget: the smaller of the one given (the role passes the unit's MemoryMax, which a
    container without the memory controller does not enforce) and the cgroup's limit."""
    known = [b for b in (memory_size(given), cgroup_memory_limit()) if b]
    return min(known) if known else None


def resident_bytes():
    """This process's resident memory, from /proc (0 where there is no /proc)."""
    try:
        with open('/proc/self/statm') as handle:
            return int(handle.read().split()[1]) * resource.getpagesize()
    except (OSError, ValueError, IndexError):
        return 0


class Memory:
    """The budget and what the process holds now (read at most every 50 ms): tight past MEMORY_TIGHT
    of the budget, when new connections and new clusters are refused and the rest goes on."""

    def __init__(self, budget, read=resident_bytes, clock=time.monotonic):
        self.budget = budget
        self.read = read
        self.clock = clock
        self.last, self.when = 0, None
        self.peak = 0

    def used(self):
        now = self.clock()
        if self.when is None or now - self.when >= 0.05:
            self.last, self.when = self.read(), now
            self.peak = max(self.peak, self.last)
        return self.last

    def tight(self):
        return bool(self.budget) and self.used() > self.budget * MEMORY_TIGHT


class SmallTLS(asyncio.sslproto.SSLProtocol):  # pylint: disable=too-many-instance-attributes
    """asyncio's TLS layer with a read buffer of TLS_READ_BUFFER: its own allocates 256 KiB for every
    connection, admitted or not, which is most of what a connection costs."""
    max_size = TLS_READ_BUFFER


def source_of(ip):
    """What the limits count by: an IPv4 address, an IPv6 /64 (one host gets a whole /64)."""
    try:
        address = ipaddress.ip_address(str(ip).split('%', 1)[0])
    except ValueError:
        return str(ip)
    if address.version == 6:
        if address.ipv4_mapped is not None:
            return str(address.ipv4_mapped)
        return str(ipaddress.ip_network('%s/64' % address, strict=False))
    return str(address)


def network_of(ip):
    """The wider network a source lies in, for the quotas an attacker with many addresses meets: an IPv4
    /24, an IPv6 /48 (a site's allocation)."""
    try:
        address = ipaddress.ip_address(str(ip).split('%', 1)[0])
    except ValueError:
        return str(ip)
    if address.version == 6 and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    return str(ipaddress.ip_network('%s/%d' % (address, 24 if address.version == 4 else 48), strict=False))


def unmapped(ip):
    """An IPv4 client of an IPv6 socket as the IPv4 address it is."""
    try:
        address = ipaddress.ip_address(str(ip).split('%', 1)[0])
    except ValueError:
        return str(ip)
    if address.version == 6 and address.ipv4_mapped is not None:
        return str(address.ipv4_mapped)
    return str(ip)


def is_loopback(ip):
    try:
        return ipaddress.ip_address(str(ip).split('%', 1)[0]).is_loopback
    except ValueError:
        return False


class HttpError(Exception):
    def __init__(self, status, message, headers=None):
        Exception.__init__(self, message)
        self.status = status
        self.headers = headers or {}


def signed_message(kind, cluster, member, seq, ttl, data):
    """What a write or delete is signed over (the collection's discovery_crypto.signed_message)."""
    return ('wglan-discovery|1|%s|%s|%s|%d|%d|' % (kind, cluster, member, seq, ttl)).encode('ascii') + data.encode('ascii')


def decoded(text, length, what):
    """The bytes of a base64 field of a fixed length, or a 400."""
    try:
        raw = base64.b64decode(text, validate=True) if isinstance(text, str) else b''
    except (ValueError, TypeError):
        raw = b''
    if len(raw) != length:
        raise HttpError(400, '%s must be %d bytes in base64' % (what, length))
    return raw


def slot_message(member, signer, until):
    """What a mesh's CA signs for a node's slot (model/certificates.py in the collection signs the same bytes)."""
    return ('wglan-slot|1|%s|%s|%d' % (member, signer, until)).encode('ascii')


def parse_slot_cas(texts):
    """The CA public keys of --slot-ca (ValueError naming a bad one)."""
    keys = []
    for text in texts or ():
        try:
            keys.append(Ed25519PublicKey.from_public_bytes(base64.b64decode(text, validate=True)))
        except (ValueError, TypeError):
            raise ValueError('--slot-ca %r is not an Ed25519 public key in base64 (a mesh CA\'s public key)' % text[:60])
    return keys


def check_grant(slot_cas, member, signer, doc, now):
    """A write's slot grant, when the service pins slots to certificates (HttpError 403 when not valid)."""
    sig, until = doc.get('slot_sig'), doc.get('slot_until')
    if sig is None and until is None:
        raise HttpError(403, 'this service admits certified members only: the write carries no slot grant '
                             '(the node\'s certificate from its mesh\'s CA)')
    if isinstance(until, bool) or not isinstance(until, int) or not 0 < until <= MAX_SEQ:
        raise HttpError(400, 'slot_until must be a positive integer')
    raw = decoded(sig, 64, 'slot_sig')
    message = slot_message(member, signer, until)
    for ca in slot_cas:
        try:
            ca.verify(raw, message)
        except InvalidSignature:
            continue
        if until <= now:
            raise HttpError(403, 'the slot grant expired (its certificate ended)')
        return
    raise HttpError(403, 'the slot grant is not for this member and key, or not from a CA this service knows')


def check_signature(signer, sig, message):
    try:
        Ed25519PublicKey.from_public_bytes(decoded(signer, 32, 'signer')).verify(decoded(sig, 64, 'sig'), message)
    except (InvalidSignature, ValueError):
        raise HttpError(403, 'the signature is not the member\'s')


class Cluster:
    __slots__ = ('verifier', 'members', 'version', 'changes', 'waiters', 'listed', 'creator')

    def __init__(self, verifier, creator=None):
        self.verifier = verifier
        self.creator = creator     # the address whose write made it (None: loaded at a start)
        self.members = {}          # member -> dict(seq, data, observed, expires, version, ttl, signer, sig)
        # Versions are opaque to clients. Starting from the clock (ms) keeps them rising across a
        # restart of the service (and a cluster dropped and made again), so a watcher's `since` from
        # before is never taken for a version of now (see changes_since for one that is ahead).
        self.version = int(time.time() * 1000)
        self.changes = collections.deque()  # (version, member, monotonic time)
        self.waiters = set()
        self.listed = None  # (version, the listing's JSON bytes, when one of them expires): one copy for all readers


def record_cost(record):
    """What a record holds in memory, in bytes (counted against the records' share of the budget)."""
    return RECORD_OVERHEAD + sum(len(v) for v in (record.get(k) for k in ('data', 'signer', 'sig', 'observed'))
                                 if isinstance(v, str))


def disk_full(exc):
    return 'full' in str(exc).lower()


class Store:
    """Records in memory, written through to SQLite so a restart loses nothing. The database is
    written first: when it fails, memory stays as it was and the client is told to try again.
    The records held have a byte budget (Limits.record_bytes): a restart loads the newest up to it."""

    def __init__(self, path, limits):
        self.limits = limits
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute('PRAGMA journal_mode=WAL')
        self.db.execute('PRAGMA synchronous=NORMAL')
        if self.db.execute("SELECT name FROM sqlite_master WHERE name = 'clusters'").fetchone():
            # (an earlier version's records: unsigned, which no client takes any more; nodes publish again)
            LOG.warning('database: dropping the records of an earlier version of the service (unsigned)')
            self.db.execute('DROP TABLE IF EXISTS clusters')
            self.db.execute('DROP TABLE IF EXISTS members')
        # a cluster is (name, verifier): it exists while it has records
        self.db.execute('CREATE TABLE IF NOT EXISTS records (cluster TEXT, verifier TEXT, member TEXT, seq INTEGER, '
                        'data TEXT, observed TEXT, expires REAL, ttl INTEGER, signer TEXT, sig TEXT, '
                        'PRIMARY KEY (cluster, verifier, member))')
        self.clusters = {}  # (name, verifier) -> Cluster
        self.made_by = collections.Counter()  # source or network -> clusters it made that live
        self.bytes = 0      # what the records held cost (record_cost)
        self.unwritten = set()  # (name, verifier, member) gone from memory, not yet from the database
        self.unwritten_expired = True  # the expired records of the last run go too, at the first sweeps
        self.faults = 0
        self.faults_logged, self.log_after = 0, 0.0
        self._load()

    def _load(self):
        """The records that have not expired, newest first, up to the records' budget: a service restarted
        on a database larger than its budget comes up inside it (the oldest are dropped, their nodes
        publish again), never killed at every start."""
        now = time.time()
        over = []
        for name, verifier, member, seq, data, observed, expires, ttl, signer, sig in self.db.execute(
                'SELECT * FROM records WHERE expires > ? ORDER BY expires DESC', (now,)):
            record = dict(seq=seq, data=data, observed=observed, expires=expires, ttl=ttl, signer=signer, sig=sig)
            cost = record_cost(record)
            if self.limits.record_bytes is not None and self.bytes + cost > self.limits.record_bytes or (
                    (name, verifier) not in self.clusters and len(self.clusters) >= self.limits.max_clusters):
                over.append((name, verifier, member))
                continue
            c = self.clusters.setdefault((name, verifier), Cluster(verifier))
            c.version += 1
            record['version'] = c.version
            c.members[member] = record
            self.bytes += cost
        if over:
            LOG.warning('%d records over the memory budget (%d MiB for records) or the cluster limit not loaded: '
                        'the oldest; their nodes publish them again', len(over), (self.limits.record_bytes or 0) >> 20)
        self.unwritten.update(over)

    def _write(self, statements):
        """Run statements in one transaction; a database fault is a 503 and changes nothing."""
        try:
            self.db.execute('BEGIN IMMEDIATE')
            try:
                for sql, args in statements:
                    self.db.execute(sql, args)
                self.db.execute('COMMIT')
            except BaseException:
                if self.db.in_transaction:  # (SQLite rolls back by itself on a full disk)
                    self.db.execute('ROLLBACK')
                raise
        except sqlite3.Error as exc:
            self.faults += 1
            if self.faults - self.faults_logged >= 1 and time.monotonic() >= self.log_after:
                # (a full disk fails every write: one line a minute, with the count)
                LOG.error('database: %s%s (%d faults so far)', 'disk full: ' if disk_full(exc) else '', exc,
                          self.faults)
                self.faults_logged, self.log_after = self.faults, time.monotonic() + 60
            raise HttpError(503, 'the service could not store this; try again later', {'Retry-After': '5'})

    def _authorize(self, cluster, write_key, create, client=None):
        """(the cluster's key, its Cluster or None for a new one) for a write with write_key from client."""
        key = (cluster, hashlib.sha256(write_key.encode('utf-8')).hexdigest())
        c = self.clusters.get(key)
        if c is None:
            if not create:
                raise HttpError(404, 'no such cluster (or not with this write key)')
            for place, most in ((source_of(client), self.limits.clusters_per_source),
                                (network_of(client), self.limits.clusters_per_network)):
                if client is not None and most and self.made_by[place] >= most:
                    raise HttpError(429, '%s made %d clusters that still live, as many as it may; one of them '
                                    'goes with its last record' % (place, most), {'Retry-After': '60'})
            if len(self.clusters) >= self.limits.max_clusters:
                raise HttpError(503, 'the service holds as many clusters as it may (%d)' % self.limits.max_clusters,
                                {'Retry-After': '60'})
        return key, c

    @staticmethod
    def readable(cluster, proof):
        """The key of the cluster a read proof reads (SHA-256 of the write key, hex: the cluster's
        verifier), so that only token holders get the sealed records, which would otherwise let anyone
        try to guess the token offline. A cluster that does not exist (under that proof) is empty."""
        if not proof:
            raise HttpError(401, 'reading a cluster needs its read proof (Authorization: Bearer ...)')
        return (cluster, proof)

    def _changed(self, c, member):
        c.version += 1
        c.changes.append((c.version, member, time.monotonic()))
        while len(c.changes) > self.limits.changes_kept:
            c.changes.popleft()
        for waiter in list(c.waiters):
            if not waiter.done():
                waiter.set_result(True)
        return c.version

    def put(self, cluster, member, write_key, seq, data, ttl, observed, signer, sig, tight=False, granted=False):
        """tight: the service is near its memory budget; a record that is not there yet is refused.
        granted: the write carried a valid slot grant (--slot-ca): it takes the slot over from another key."""
        key, c = self._authorize(cluster, write_key, create=True, client=observed)
        existing = c.members.get(member) if c is not None else None
        taken_over = granted and existing is not None and signer != existing['signer']
        if tight and existing is None:
            raise HttpError(503, 'the service is near its memory budget: no new records for now', {'Retry-After': '30'})
        record = dict(seq=seq, data=data, observed=observed, ttl=ttl, signer=signer, sig=sig)
        grows = record_cost(record) - (record_cost(existing) if existing is not None else 0)
        if existing is None and self.limits.record_bytes is not None and self.bytes + grows > self.limits.record_bytes:
            raise HttpError(503, 'the service holds as many records as its memory budget allows', {'Retry-After': '60'})
        if c is not None and existing is None and len(c.members) >= self.limits.members_per_cluster:
            raise HttpError(403, 'cluster is full (%d members)' % self.limits.members_per_cluster)
        if existing is not None and signer != existing['signer'] and not taken_over:
            raise HttpError(403, 'this member slot is another key\'s until its record goes')
        check_signature(signer, sig, signed_message('put', cluster, member, seq, ttl, data))
        if taken_over:
            LOG.warning('cluster %s: member slot %s taken over by the key its certificate names (another key held '
                        'it without one)', cluster[:16], member[:16])
        elif existing is not None and seq <= existing['seq']:
            raise HttpError(409, 'stale sequence number %d (have %d)' % (seq, existing['seq']))
        expires = time.time() + ttl
        self._write([('INSERT OR REPLACE INTO records VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)',
                      (cluster, key[1], member, seq, data, observed, expires, ttl, signer, sig))])
        if c is None:
            c = self.clusters[key] = Cluster(key[1], observed)
            self.made_by.update((source_of(observed), network_of(observed)))
        version = self._changed(c, member)
        c.members[member] = dict(record, expires=expires, version=version)
        self.bytes += grows
        self.unwritten.discard((cluster, key[1], member))
        return version, expires

    def delete(self, cluster, member, write_key, seq, signer, sig):
        key, c = self._authorize(cluster, write_key, create=False)
        existing = c.members.get(member)
        if existing is None:
            raise HttpError(404, 'no such member')
        if signer != existing['signer']:
            raise HttpError(403, 'this member slot is another key\'s')
        check_signature(signer, sig, signed_message('delete', cluster, member, seq, 0, ''))
        if seq <= existing['seq']:
            raise HttpError(409, 'a delete must be newer than the record (seq %d, have %d)' % (seq, existing['seq']))
        self._write([('DELETE FROM records WHERE cluster = ? AND verifier = ? AND member = ?',
                      (cluster, key[1], member))])
        self.bytes -= record_cost(c.members.pop(member))
        version = self._changed(c, member)
        if not c.members:
            self._drop(key)
        return version

    def _drop(self, cluster):
        """A cluster with no members is not kept (its watchers are answered: they start over)."""
        c = self.clusters.pop(cluster, None)
        if c is not None and c.creator is not None:
            for place in (source_of(c.creator), network_of(c.creator)):
                self.made_by[place] -= 1
                if self.made_by[place] <= 0:
                    del self.made_by[place]
        if c is not None:
            for waiter in list(c.waiters):
                if not waiter.done():
                    waiter.set_result(True)

    def expire(self, now=None):
        """Forget what expired, drop empty clusters, age the change histories. A database fault is
        logged and retried at the next sweep (the records are hidden from listings meanwhile)."""
        now = time.time() if now is None else now
        horizon = time.monotonic() - self.limits.history_seconds
        for cluster, c in list(self.clusters.items()):
            gone = [m for m, r in c.members.items() if r['expires'] <= now]
            for member in gone:  # (from memory at once; from the database below, or at a later sweep)
                self.bytes -= record_cost(c.members.pop(member))
                self._changed(c, member)
                self.unwritten.add(cluster + (member,))
            if not c.members:
                self._drop(cluster)
                continue
            while c.changes and c.changes[0][2] < horizon:
                c.changes.popleft()
        self._write_deletes(now)

    def _write_deletes(self, now):
        """The deletes memory is ahead of (records expired or over the budget), and the expired records of an
        earlier run; then the write-ahead log is folded back into the database, so that the space a full disk
        needs comes back with them. A database that still refuses keeps them for the next sweep."""
        if not self.unwritten and not self.unwritten_expired:
            return
        # (a batch a sweep: the loop waits for the database, and a restart may leave tens of thousands)
        statements = [('DELETE FROM records WHERE cluster = ? AND verifier = ? AND member = ?', key)
                      for key in itertools.islice(self.unwritten, DELETE_BATCH)]
        if self.unwritten_expired:
            statements.append(('DELETE FROM records WHERE rowid IN (SELECT rowid FROM records WHERE expires <= ? '
                               'LIMIT %d)' % DELETE_BATCH, (now,)))
        try:
            self._write(statements)
        except HttpError:
            return
        recovered = self.faults > 0 and self.faults_logged > 0
        self.unwritten.difference_update(args for _sql, args in statements)
        if self.unwritten_expired:
            self.unwritten_expired = self.db.execute('SELECT 1 FROM records WHERE expires <= ? LIMIT 1',
                                                     (now,)).fetchone() is not None
        try:
            self.db.execute('PRAGMA wal_checkpoint(TRUNCATE)')
        except sqlite3.Error as exc:
            LOG.error('database: the write-ahead log could not be checkpointed: %s', exc)
        if recovered:
            LOG.info('database: writing again (%d faults so far)', self.faults)
            self.faults_logged = 0

    @staticmethod
    def view(member, record):
        return dict(member=member, seq=record['seq'], data=record['data'], observed=record['observed'],
                    expires=int(record['expires']), ttl=record['ttl'], signer=record['signer'], sig=record['sig'])

    @staticmethod
    def _live(c):
        now = time.time()
        return sorted((m, r) for m, r in c.members.items() if r['expires'] > now)

    def listing(self, cluster):
        c = self.clusters.get(cluster)
        if c is None:
            return dict(version=0, members=[])
        return dict(version=c.version, members=[self.view(m, r) for m, r in self._live(c)])

    def listing_bytes(self, cluster):
        """The listing as JSON, made once per version of the cluster however many read it."""
        c = self.clusters.get(cluster)
        if c is None:
            return encode(self.listing(cluster))
        if c.listed is None or c.listed[0] != c.version or time.time() >= c.listed[2]:
            answer = self.listing(cluster)
            # (made again when its first record expires: the views' expiry is rounded down, so never late)
            c.listed = (c.version, encode(answer), min([m['expires'] for m in answer['members']] or [float('inf')]))
        return c.listed[1]

    def changes_since(self, cluster, since):
        """(answer, None) if there is something to say, else (None, cluster) to wait on."""
        c = self.clusters.get(cluster)
        if c is None:
            if since > 0:
                # A version of a cluster this service no longer has (it restarted empty, or every record
                # went): said at once, so that the watcher publishes again now.
                return dict(version=0, reset=True, members=[], deleted=[]), None
            return None, None
        if since > c.version:
            # A version this run never gave (the client watched an earlier run of the service):
            # start the client over with the whole listing.
            answer = self.listing(cluster)
            answer.update(reset=True, deleted=[])
            return answer, None
        if since == c.version:
            return None, c
        oldest = c.changes[0][0] if c.changes else c.version + 1
        if since < oldest - 1:
            answer = self.listing(cluster)
            answer.update(reset=True, deleted=[])
            return answer, None
        touched = set(m for v, m, _t in c.changes if v > since)
        now = time.time()
        members = [self.view(m, c.members[m]) for m in sorted(touched)
                   if m in c.members and c.members[m]['expires'] > now]
        deleted = sorted(m for m in touched if m not in c.members)
        return dict(version=c.version, reset=False, members=members, deleted=deleted), None


def bearer(request):
    """The Authorization header's bearer credential ('' when there is none, or it is too long)."""
    auth = request.headers.get('Authorization', '')
    if not auth.startswith('Bearer ') or len(auth) > 7 + MAX_WRITE_KEY:
        return ''
    return auth[7:]


def encode(answer):
    return json.dumps(answer, separators=(',', ':')).encode('utf-8')


class RateLimiter:
    """Token bucket per source, its table pruned of full buckets and never larger than max_buckets.
    A refused request still costs a token, down to a debt of twice the burst: a source that keeps
    coming after its 429s is in debt, and its new connections are cut at once (no HTTP at all)
    until it has been quiet long enough."""

    def __init__(self, rate, burst, max_buckets=100000):
        self.rate = rate
        self.burst = burst
        self.max_buckets = max_buckets
        self.buckets = {}

    def allow(self, client, now=None):
        if self.rate <= 0:
            return True
        now = time.monotonic() if now is None else now
        if client not in self.buckets and len(self.buckets) >= self.max_buckets:
            self.prune(now)
            if len(self.buckets) >= self.max_buckets:
                return False  # a flood from more sources than the table holds: the newcomers wait
        tokens, last = self.buckets.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1:
            self.buckets[client] = (max(tokens - 1, -2 * self.burst), now)
            return False
        self.buckets[client] = (tokens - 1, now)
        return True

    def in_debt(self, client, now=None):
        """Whether the source made a burst's worth of requests past its limit (and still does)."""
        return self.rate > 0 and self.tokens(client, now) <= -self.burst

    def tokens(self, client, now=None):
        now = time.monotonic() if now is None else now
        if self.rate <= 0 or client not in self.buckets:
            return self.burst
        tokens, last = self.buckets[client]
        return min(self.burst, tokens + (now - last) * self.rate)

    def prune(self, now=None):
        """Forget the buckets that have filled up again (they hold nothing a new one would not)."""
        now = time.monotonic() if now is None else now
        for client in [c for c, (tokens, last) in self.buckets.items() if tokens + (now - last) * self.rate >= self.burst]:
            del self.buckets[client]


class Connections:
    """Who holds a connection: counted per source and in all, each with a deadline for its next
    request (a client that sends headers slowly, or nothing, is cut off). A connection that ends
    without a request costs its source a token of the rate limit, as a request would; a source with
    no token left that already holds a connection without a request gets no other."""

    def __init__(self, limits, limiter, memory=None):
        self.limits = limits
        self.limiter = limiter
        self.memory = memory or Memory(limits.memory_budget)
        self.total = 0
        self.handshakes = 0  # TLS handshakes under way
        self.per_source = collections.Counter()
        self.by_transport = {}
        self.waiting = collections.Counter()  # per source: connections that sent no request yet
        self.refused = collections.Counter()

    def admit(self, conn, tls=False):
        """SERVE, HOLD (a source in debt: the connection is held unread until the header deadline,
        so a client that waits for an answer stops flooding, within the source's share), or None.
        Asked of the bare TCP connection, before any TLS state is made for it."""
        why, how = None, SERVE
        if self.total >= self.limits.max_connections:
            why = 'total'
        elif self.per_source[conn.source] >= self.limits.connections_per_source:
            why = 'per source'
        elif tls and self.handshakes >= self.limits.max_handshakes:
            why = 'handshakes'
        elif self.memory.tight():
            why = 'memory'
        elif self.limiter.in_debt(conn.source):
            self.limiter.allow(conn.source)  # (each try costs: a flood stays cut off while it floods)
            self.refused['held'] += 1
            how = HOLD
        elif self.waiting[conn.source] and self.limiter.tokens(conn.source) < 1:
            self.limiter.allow(conn.source)  # (costs too: on the way into debt)
            why = 'rate'
        if why is not None:
            self.refused[why] += 1
            return None
        self.total += 1
        self.per_source[conn.source] += 1
        self.waiting[conn.source] += 1
        self.by_transport[conn.transport] = conn
        if tls:
            self.handshakes += 1
        return how

    def secured(self, conn, raw, transport):
        """conn's TLS handshake is done: from now on it is known by its TLS transport."""
        self.handshakes -= 1
        self.by_transport.pop(raw, None)
        self.by_transport[transport] = conn

    def first_request(self, conn):
        self._less(self.waiting, conn.source)

    def release(self, conn):
        if conn.handshaking:
            self.handshakes -= 1
        self.total -= 1
        self._less(self.per_source, conn.source)
        if conn.served == 0:
            self._less(self.waiting, conn.source)
            self.limiter.allow(conn.source)  # (charged whether or not a token was left)
        self.by_transport.pop(conn.transport, None)

    @staticmethod
    def _less(counter, key):
        counter[key] -= 1
        if counter[key] <= 0:
            del counter[key]


SERVE, HOLD = 'serve', 'hold'


def cut(transport):
    """Abort a connection unless it is already going: a TLS transport whose peer has gone is
    closing before its protocol hears of it, and aborting it then failed inside asyncio (a traceback
    in the log for every such connection)."""
    if transport is not None and not transport.is_closing():
        transport.abort()


class Guarded(asyncio.Protocol):
    """aiohttp's protocol for one connection, behind the connection limits and deadlines. With TLS,
    the bare TCP connection is counted first (per source, in all, among the handshakes under way and
    against the memory budget) and only a connection let in gets TLS state and its handshake."""

    def __init__(self, factory, connections, loop, tls=None):
        self.factory = factory   # aiohttp's protocol, made only for a connection let in
        self.inner = None
        self.connections = connections
        self.loop = loop
        self.tls = tls           # the server's SSLContext, or None: plain HTTP
        self.transport = None
        self.raw = None          # the TCP transport under TLS
        self.source = None
        self.admitted = False
        self.handshaking = False
        self.how = None
        self.busy = 0          # requests being answered
        self.served = 0        # requests begun
        self.timer = None

    def connection_made(self, transport):
        if self.handshaking:  # the handshake is done: transport is the TLS one
            self.connections.secured(self, self.raw, transport)
            self.handshaking = False
            self.transport = transport
            self._open()
            return
        self.transport = transport
        peer = transport.get_extra_info('peername')
        self.source = source_of(peer[0] if peer else '?')
        self.how = self.connections.admit(self, tls=self.tls is not None)
        if self.how is None:
            transport.abort()
            return
        self.admitted = True
        if self.tls is None:
            self._open()
            return
        self.raw = transport
        self.handshaking = True
        waiter = self.loop.create_future()
        waiter.add_done_callback(self._handshake_over)
        layer = SmallTLS(self.loop, self, self.tls, waiter, server_side=True,
                         ssl_handshake_timeout=self.connections.limits.header_timeout)
        # (what loop.start_tls does; the reader is not added yet, so no data can come before this)
        transport.set_protocol(layer)
        layer.connection_made(transport)

    def _handshake_over(self, waiter):
        """A handshake that failed, timed out or was cut: the connection no longer counts. (One that
        succeeded made its TLS connection before this is called.)"""
        if not waiter.cancelled():
            waiter.exception()  # (taken, so that asyncio does not log it as never retrieved)
        if self.handshaking and self.admitted:
            self.connections.release(self)
            self.admitted = False
            self.handshaking = False

    def _open(self):
        # What a connection may have waiting to go out before its writer waits (and the send deadline
        # applies): two parts of an answer, not asyncio's 64 KiB (and, under TLS, 256 KiB more encrypted).
        for transport in (self.transport, self.raw):
            if transport is not None:
                transport.set_write_buffer_limits(high=WRITE_BUFFER)
        if self.how == SERVE:
            self.inner = self.factory()
            self.inner.connection_made(self.transport)
        self.arm(self.connections.limits.header_timeout)

    def arm(self, seconds):
        if self.timer is not None:
            self.timer.cancel()
        served = self.served
        self.timer = self.loop.call_later(seconds, self._deadline, served)

    def _deadline(self, served):
        """No request began since the deadline was set and none is being answered: cut off."""
        if self.busy == 0 and self.served == served:
            cut(self.transport)

    def begin(self):
        if self.served == 0:
            self.connections.first_request(self)
        self.busy += 1
        self.served += 1

    def end(self):
        self.busy -= 1
        if self.busy == 0:
            self.arm(self.connections.limits.idle_timeout)

    def data_received(self, data):
        if self.inner is not None:
            self.inner.data_received(data)

    def eof_received(self):
        if self.inner is not None:
            return self.inner.eof_received()
        return False

    def pause_writing(self):
        if self.inner is not None:
            self.inner.pause_writing()

    def resume_writing(self):
        if self.inner is not None:
            self.inner.resume_writing()

    def connection_lost(self, exc):
        if self.timer is not None:
            self.timer.cancel()
        if self.admitted:
            self.connections.release(self)
            self.admitted = False
            if self.inner is not None:
                self.inner.connection_lost(exc)


class Server:
    def __init__(self, store, limits):
        self.store = store
        self.limits = limits
        self.limiter = RateLimiter(limits.rate, limits.burst, limits.max_buckets)
        self.connections = Connections(limits, self.limiter)

    async def dispatch(self, request):
        conn = self.connections.by_transport.get(request.transport)
        if conn is not None:
            conn.begin()
        try:
            try:
                status, answer = await self._answer(request)
                headers = {}
            except HttpError as exc:
                status, answer, headers = exc.status, {'error': str(exc)}, exc.headers
            return await self._send(request, status, answer, headers)
        finally:
            if conn is not None:
                conn.end()

    async def _answer(self, request):
        client = unmapped(request.remote or '?')
        if not self.limiter.allow(source_of(client)):
            raise HttpError(429, 'too many requests from %s (limit %g/s, burst %d)'
                            % (source_of(client), self.limits.rate, self.limits.burst), {'Retry-After': '1'})
        method = request.method
        parts = [p for p in request.path.split('/') if p]
        if parts == ['v1', 'hello'] and method == 'GET':
            return 200, {'observed': client}
        if parts == ['healthz']:
            if is_loopback(client):
                return 200, dict(self.stats(), ok=True)  # (to the host itself only)
            return 200, {'ok': True}
        if len(parts) < 4 or parts[:2] != ['v1', 'clusters'] or not _CLUSTER_RE.match(parts[2]):
            raise HttpError(404, 'no such resource')
        cluster = parts[2]
        if parts[3] == 'members' and len(parts) == 4 and method == 'GET':
            return 200, self.store.listing_bytes(self.store.readable(cluster, bearer(request)))
        if parts[3] == 'watch' and len(parts) == 4 and method == 'GET':
            return 200, await self._watch(cluster, request.query, bearer(request))
        if parts[3] == 'members' and len(parts) == 5 and method in ('PUT', 'DELETE'):
            member = parts[4]
            if not _MEMBER_RE.match(member):
                raise HttpError(400, 'member id must be 64 hex characters')
            auth = request.headers.get('Authorization', '')
            if not auth.startswith('Bearer ') or not 8 <= len(auth) <= 7 + MAX_WRITE_KEY:
                raise HttpError(401, 'a write key is required (Authorization: Bearer ...)')
            write_key = auth[7:]
            doc = self._document(await self._body(request))
            if method == 'PUT':
                return 200, self._put(cluster, member, write_key, doc, client)
            seq = self._number(doc.get('seq'), 'seq', 0, MAX_SEQ)
            return 200, {'version': self.store.delete(cluster, member, write_key, seq, doc.get('signer'), doc.get('sig'))}
        raise HttpError(405 if parts[3] in ('members', 'watch') else 404, 'method not allowed here')

    def stats(self):
        clusters = self.store.clusters.values()
        return dict(clusters=len(self.store.clusters), members=sum(len(c.members) for c in clusters),
                    history=sum(len(c.changes) for c in clusters), waiters=sum(len(c.waiters) for c in clusters),
                    record_bytes=self.store.bytes, record_budget=self.limits.record_bytes,
                    unwritten=len(self.store.unwritten),
                    connections=self.connections.total, sources=len(self.connections.per_source),
                    buckets=len(self.limiter.buckets), refused=dict(self.connections.refused),
                    handshakes=self.connections.handshakes, resident=self.connections.memory.used(),
                    budget=self.limits.memory_budget,
                    database_faults=self.store.faults)

    async def _body(self, request):
        if request.content_length is not None and request.content_length > MAX_BODY:
            raise HttpError(413, 'body too large (limit %d bytes)' % MAX_BODY)
        try:
            return await asyncio.wait_for(request.read(), self.limits.body_timeout)
        except asyncio.TimeoutError:
            raise HttpError(408, 'the body did not arrive within %g s' % self.limits.body_timeout)
        except web.HTTPRequestEntityTooLarge:
            raise HttpError(413, 'body too large (limit %d bytes)' % MAX_BODY)

    @staticmethod
    def _document(body):
        try:
            doc = json.loads(body.decode('utf-8'))
        except (ValueError, RecursionError):
            raise HttpError(400, 'the body must be a JSON object')
        if not isinstance(doc, dict):
            raise HttpError(400, 'the body must be a JSON object')
        return doc

    @staticmethod
    def _number(value, what, least, most):
        if isinstance(value, bool) or not isinstance(value, int) or not least <= value <= most:
            raise HttpError(400, '%s must be an integer from %d to %d' % (what, least, most))
        return value

    def _put(self, cluster, member, write_key, doc, client):
        if 'seq' not in doc or 'data' not in doc:
            raise HttpError(400, 'body must be JSON with seq, data, signer, sig and optional ttl')
        seq = self._number(doc['seq'], 'seq', 0, MAX_SEQ)
        ttl = doc.get('ttl', self.limits.default_ttl)
        if isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= self.limits.max_ttl:
            raise HttpError(400, 'ttl must be 1-%d seconds' % self.limits.max_ttl)
        data = doc['data']
        if not isinstance(data, str):
            raise HttpError(400, 'data must be a base64 string')
        try:
            size = len(base64.b64decode(data, validate=True))
        except (ValueError, TypeError):
            raise HttpError(400, 'data must be a base64 string')
        if size > self.limits.bytes_per_record:
            raise HttpError(413, 'record is %d bytes, the limit is %d' % (size, self.limits.bytes_per_record))
        if self.limits.slot_cas:
            decoded(doc.get('signer'), 32, 'signer')
            check_grant(self.limits.slot_cas, member, doc.get('signer'), doc, time.time())
        version, expires = self.store.put(cluster, member, write_key, seq, data, ttl, client,
                                          doc.get('signer'), doc.get('sig'), tight=self.connections.memory.tight(),
                                          granted=bool(self.limits.slot_cas))
        return {'observed': client, 'version': version, 'expires': int(expires)}

    async def _watch(self, name, query, proof):
        since_text, timeout_text = query.get('since', '0'), query.get('timeout', '25')
        if not _DIGITS_RE.match(since_text) or int(since_text) > MAX_SEQ:
            raise HttpError(400, 'since must be an integer from 0 to %d' % MAX_SEQ)
        try:
            timeout = float(timeout_text)
        except ValueError:
            timeout = float('nan')
        if not math.isfinite(timeout) or timeout < 0:
            raise HttpError(400, 'timeout must be a number of seconds from 0 to %d' % self.limits.max_watch)
        since = int(since_text)
        cluster = self.store.readable(name, proof)
        deadline = time.monotonic() + min(timeout, self.limits.max_watch)
        while True:
            answer, c = self.store.changes_since(cluster, since)
            if answer is not None:
                return answer
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return dict(version=since if c is None else c.version, reset=False, members=[], deleted=[])
            if c is None:
                await asyncio.sleep(min(remaining, 1.0))  # the cluster does not exist (yet, or any more)
                continue
            waiter = asyncio.get_running_loop().create_future()
            c.waiters.add(waiter)
            try:
                await asyncio.wait_for(waiter, remaining)
            except asyncio.TimeoutError:
                pass
            finally:
                c.waiters.discard(waiter)

    async def _send(self, request, status, answer, headers):
        """The answer in parts, each with a deadline: a client that does not read is cut off, so an
        unread answer holds at most a part or two in memory."""
        payload = answer if isinstance(answer, bytes) else encode(answer)
        response = web.StreamResponse(status=status, headers=dict(headers, **{'Content-Type': 'application/json'}))
        response.content_length = len(payload)
        try:
            await asyncio.wait_for(response.prepare(request), self.limits.send_timeout)
            view = memoryview(payload)  # (parts of the one copy every reader of this version shares)
            for start in range(0, len(payload), CHUNK):
                await asyncio.wait_for(response.write(view[start:start + CHUNK]), self.limits.send_timeout)
            await asyncio.wait_for(response.write_eof(), self.limits.send_timeout)
        except (asyncio.TimeoutError, ConnectionError):
            cut(request.transport)
        return response


async def expire_loop(store, limiter, every):
    """Never ends on a fault: a sweep that fails is logged and the next one runs."""
    while True:
        await asyncio.sleep(every)
        try:
            store.expire()
            limiter.prune()
        except Exception as exc:  # pylint: disable=broad-except
            LOG.error('expiry sweep failed: %s', exc)


def server_options(limits):
    """aiohttp's own limits, as far as the installed version has them. aiohttp logs a traceback for
    every request it cannot parse: a client could fill the journal (or block the service on a full
    pipe) with them, so its server log is off; the access log too."""
    logging.getLogger('aiohttp.server').setLevel(logging.CRITICAL)
    options = dict(keepalive_timeout=limits.idle_timeout, max_line_size=4096, max_field_size=4096, max_headers=32,
                   access_log=None)
    accepted = inspect.signature(web.AppRunner.__init__).parameters
    if 'handler_cancellation' in accepted:  # aiohttp 3.9+: a client that leaves ends its long poll
        options['handler_cancellation'] = True
    return options


async def serve(host, port, db_path, limits, certfile=None, keyfile=None, ready=None, expire_every=5.0):
    store = Store(db_path, limits)
    server = Server(store, limits)
    app = web.Application(client_max_size=MAX_BODY)
    app.router.add_route('*', '/{path:.*}', server.dispatch)
    runner = web.AppRunner(app, **server_options(limits))
    await runner.setup()
    context = None
    if certfile:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certfile, keyfile)
    loop = asyncio.get_running_loop()
    factory = runner.server
    # TLS is begun by Guarded, once the bare connection is let in (see there)
    listener = await loop.create_server(lambda: Guarded(factory, server.connections, loop, context), host, port,
                                        backlog=1024, reuse_address=True)
    LOG.info('listening on %s:%d (%s), %d clusters loaded, memory budget %s, at most %d connections (%d per source, '
             '%d handshakes at once)', host, port, 'TLS' if context else 'plain HTTP', len(store.clusters),
             '%d MiB' % (limits.memory_budget >> 20) if limits.memory_budget else 'none known',
             limits.max_connections, limits.connections_per_source, limits.max_handshakes)
    if ready is not None:
        ready()
    stop = loop.create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, lambda: stop.done() or stop.set_result(True))
    expiry = asyncio.ensure_future(expire_loop(store, server.limiter, expire_every))
    try:
        await stop
    finally:
        expiry.cancel()
        listener.close()
        await runner.cleanup()
        store.db.close()


_NAME_RE = re.compile(r'^[A-Za-z0-9]([A-Za-z0-9.-]{0,252})$')


def listen_address(text):
    """(host or None for every address, port) from --listen: address:port, [IPv6]:port, name:port or :port."""
    host, sep, port = str(text).strip().rpartition(':')
    if not sep or not port.isdigit() or not 1 <= int(port) <= 65535:
        raise ValueError('--listen %r: give address:port (an IPv6 address in brackets; :port alone for every address, '
                         'IPv4 and IPv6), with a port from 1 to 65535' % text)
    if host.startswith('[') and host.endswith(']'):
        try:
            return str(ipaddress.IPv6Address(host[1:-1])), int(port)
        except ValueError:
            raise ValueError('--listen %r: %s is not an IPv6 address' % (text, host))
    if not host:
        return None, int(port)
    try:
        return str(ipaddress.IPv4Address(host)), int(port)
    except ValueError:
        if ':' in host or not _NAME_RE.match(host):
            raise ValueError('--listen %r: %s is neither an IPv4 address nor a name (an IPv6 address goes in '
                             'brackets)' % (text, host))
        return host, int(port)


def check_numbers(args):
    """The numeric options in their ranges (ValueError naming the first that is not)."""
    for name in ('members_per_cluster', 'bytes_per_record', 'burst', 'max_clusters', 'connections_per_source'):
        if getattr(args, name) < 1:
            raise ValueError('--%s must be 1 or more' % name.replace('_', '-'))
    for name in ('rate', 'max_connections', 'max_handshakes', 'clusters_per_source', 'clusters_per_network'):
        if getattr(args, name) < 0:
            raise ValueError('--%s must be 0 or more' % name.replace('_', '-'))
    for name in ('header_timeout', 'idle_timeout', 'body_timeout', 'send_timeout', 'history_seconds', 'max_watch',
                 'expire_every'):
        value = getattr(args, name)
        if math.isnan(value) or not 0 < value < 86400:
            raise ValueError('--%s must be more than 0 and less than a day' % name.replace('_', '-'))


def main(argv=None):
    parser = argparse.ArgumentParser(description='wglan discovery service')
    parser.add_argument('--listen', default='0.0.0.0:8443',
                        help='address:port (IPv6 in brackets; :port alone: every address, IPv4 and IPv6)')
    parser.add_argument('--db', default='/var/lib/wglan-discovery/records.db')
    parser.add_argument('--cert')
    parser.add_argument('--key')
    parser.add_argument('--members-per-cluster', type=int, default=1024)
    parser.add_argument('--bytes-per-record', type=int, default=2048)
    parser.add_argument('--rate', type=float, default=15.0, help='requests per second per source (0: no limit)')
    parser.add_argument('--burst', type=int, default=60)
    parser.add_argument('--max-clusters', type=int, default=10000)
    parser.add_argument('--clusters-per-source', type=int, default=32,
                        help='clusters one IPv4 address or IPv6 /64 may make that still live (0: no bound)')
    parser.add_argument('--clusters-per-network', type=int, default=256,
                        help='clusters one IPv4 /24 or IPv6 /48 may make that still live (0: no bound)')
    parser.add_argument('--connections-per-source', type=int, default=64,
                        help='connections one IPv4 address or IPv6 /64 may hold')
    parser.add_argument('--max-connections', type=int, default=0,
                        help='connections in all (0: the file limit less %d)' % FD_RESERVE)
    parser.add_argument('--memory-budget', default='',
                        help='memory the service may hold, as systemd\'s MemoryMax (256M, 1G, 10%%; its cgroup\'s '
                             'limit, when smaller, wins)')
    parser.add_argument('--max-handshakes', type=int, default=0,
                        help='TLS handshakes under way at once (0: an eighth of the connections, 16 to 1024)')
    parser.add_argument('--header-timeout', type=float, default=10.0,
                        help='seconds for a connection to send its first request')
    parser.add_argument('--idle-timeout', type=float, default=15.0, help='seconds a connection may wait between requests')
    parser.add_argument('--body-timeout', type=float, default=10.0, help='seconds for a request body to arrive')
    parser.add_argument('--send-timeout', type=float, default=10.0,
                        help='seconds a client may take to read each 64 KiB of an answer')
    parser.add_argument('--history-seconds', type=float, default=300.0,
                        help='how long a cluster\'s changes are kept for watchers that fell behind')
    parser.add_argument('--max-watch', type=float, default=60.0, help='longest long poll, in seconds')
    parser.add_argument('--expire-every', type=float, default=5.0, help='seconds between expiry sweeps')
    parser.add_argument('--slot-ca', action='append', default=[], metavar='PUBLIC_KEY',
                        help='a mesh CA\'s public key (base64): every write must carry a slot grant it signed '
                             '(repeat for several meshes)')
    parser.add_argument('--check', action='store_true',
                        help='check the options and exit (the discovery role runs this before it changes the unit)')
    args = parser.parse_args(argv)
    try:
        budget = memory_budget(args.memory_budget)
        host, port = listen_address(args.listen)
        check_numbers(args)
        slot_cas = parse_slot_cas(args.slot_ca)
    except ValueError as exc:
        parser.error(str(exc))
    if args.check:
        shown = '%d MiB' % (budget >> 20) if budget else 'none known'
        print('options ok: listen on %s:%d, memory budget %s%s' % (
            host or '*', port, shown, ', slots pinned to %d CA(s)' % len(slot_cas) if slot_cas else ''))
        return
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(message)s')
    limits = Limits(args.members_per_cluster, args.bytes_per_record, args.rate, args.burst,
                    max_clusters=args.max_clusters, connections_per_source=args.connections_per_source,
                    max_connections=args.max_connections, header_timeout=args.header_timeout,
                    idle_timeout=args.idle_timeout, body_timeout=args.body_timeout,
                    send_timeout=args.send_timeout, history_seconds=args.history_seconds, max_watch=args.max_watch,
                    memory_budget=budget, max_handshakes=args.max_handshakes,
                    clusters_per_source=args.clusters_per_source, clusters_per_network=args.clusters_per_network,
                    slot_cas=slot_cas)
    asyncio.run(serve(host, port, args.db, limits, args.cert, args.key, expire_every=args.expire_every))


if __name__ == '__main__':
    main()
