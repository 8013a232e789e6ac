# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The wglan discovery service: a small, self-hostable rendezvous for node records.

    python3 -m ansible_collections.wglan.mesh.plugins.module_utils.discovery_server \\
        --listen 0.0.0.0:8443 --db /var/lib/wglan-discovery/records.db [--cert C --key K]

It stores sealed records (see discovery_crypto) per cluster and member, tells
each client the address it sees it at, forgets records whose TTL ran out, and
lets clients watch a cluster (long poll: a change is answered at once).

HTTP/JSON API (v1):
  GET    /v1/hello                                   -> {"observed": ip}
  PUT    /v1/clusters/<cluster>/members/<member>     Authorization: Bearer <write key>
         {"seq": n, "data": "<sealed>", "ttl": s}    -> {"observed", "version", "expires"}
  DELETE /v1/clusters/<cluster>/members/<member>     Authorization: Bearer <write key>
  GET    /v1/clusters/<cluster>/members              -> {"version", "members": [...]}
  GET    /v1/clusters/<cluster>/watch?since=V&timeout=T
         -> {"version", "reset", "members": [changed], "deleted": [member ids]}
Errors are {"error": "..."} with 400, 401, 403, 404, 409, 413 or 429.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import asyncio
import base64
import collections
import hashlib
import hmac
import json
import logging
import re
import signal
import sqlite3
import ssl
import time
from urllib.parse import parse_qs, urlsplit

LOG = logging.getLogger('wglan-discovery')
_CLUSTER_RE = re.compile(r'^[A-Za-z0-9._-]{1,128}$')
_MEMBER_RE = re.compile(r'^[0-9a-f]{64}$')
MAX_HEADER = 8192
MAX_BODY = 16384


class Limits:
    def __init__(self, members_per_cluster=1024, bytes_per_record=2048, rate=15.0, burst=60,
                 default_ttl=1800, max_ttl=3600, max_watch=60, changes_kept=4096):
        self.members_per_cluster = members_per_cluster
        self.bytes_per_record = bytes_per_record
        self.rate = rate
        self.burst = burst
        self.default_ttl = default_ttl
        self.max_ttl = max_ttl
        self.max_watch = max_watch
        self.changes_kept = changes_kept


class HttpError(Exception):
    def __init__(self, status, message, headers=None):
        Exception.__init__(self, message)
        self.status = status
        self.headers = headers or {}


class Cluster:
    __slots__ = ('verifier', 'members', 'version', 'changes', 'waiters')

    def __init__(self, verifier):
        self.verifier = verifier
        self.members = {}          # member -> dict(seq, data, observed, expires, version)
        # Versions are opaque to clients. Starting from the clock (ms) keeps them rising across a
        # restart of the service, so a watcher's `since` from before the restart is never taken
        # for a version of this run (see changes_since for one that is ahead).
        self.version = int(time.time() * 1000)
        self.changes = collections.deque()  # (version, member)
        self.waiters = set()


class Store:
    """Records in memory, written through to SQLite so a restart loses nothing."""

    def __init__(self, path, limits):
        self.limits = limits
        self.db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
        self.db.execute('PRAGMA journal_mode=WAL')
        self.db.execute('PRAGMA synchronous=NORMAL')
        self.db.execute('CREATE TABLE IF NOT EXISTS clusters (cluster TEXT PRIMARY KEY, verifier TEXT NOT NULL)')
        self.db.execute('CREATE TABLE IF NOT EXISTS members (cluster TEXT, member TEXT, seq INTEGER, data TEXT, '
                        'observed TEXT, expires REAL, PRIMARY KEY (cluster, member))')
        self.clusters = {}
        for cluster, verifier in self.db.execute('SELECT cluster, verifier FROM clusters'):
            self.clusters[cluster] = Cluster(verifier)
        now = time.time()
        for cluster, member, seq, data, observed, expires in self.db.execute('SELECT * FROM members'):
            if expires > now and cluster in self.clusters:
                c = self.clusters[cluster]
                c.version += 1
                c.members[member] = dict(seq=seq, data=data, observed=observed, expires=expires, version=c.version)

    def _authorize(self, cluster, write_key, create):
        presented = hashlib.sha256(write_key.encode('utf-8')).hexdigest()
        c = self.clusters.get(cluster)
        if c is None:
            if not create:
                raise HttpError(404, 'no such cluster')
            c = self.clusters[cluster] = Cluster(presented)
            self.db.execute('INSERT INTO clusters VALUES (?, ?)', (cluster, presented))
            return c
        if not hmac.compare_digest(c.verifier, presented):
            raise HttpError(403, 'write key does not match this cluster')
        return c

    def _changed(self, c, member):
        c.version += 1
        c.changes.append((c.version, member))
        while len(c.changes) > self.limits.changes_kept:
            c.changes.popleft()
        for waiter in list(c.waiters):
            if not waiter.done():
                waiter.set_result(True)
        return c.version

    def put(self, cluster, member, write_key, seq, data, ttl, observed):
        c = self._authorize(cluster, write_key, create=True)
        existing = c.members.get(member)
        if existing is None and len(c.members) >= self.limits.members_per_cluster:
            raise HttpError(403, 'cluster is full (%d members)' % self.limits.members_per_cluster)
        if existing is not None and seq <= existing['seq']:
            raise HttpError(409, 'stale sequence number %d (have %d)' % (seq, existing['seq']))
        expires = time.time() + ttl
        self.db.execute('INSERT OR REPLACE INTO members VALUES (?, ?, ?, ?, ?, ?)',
                        (cluster, member, seq, data, observed, expires))
        version = self._changed(c, member)
        c.members[member] = dict(seq=seq, data=data, observed=observed, expires=expires, version=version)
        return version, expires

    def delete(self, cluster, member, write_key):
        c = self._authorize(cluster, write_key, create=False)
        if member not in c.members:
            raise HttpError(404, 'no such member')
        del c.members[member]
        self.db.execute('DELETE FROM members WHERE cluster = ? AND member = ?', (cluster, member))
        return self._changed(c, member)

    def expire(self, now=None):
        now = time.time() if now is None else now
        for cluster, c in self.clusters.items():
            for member in [m for m, r in c.members.items() if r['expires'] <= now]:
                del c.members[member]
                self.db.execute('DELETE FROM members WHERE cluster = ? AND member = ?', (cluster, member))
                self._changed(c, member)

    @staticmethod
    def view(member, record):
        return dict(member=member, seq=record['seq'], data=record['data'], observed=record['observed'],
                    expires=int(record['expires']))

    def listing(self, cluster):
        c = self.clusters.get(cluster)
        if c is None:
            return dict(version=0, members=[])
        return dict(version=c.version, members=[self.view(m, r) for m, r in sorted(c.members.items())])

    def changes_since(self, cluster, since):
        """(answer, None) if there is something to say, else (None, cluster) to wait on."""
        c = self.clusters.get(cluster)
        if c is None:
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
        touched = set(m for v, m in c.changes if v > since)
        members = [self.view(m, c.members[m]) for m in sorted(touched) if m in c.members]
        deleted = sorted(m for m in touched if m not in c.members)
        return dict(version=c.version, reset=False, members=members, deleted=deleted), None


class RateLimiter:
    """Token bucket per client address."""

    def __init__(self, rate, burst):
        self.rate = rate
        self.burst = burst
        self.buckets = {}

    def allow(self, client, now=None):
        if self.rate <= 0:
            return True
        now = time.monotonic() if now is None else now
        tokens, last = self.buckets.get(client, (self.burst, now))
        tokens = min(self.burst, tokens + (now - last) * self.rate)
        if tokens < 1:
            self.buckets[client] = (tokens, now)
            return False
        self.buckets[client] = (tokens - 1, now)
        return True


class Server:
    def __init__(self, store, limits):
        self.store = store
        self.limits = limits
        self.limiter = RateLimiter(limits.rate, limits.burst)

    async def handle(self, reader, writer):
        peer = writer.get_extra_info('peername') or ('?', 0)
        client = peer[0]
        try:
            while True:
                try:
                    head = await reader.readuntil(b'\r\n\r\n')
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                except asyncio.LimitOverrunError:
                    await self._send(writer, 413, {'error': 'headers too large'}, close=True)
                    return
                keep_alive = await self._one(reader, writer, head, client)
                if not keep_alive:
                    return
        finally:
            try:
                writer.close()
            except Exception:  # pylint: disable=broad-except
                pass

    async def _one(self, reader, writer, head, client):
        try:
            lines = head.decode('latin-1').split('\r\n')
            method, target, version = lines[0].split(' ', 2)
            headers = {}
            for line in lines[1:]:
                if ':' in line:
                    key, value = line.split(':', 1)
                    headers[key.strip().lower()] = value.strip()
        except ValueError:
            await self._send(writer, 400, {'error': 'malformed request'}, close=True)
            return False
        keep_alive = version == 'HTTP/1.1' and headers.get('connection', '').lower() != 'close'
        length = headers.get('content-length', '0')
        if not length.isdigit() or int(length) > MAX_BODY:
            await self._send(writer, 413, {'error': 'body too large (limit %d bytes)' % MAX_BODY}, close=True)
            return False
        body = await reader.readexactly(int(length)) if int(length) else b''
        try:
            if not self.limiter.allow(client):
                raise HttpError(429, 'too many requests from %s (limit %g/s, burst %d)'
                                % (client, self.limits.rate, self.limits.burst), {'Retry-After': '1'})
            status, answer = await self._route(method, target, headers, body, client)
        except HttpError as exc:
            status, answer = exc.status, {'error': str(exc)}
            await self._send(writer, status, answer, close=not keep_alive, headers=exc.headers)
            return keep_alive
        await self._send(writer, status, answer, close=not keep_alive)
        return keep_alive

    async def _route(self, method, target, headers, body, client):
        url = urlsplit(target)
        parts = [p for p in url.path.split('/') if p]
        if parts == ['v1', 'hello'] and method == 'GET':
            return 200, {'observed': client}
        if parts == ['healthz']:
            return 200, {'ok': True}
        if len(parts) < 4 or parts[:2] != ['v1', 'clusters'] or not _CLUSTER_RE.match(parts[2]):
            raise HttpError(404, 'no such resource')
        cluster = parts[2]
        if parts[3] == 'members' and len(parts) == 4 and method == 'GET':
            return 200, self.store.listing(cluster)
        if parts[3] == 'watch' and len(parts) == 4 and method == 'GET':
            return 200, await self._watch(cluster, parse_qs(url.query))
        if parts[3] == 'members' and len(parts) == 5:
            member = parts[4]
            if not _MEMBER_RE.match(member):
                raise HttpError(400, 'member id must be 64 hex characters')
            auth = headers.get('authorization', '')
            if not auth.startswith('Bearer ') or len(auth) < 8:
                raise HttpError(401, 'a write key is required (Authorization: Bearer ...)')
            write_key = auth[7:]
            if method == 'PUT':
                return 200, self._put(cluster, member, write_key, body, client)
            if method == 'DELETE':
                return 200, {'version': self.store.delete(cluster, member, write_key)}
        raise HttpError(405 if parts[3] in ('members', 'watch') else 404, 'method not allowed here')

    def _put(self, cluster, member, write_key, body, client):
        try:
            doc = json.loads(body.decode('utf-8'))
            seq = doc['seq']
            data = doc['data']
            ttl = doc.get('ttl', self.limits.default_ttl)
        except (ValueError, KeyError, TypeError, AttributeError):
            raise HttpError(400, 'body must be JSON with seq, data and optional ttl')
        if isinstance(seq, bool) or not isinstance(seq, int) or seq < 0:
            raise HttpError(400, 'seq must be a non-negative integer')
        if isinstance(ttl, bool) or not isinstance(ttl, int) or not 1 <= ttl <= self.limits.max_ttl:
            raise HttpError(400, 'ttl must be 1-%d seconds' % self.limits.max_ttl)
        if not isinstance(data, str):
            raise HttpError(400, 'data must be a base64 string')
        try:
            size = len(base64.b64decode(data, validate=True))
        except (ValueError, TypeError):
            raise HttpError(400, 'data must be a base64 string')
        if size > self.limits.bytes_per_record:
            raise HttpError(413, 'record is %d bytes, the limit is %d' % (size, self.limits.bytes_per_record))
        version, expires = self.store.put(cluster, member, write_key, seq, data, ttl, client)
        return {'observed': client, 'version': version, 'expires': int(expires)}

    async def _watch(self, cluster, query):
        try:
            since = int(query.get('since', ['0'])[0])
            timeout = min(float(query.get('timeout', ['25'])[0]), self.limits.max_watch)
        except ValueError:
            raise HttpError(400, 'since and timeout must be numbers')
        deadline = time.monotonic() + max(timeout, 0)
        while True:
            answer, c = self.store.changes_since(cluster, since)
            if answer is not None:
                return answer
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return dict(version=since if c is None else c.version, reset=False, members=[], deleted=[])
            if c is None:
                await asyncio.sleep(min(remaining, 1.0))  # the cluster does not exist yet
                continue
            waiter = asyncio.get_running_loop().create_future()
            c.waiters.add(waiter)
            try:
                await asyncio.wait_for(waiter, remaining)
            except asyncio.TimeoutError:
                pass
            finally:
                c.waiters.discard(waiter)

    @staticmethod
    async def _send(writer, status, answer, close=False, headers=None):
        payload = json.dumps(answer, separators=(',', ':')).encode('utf-8')
        reason = {200: 'OK', 400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found',
                  405: 'Method Not Allowed', 409: 'Conflict', 413: 'Payload Too Large',
                  429: 'Too Many Requests'}.get(status, 'Error')
        extra = ''.join('%s: %s\r\n' % item for item in (headers or {}).items())
        writer.write(('HTTP/1.1 %d %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n%s%s\r\n'
                      % (status, reason, len(payload), extra, 'Connection: close\r\n' if close else ''))
                     .encode('latin-1') + payload)
        try:
            await writer.drain()
        except ConnectionError:
            pass


async def serve(host, port, db_path, limits, certfile=None, keyfile=None, ready=None, expire_every=5.0):
    store = Store(db_path, limits)
    server = Server(store, limits)
    context = None
    if certfile:
        context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        context.load_cert_chain(certfile, keyfile)
    listener = await asyncio.start_server(server.handle, host, port, ssl=context, limit=MAX_HEADER,
                                          backlog=1024)
    LOG.info('listening on %s:%d (%s), %d clusters loaded', host, port, 'TLS' if context else 'plain HTTP',
             len(store.clusters))
    if ready is not None:
        ready()
    stop = asyncio.get_running_loop().create_future()
    for sig in (signal.SIGTERM, signal.SIGINT):
        asyncio.get_running_loop().add_signal_handler(sig, lambda: stop.done() or stop.set_result(True))

    async def expire_loop():
        while True:
            await asyncio.sleep(expire_every)
            store.expire()

    expiry = asyncio.ensure_future(expire_loop())
    async with listener:
        await stop
    expiry.cancel()
    store.db.close()


def main(argv=None):
    parser = argparse.ArgumentParser(description='wglan discovery service')
    parser.add_argument('--listen', default='0.0.0.0:8443', help='address:port (IPv6 in brackets)')
    parser.add_argument('--db', default='/var/lib/wglan-discovery/records.db')
    parser.add_argument('--cert')
    parser.add_argument('--key')
    parser.add_argument('--members-per-cluster', type=int, default=1024)
    parser.add_argument('--bytes-per-record', type=int, default=2048)
    parser.add_argument('--rate', type=float, default=15.0, help='requests per second per client (0: no limit)')
    parser.add_argument('--burst', type=int, default=60)
    parser.add_argument('--expire-every', type=float, default=5.0, help='seconds between expiry sweeps')
    args = parser.parse_args(argv)
    host, _sep, port = args.listen.rpartition(':')
    logging.basicConfig(level=logging.INFO, format='%(levelname)s %(message)s')
    limits = Limits(args.members_per_cluster, args.bytes_per_record, args.rate, args.burst)
    asyncio.run(serve(host.strip('[]'), int(port), args.db, limits, args.cert, args.key,
                      expire_every=args.expire_every))


if __name__ == '__main__':
    main()
