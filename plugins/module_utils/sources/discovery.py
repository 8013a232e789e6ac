# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Client of the discovery service: publish this node's record, read the others'.

Records are sealed before they leave (discovery_crypto); what comes back is
opened and validated, and anything that does not authenticate is dropped with
a reason, never used.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import http.client
import json
import socket
import ssl
import time
from urllib.parse import urlsplit

from ansible_collections.wglan.mesh.plugins.module_utils.sources import discovery_crypto as crypto
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.host.underlay import marked_connection
from ansible_collections.wglan.mesh.plugins.module_utils.model.node_records import parse_known, parse_record

MAX_ENDPOINTS = 64  # per record; the server cannot count them, so the client refuses more
DEFAULT_TTL = 1800
TIMEOUT = 10
MAX_ANSWER = 8 * 1024 * 1024  # a full cluster's listing is about 3 MB; a server sending more is refused


class DiscoveryClient:
    def __init__(self, url, token, cluster=None, ca_file=None, timeout=TIMEOUT, mark=None):
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
        self.context = ssl.create_default_context(cafile=ca_file) if parts.scheme == 'https' else None
        self.mark = mark
        self.open = None  # the connection of the call under way (abort closes it)

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

    def _connection(self, timeout):
        if self.scheme == 'https':
            connection = http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self.context)
        else:
            connection = http.client.HTTPConnection(self.host, self.port, timeout=timeout)
        if self.mark:
            connection._create_connection = marked_connection(self.mark)
        return connection

    def _call(self, method, path, body=None, auth=False, timeout=None):
        headers = {'Content-Type': 'application/json'}
        headers['Authorization'] = 'Bearer ' + (self.write_key if auth else self.read_proof)
        data = json.dumps(body).encode('utf-8') if body is not None else None
        what = path.rsplit('/', 1)[-1].split('?')[0]
        connection = self.open = self._connection(timeout or self.timeout)
        try:
            connection.request(method, self.base + path, body=data, headers=headers)
            response = connection.getresponse()
            payload = response.read(MAX_ANSWER + 1)
        except (OSError, http.client.HTTPException, socket.timeout, ValueError) as exc:
            raise WglanError('discovery service at %s is unreachable: %s' % (self.url, exc))
        finally:
            self.open = None
            connection.close()
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

    def _listing(self, answer, warn, what):
        """(version, records) of a listing or watch answer, checked: a server that sends something else
        is an error naming it (the caller keeps what it had), never a crash."""
        version, members = answer.get('version', 0), answer.get('members', [])
        if isinstance(version, bool) or not isinstance(version, int) or version < 0:
            raise WglanError('discovery service at %s: %s: version %r is not a version' % (self.url, what, version))
        if not isinstance(members, list) or not all(isinstance(entry, dict) for entry in members):
            raise WglanError('discovery service at %s: %s: members is not a list of objects' % (self.url, what))
        return version, self.open_entries(members, warn)

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
        body = dict(seq=seq, data=self.box.seal(member, seq, record), ttl=ttl)
        return self._call('PUT', '/v1/clusters/%s/members/%s' % (self.cluster, member), body, auth=True)

    def delete(self, public_key):
        member = crypto.member_id(public_key)
        return self._call('DELETE', '/v1/clusters/%s/members/%s' % (self.cluster, member), auth=True)

    def open_entries(self, entries, warn):
        """Entries from the service -> NodeRecords (parsed once, here), each with the address the service
        saw its requests come from (public_ip)."""
        records = []
        for entry in entries:
            if not isinstance(entry, dict):
                warn('discovery: record dropped: an entry of the listing is not an object')
                continue
            member = str(entry.get('member', ''))
            try:
                raw = self.box.open(member, int(entry.get('seq', -1)), entry.get('data', ''))
                if isinstance(raw, dict):
                    raw['discovery_observed'] = entry.get('observed')
                record = parse_record(raw)
                if crypto.member_id(record.public_key) != member:
                    raise WglanError('record of member %s names another public key' % member[:12])
            except (WglanError, ValueError, TypeError, OverflowError) as exc:
                warn('discovery: record dropped: %s' % exc)
                continue
            records.append(record)
        return records

    def fetch(self, warn):
        """(version, records) of every member that authenticates."""
        answer = self._call('GET', '/v1/clusters/%s/members' % self.cluster)
        return self._listing(answer, warn, 'members')

    def watch(self, since, warn, timeout=25):
        """Block until the cluster changes after since (or timeout). Returns the raw answer with opened records."""
        answer = self._call('GET', '/v1/clusters/%s/watch?since=%d&timeout=%d' % (self.cluster, since, timeout),
                            timeout=timeout + self.timeout)
        answer['version'], answer['records'] = self._listing(answer, warn, 'watch')
        return answer


def from_discovery(client, publish_record, ttl, saved, warn, check_mode):
    """(NodeRecords, what publish answered or None, reached). Falls back to saved when unreachable."""
    published = None
    try:
        if publish_record and publish_record.get('public_key') and not check_mode:
            published = client.publish(publish_record, ttl=ttl)
        _version, records = client.fetch(warn)
        return records, published, True
    except WglanError as exc:
        warn('%s; keeping the %d records it gave last time' % (exc, len(saved or {})))
        return parse_known(saved, warn, 'discovery'), None, False
