# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Client of the discovery service: publish this node's record, read the others'.

Records are sealed and signed before they leave (discovery_crypto); what comes
back is checked (the member's signature, the key that member signed with
before, a sequence number no older than one already taken, a record no older
than its TTL), opened and validated, and anything that fails is dropped with
a reason, never used. A node can use several services: it publishes to each
and takes, per member, the newest record any of them has.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import concurrent.futures
import hashlib
import http.client
import json
import socket
import ssl
import threading
import time
from collections import namedtuple
from urllib.parse import urlsplit

from ansible_collections.wglan.mesh.plugins.module_utils.sources import discovery_crypto as crypto
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.host.underlay import marked_connection
from ansible_collections.wglan.mesh.plugins.module_utils.model import certificates, source_merge
from ansible_collections.wglan.mesh.plugins.module_utils.model.node_records import parse_known, parse_record

MAX_ENDPOINTS = 64  # per record; the server cannot count them, so the client refuses more
DEFAULT_TTL = 1800
TIMEOUT = 10
MAX_ANSWER = 8 * 1024 * 1024  # a full cluster's listing is about 3 MB; a server sending more is refused
MAX_SEEN = 4096  # members whose key and newest sequence number a node remembers (the oldest go first)

# One member's entry of a listing, checked and opened.
Entry = namedtuple('Entry', 'member seq signer record expires')


def in_clear(url):
    """A warning for a service reached over plain HTTP on another host, else None."""
    parts = urlsplit(url)
    if parts.scheme != 'http' or parts.hostname in ('localhost', '127.0.0.1', '::1'):
        return None
    return ('the discovery service at %s is plain HTTP: the cluster\'s write key crosses the network in clear, '
            'and whoever can read it can fill the cluster with junk and hold member slots; give the service a '
            'certificate (the discovery role does by default) and an https URL' % url)


class Stale(WglanError):
    """A member's record older than one this node already took."""


class DiscoveryClient:
    def __init__(self, url, token, cluster=None, ca_file=None, timeout=TIMEOUT, mark=None, signing=None, ca_data=None):
        parts = urlsplit(url)
        if parts.scheme not in ('http', 'https') or not parts.hostname:
            raise WglanError('discovery URL must look like http(s)://host:port')
        self.url = url.rstrip('/')
        self.scheme = parts.scheme
        self.host = parts.hostname
        self.port = parts.port or (443 if parts.scheme == 'https' else 80)
        self.base = parts.path.rstrip('/')
        self.box = crypto.RecordBox(token, cluster)
        self.cluster = self.box.cluster
        self.write_key = crypto.write_key(token)
        # (what the service keeps of the write key: it lets token holders read, and nobody else)
        self.read_proof = hashlib.sha256(self.write_key.encode('utf-8')).hexdigest()
        self.timeout = timeout
        # (made at the first call: a CA that cannot be read is then this service's error, not the run's)
        self.trust = (ca_file, ca_data) if (ca_file or ca_data) else None
        self.context = None
        self.mark = mark
        self.open = None  # the connection of the call under way (abort closes it)
        # signing: this node's WireGuard private key (base64), whence its signing key; None: a new key
        self.signing = crypto.signing_key(signing)
        self.signer = crypto.public_signer(self.signing)

    def abort(self):
        """End the call under way (from another thread): a long poll on a connection a NAT forgot
        would otherwise wait for its timeout. The call raises WglanError."""
        connection = self.open
        sock = getattr(connection, 'sock', None) if connection is not None else None
        if sock is not None:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def _tls(self):
        """The TLS context: the CA file and the CA certificates given (they alone), else the system's."""
        if self.context is None:
            ca_file, ca_data = self.trust or (None, None)
            try:
                self.context = ssl.create_default_context(cafile=ca_file or None, cadata=ca_data or None)
            except (OSError, ssl.SSLError, ValueError) as exc:
                raise WglanError('discovery service at %s: cannot use the CA %s: %s'
                                 % (self.url, ca_file or 'certificates given', exc))
        return self.context

    def _connection(self, timeout):
        if self.scheme == 'https':
            self._tls()
            connection = http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self.context)
        else:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        if self.mark:
            connection._create_connection = marked_connection(self.mark)
        return connection

    def _call(self, method, path, body=None, auth=False, timeout=None):
        """One request. timeout bounds the whole call (connect, TLS, request and the whole answer), not
        only each read: a service that answers a byte at a time, or a man in the middle, cannot hold
        a run or a reconcile longer than that."""
        headers = {'Content-Type': 'application/json'}
        headers['Authorization'] = 'Bearer ' + (self.write_key if auth else self.read_proof)
        data = json.dumps(body).encode('utf-8') if body is not None else None
        what = path.rsplit('/', 1)[-1].split('?')[0]
        limit = timeout or self.timeout
        connection = self.open = self._connection(limit)  # (WglanError: a CA it cannot use)
        expired = threading.Event()

        def expire():
            expired.set()
            self.abort()

        timer = threading.Timer(limit, expire)
        timer.daemon = True
        timer.start()
        try:
            connection.request(method, self.base + path, body=data, headers=headers)
            response = connection.getresponse()
            payload = response.read(MAX_ANSWER + 1)
        except (OSError, http.client.HTTPException, socket.timeout, ValueError) as exc:
            if expired.is_set():
                raise WglanError('discovery service at %s did not answer within %s s' % (self.url, limit))
            raise WglanError('discovery service at %s is unreachable: %s' % (self.url, exc))
        finally:
            timer.cancel()
            self.open = None
            connection.close()
        if expired.is_set():
            raise WglanError('discovery service at %s did not answer within %s s' % (self.url, limit))
        if len(payload) > MAX_ANSWER:
            raise WglanError('discovery service at %s answered more than %d bytes' % (self.url, MAX_ANSWER))
        try:
            answer = json.loads(payload.decode('utf-8'))
        except (ValueError, RecursionError):
            raise WglanError('discovery service at %s answered %d with something that is not JSON'
                             % (self.url, response.status))
        if response.status != 200:
            reason = answer.get('error', response.reason) if isinstance(answer, dict) else response.reason
            raise WglanError('discovery service: %s %s: %d %s' % (method, what, response.status, str(reason)[:200]))
        if not isinstance(answer, dict):
            raise WglanError('discovery service at %s: %s %s answered %s, not an object'
                             % (self.url, method, what, type(answer).__name__))
        return answer

    def _listing(self, answer, warn, what, seen=None):
        """(version, [Entry]) of a listing or watch answer, checked: a server that sends something else
        is an error naming it (the caller keeps what it had), never a crash."""
        if 'version' not in answer or 'members' not in answer:
            raise WglanError('discovery service at %s: %s: the answer has no version or members' % (self.url, what))
        version, members = answer['version'], answer['members']
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            raise WglanError('discovery service at %s: %s: version %r is not a version' % (self.url, what, version))
        if not isinstance(members, list) or not all(isinstance(entry, dict) for entry in members):
            raise WglanError('discovery service at %s: %s: members is not a list of objects' % (self.url, what))
        return version, self.open_entries(members, warn, seen)

    def hello(self):
        observed = self._call('GET', '/v1/hello').get('observed')
        if not isinstance(observed, str):
            raise WglanError('discovery service at %s: hello: no observed address' % self.url)
        return observed

    def publish(self, record, ttl=DEFAULT_TTL, seq=None):
        """Seal and store this node's record. Returns the address the service sees us at."""
        if len(record.get('node_ips') or []) + len(record.get('extra_endpoints') or []) > MAX_ENDPOINTS:
            raise WglanError('a record may carry at most %d endpoints' % MAX_ENDPOINTS)
        member = crypto.member_id(record['public_key'])
        seq = int(time.time() * 1000) if seq is None else seq
        # (its own time, its TTL and the key that signs it, sealed with it: a client drops it when it is
        # older than its TTL, and a service cannot pass another key's signature off as this member's)
        sealed = dict(record, discovery_issued=int(time.time()), discovery_ttl=ttl, discovery_signer=self.signer)
        data = self.box.seal(member, seq, sealed)
        body = dict(seq=seq, data=data, ttl=ttl, signer=self.signer,
                    sig=crypto.sign(self.signing, 'put', self.cluster, member, seq, ttl, data))
        # (a service that pins slots to certificates takes the write only with the CA's grant of this slot)
        body.update(certificates.slot_grant(record.get('certificate'), record['public_key']))
        return self._call('PUT', '/v1/clusters/%s/members/%s' % (self.cluster, member), body, auth=True)

    def delete(self, public_key, seq=None):
        """Remove the member's record (signed, with a sequence number newer than the record's)."""
        member = crypto.member_id(public_key)
        seq = int(time.time() * 1000) if seq is None else seq
        body = dict(seq=seq, signer=self.signer, sig=crypto.sign(self.signing, 'delete', self.cluster, member, seq, 0))
        return self._call('DELETE', '/v1/clusters/%s/members/%s' % (self.cluster, member), body, auth=True)

    def open_entries(self, entries, warn, seen=None):
        """Entries from the service -> Entry(member, seq, signer, NodeRecord), each record with the
        address the service saw its requests come from (public_ip). seen: {member: [seq, signer]} of
        what this node took before; a member signed by another key, or older than that, is dropped."""
        opened = []
        self.stale = set()  # members whose record here is older than one taken before (the caller keeps that)
        now = time.time()
        for entry in entries:
            if not isinstance(entry, dict):
                warn('discovery: record dropped: an entry of the listing is not an object')
                continue
            member = str(entry.get('member', ''))[:64]
            try:
                opened.append(self._open_entry(entry, member, (seen or {}).get(member), now))
            except Stale as exc:
                self.stale.add(member)
                warn('discovery: record of member %s at %s: %s' % (member[:12], self.url, exc))
            except (WglanError, ValueError, TypeError, OverflowError) as exc:
                warn('discovery: record of member %s dropped: %s' % (member[:12], exc))
        return opened

    def _open_entry(self, entry, member, pinned, now):
        seq, ttl, data = entry.get('seq'), entry.get('ttl'), entry.get('data')
        signer, sig = entry.get('signer'), entry.get('sig')
        for value in (seq, ttl):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise WglanError('seq and ttl must be whole numbers')
        if not all(isinstance(v, str) for v in (data, signer, sig)):
            raise WglanError('not signed')
        if not crypto.verify(signer, sig, 'put', self.cluster, member, seq, ttl, data):
            raise WglanError('the signature does not verify')
        if pinned and signer != pinned[1]:
            raise WglanError('signed by another key than the one this member signed with before')
        if pinned and seq < pinned[0]:
            raise Stale('sequence number %d is older than %d, already taken (a replay, or a service that missed '
                        'the newer one): not taken' % (seq, pinned[0]))
        raw = self.box.open(member, seq, data)
        if raw.get('discovery_signer') != signer:
            raise WglanError('sealed for another signing key than the one that signed it')
        issued, life = raw.get('discovery_issued'), raw.get('discovery_ttl')
        if not all(isinstance(v, int) and not isinstance(v, bool) for v in (issued, life)):
            raise WglanError('the record does not say when it was made')
        if issued + life < now:
            raise WglanError('the record is older than its TTL (%d s)' % life)
        raw['discovery_observed'] = entry.get('observed')
        record = parse_record(raw)
        if crypto.member_id(record.public_key) != member:
            raise WglanError('the record names another public key')
        return Entry(member, seq, signer, record, issued + life)

    def listing(self, warn, seen=None):
        """(version, [Entry]) of every member that checks out."""
        answer = self._call('GET', '/v1/clusters/%s/members' % self.cluster)
        return self._listing(answer, warn, 'members', seen)

    def fetch(self, warn, seen=None):
        """(version, records) of every member that checks out."""
        version, entries = self.listing(warn, seen)
        return version, [e.record for e in entries]

    def watch(self, since, warn, timeout=25):
        """Block until the cluster changes after since (or timeout). Returns the raw answer with opened records."""
        answer = self._call('GET', '/v1/clusters/%s/watch?since=%d&timeout=%d' % (self.cluster, since, timeout),
                            timeout=timeout + self.timeout)
        answer['version'], entries = self._listing(answer, warn, 'watch')
        answer['records'] = [e.record for e in entries]
        answer['member_ids'] = [e.get('member') for e in answer['members'] if isinstance(e, dict)]
        return answer


def remember(seen, entries):
    """seen ({member: [seq, signer, when its record expires]}) with the entries taken now, the oldest
    forgotten past MAX_SEEN."""
    seen = dict(seen or {})
    for entry in entries:
        seen[entry.member] = [entry.seq, entry.signer, entry.expires]
    if len(seen) > MAX_SEEN:
        seen = dict(sorted(seen.items(), key=lambda item: item[1][0])[-MAX_SEEN:])
    return seen


def valid_seen(raw):
    """What a state file says was seen, or {} (a file from an earlier version, or damaged)."""
    if not isinstance(raw, dict):
        return {}
    return dict((m, v) for m, v in raw.items() if isinstance(m, str) and isinstance(v, list) and len(v) == 3
                and isinstance(v[0], int) and isinstance(v[1], str) and isinstance(v[2], (int, float)))


class Outcome:
    """What the discovery services gave: the records (newest per member over every service reached,
    and saved ones for members they lack while a service is not answering; the saved ones when none
    was reached), what the first service that took this node's record
    saw it as, whether any was reached, the members seen, a report per service, and the key rotations
    the records announced (also those of records a newer one of the node replaced)."""

    __slots__ = ('records', 'published', 'reached', 'seen', 'services', 'announced')

    def __init__(self):
        self.records, self.published, self.reached, self.seen, self.services = [], None, False, {}, []
        self.announced = {}


def _ask(client, publish, ttl, seq, warn, seen):
    """One service: this node's record published (publish: None for none), then the listing read.
    (what it answered to the publish or None, [Entry])."""
    published = client.publish(publish, ttl=ttl, seq=seq) if publish is not None else None
    _version, entries = client.listing(warn, seen)
    return published, entries


def in_parallel(clients, call):
    """[(call(client), None) or (None, WglanError)] in the clients' order, every client asked at once: a
    slow or silent service costs the others nothing, and the whole at most one call's deadline."""
    def one(client):
        try:
            return call(client), None
        except WglanError as exc:
            return None, exc
    if len(clients) <= 1:
        return [one(client) for client in clients]
    with concurrent.futures.ThreadPoolExecutor(max_workers=min(len(clients), 8)) as pool:
        return list(pool.map(one, clients))


def from_discovery(clients, publish_record, ttl, saved, warn, check_mode, seen=None, admit=None):
    """Publish to every service and read every one. A service not reached costs nothing while
    another is (even one that restarted empty); when none is, the records saved from the last run
    stand in. admit (a mesh with certificates: model.certificates.admit) takes the records before one
    per name is chosen, so that a record for a name its certificate does not hold never hides the
    node's own."""
    if isinstance(clients, DiscoveryClient):
        clients = [clients]
    seen = valid_seen(seen)
    outcome = Outcome()
    newest = {}      # member -> Entry
    missed, stale = [], set()
    seq = int(time.time() * 1000)  # one sequence number for this record on every service
    publish = publish_record if publish_record and publish_record.get('public_key') and not check_mode else None
    answers = in_parallel(clients, lambda client: _ask(client, publish, ttl, seq, warn, seen))
    for client, (answer, error) in zip(clients, answers):
        report = dict(url=client.url, reached=False, records=0)
        outcome.services.append(report)
        if error is not None:
            missed.append(str(error))
            continue
        published, entries = answer
        if published is not None:
            report['observed'] = published.get('observed')
            if outcome.published is None:
                outcome.published = published
        stale |= client.stale
        report.update(reached=True, records=len(entries))
        outcome.reached = True
        for entry in entries:
            have = newest.get(entry.member)
            if have is None or entry.seq > have.seq:
                newest[entry.member] = entry
    outcome.seen = remember(seen, newest.values())
    records = [newest[m].record for m in sorted(newest)]
    # (the saved records are parsed only when something must stand in: not at every reconcile)
    kept = dict((crypto.member_id(r.public_key), r) for r in parse_known(saved, warn, 'discovery')) \
        if saved and (stale or missed) else {}
    # A member whose records here are all older than one taken before keeps the newer one, saved
    # (never the older: a service that missed a publish, or replays, does not take a node back).
    records.extend(kept[m] for m in sorted(stale) if m not in newest and m in kept)
    if missed and outcome.reached:
        # The services reached may lack records the others have (one restarted empty, and the nodes
        # have not published to it again yet): a saved record stands in for a member none of them
        # gave, until the record would have expired on the service that is not answering.
        now = time.time()
        stand_ins = [r for m, r in sorted(kept.items()) if m not in newest and m not in stale
                     and seen.get(m, (0, '', 0))[2] > now]
        records.extend(stand_ins)
        warn('%s; the other discovery services answered%s' % ('; '.join(missed), ', and %d saved records stand in for it'
                                                              % len(stand_ins) if stand_ins else ''))
    elif missed:
        warn('%s; keeping the %d records it gave last time' % ('; '.join(missed), len(saved or {})))
        records = list(kept.values())
    if admit is not None:
        records = admit(records)
    outcome.announced = source_merge.announced(records)
    outcome.records = newest_per_name(records, outcome.seen, warn)
    return outcome


def newest_per_name(records, seen, warn):
    """One record per node name, the newest (seen: {member: [seq, ...]}). A node that was reinstalled, or
    made a new key, publishes under a new member; its old record stays on the services until its TTL, and
    must not stand for it meanwhile. A record whose next key is the newer one's (a key rotation) goes
    without a word."""
    def seq(record):
        return (seen.get(crypto.member_id(record.public_key)) or [0])[0]
    best = {}
    for record in records:
        have = best.get(record.name)
        if have is None or seq(record) > seq(have):
            best[record.name] = record
    for record in records:
        newer = best[record.name]
        if newer is not record and (record.next_key is None or record.next_key[0] != newer.public_key):
            warn('discovery: node %s published a newer record with another key (%s); its record with key %s is not used'
                 % (record.name, newer.public_key, record.public_key))
    return [r for r in records if best[r.name] is r]
