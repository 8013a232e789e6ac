# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""A TEST DOUBLE of the Kubernetes API server: the Node API subset wglan.mesh uses. Not for production.

No kube-apiserver can be installed on the test machines, so the tests run this
instead, and prove that it behaves like the real one for what we use by driving
it with the real kubectl (tests/integration/test_kube_apiserver_double.py).

What it implements, for core/v1 Node only (cluster-scoped):
  - discovery: /version, /api, /api/v1, /apis (legacy, non-aggregated documents)
  - list (resourceVersion of the list, fieldSelector metadata.name=, labelSelector k=v[,k=v])
  - watch (?watch=true): with no or "0" resourceVersion, synthetic ADDED events for what
    exists, then changes; from a resourceVersion, the events after it, or one ERROR event
    with a 410 Expired Status when the history no longer reaches back that far;
    BOOKMARK events when allowWatchBookmarks=true; timeoutSeconds
  - get, create (POST), update (PUT, resourceVersion precondition -> 409), delete
  - patch: application/merge-patch+json (RFC 7386), application/strategic-merge-patch+json
    (maps merge as in a merge patch, lists are replaced: enough for metadata and
    annotations; $patch directives are refused with 400), application/json-patch+json
    (RFC 6902 add/remove/replace/test); a resourceVersion in the patched object that is not the
    current one is a 409 Conflict; a patch that changes nothing does not bump the version
  - server-side printing (Table) for get/list, as kubectl asks for it
  - a bearer token (401 without it), optional TLS
What it does not: other kinds, namespaces, admission, RBAC evaluation (it records
the verbs each request needed at /_test/audit so tests can check the shipped RBAC
manifest covers them), protobuf, HTTP/2, server-side apply.

Test-only endpoints: GET /_test/audit, POST /_test/compact (forget the event
history, so older resourceVersions get 410).
Run: python3 tests/kube_apiserver.py --listen 192.0.2.1:6443 [--token T] [--cert C --key K]
"""

import argparse
import collections
import copy
import datetime
import json
import ssl
import threading
import time
import uuid
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

NODE_RESOURCE = {
    'name': 'nodes', 'singularName': 'node', 'namespaced': False, 'kind': 'Node',
    'verbs': ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch'], 'shortNames': ['no'],
}
MAX_WATCH_SECONDS = 600


class ApiError(Exception):
    def __init__(self, code, reason, message):
        Exception.__init__(self, message)
        self.code, self.reason, self.message = code, reason, message

    def status(self):
        return {'kind': 'Status', 'apiVersion': 'v1', 'metadata': {}, 'status': 'Failure',
                'message': self.message, 'reason': self.reason, 'code': self.code}


def now():
    return datetime.datetime.now(datetime.timezone.utc).strftime('%Y-%m-%dT%H:%M:%SZ')


def merge_patch(target, patch):
    """RFC 7386."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def has_directive(patch):
    if isinstance(patch, dict):
        return any(k.startswith('$') for k in patch) or any(has_directive(v) for v in patch.values())
    if isinstance(patch, list):
        return any(has_directive(v) for v in patch)
    return False


def pointer(path):
    if path == '':
        return []
    if not path.startswith('/'):
        raise ApiError(422, 'Invalid', 'json patch path %r must start with /' % path)
    return [p.replace('~1', '/').replace('~0', '~') for p in path[1:].split('/')]


def json_patch(target, ops):
    """RFC 6902: add, remove, replace, test."""
    doc = copy.deepcopy(target)
    if not isinstance(ops, list):
        raise ApiError(400, 'BadRequest', 'a json patch must be a list of operations')
    for op in ops:
        if not isinstance(op, dict) or 'op' not in op or 'path' not in op:
            raise ApiError(400, 'BadRequest', 'json patch operation %r is missing op or path' % (op,))
        parts = pointer(op['path'])
        if not parts:
            raise ApiError(422, 'Invalid', 'json patch on the whole object is not supported')
        parent = doc
        for part in parts[:-1]:
            if isinstance(parent, dict) and part in parent:
                parent = parent[part]
            elif isinstance(parent, list) and part.isdigit() and int(part) < len(parent):
                parent = parent[int(part)]
            else:
                raise ApiError(422, 'Invalid', 'json patch path %s does not exist' % op['path'])
        last = parts[-1]
        kind = op['op']
        if kind == 'test':
            current = parent.get(last) if isinstance(parent, dict) else (
                parent[int(last)] if last.isdigit() and int(last) < len(parent) else None)
            if current != op.get('value'):
                raise ApiError(422, 'Invalid', 'json patch test failed at %s' % op['path'])
        elif kind in ('add', 'replace'):
            if isinstance(parent, dict):
                if kind == 'replace' and last not in parent:
                    raise ApiError(422, 'Invalid', 'json patch replace: %s does not exist' % op['path'])
                parent[last] = op.get('value')
            elif last == '-' and kind == 'add':
                parent.append(op.get('value'))
            elif last.isdigit() and int(last) <= len(parent):
                if kind == 'add':
                    parent.insert(int(last), op.get('value'))
                else:
                    parent[int(last)] = op.get('value')
            else:
                raise ApiError(422, 'Invalid', 'json patch path %s does not exist' % op['path'])
        elif kind == 'remove':
            if isinstance(parent, dict) and last in parent:
                del parent[last]
            elif isinstance(parent, list) and last.isdigit() and int(last) < len(parent):
                del parent[int(last)]
            else:
                raise ApiError(422, 'Invalid', 'json patch remove: %s does not exist' % op['path'])
        else:
            raise ApiError(422, 'Invalid', 'json patch operation %r is not supported by the test double' % kind)
    return doc


def field_match(node, selector):
    for term in [t for t in (selector or '').split(',') if t]:
        key, _sep, value = term.partition('=')
        value = value.lstrip('=')
        if key.endswith('!'):
            raise ApiError(400, 'BadRequest', 'only = field selectors are supported by the test double')
        if key == 'metadata.name':
            if node['metadata']['name'] != value:
                return False
        else:
            raise ApiError(400, 'BadRequest', 'field label not supported: %s' % key)
    return True


def label_match(node, selector):
    labels = node['metadata'].get('labels') or {}
    for term in [t for t in (selector or '').split(',') if t]:
        if '=' not in term:
            if term not in labels:
                return False
            continue
        key, _sep, value = term.partition('=')
        if key.endswith('!'):
            if labels.get(key[:-1]) == value.lstrip('='):
                return False
        elif labels.get(key) != value.lstrip('='):
            return False
    return True


def age(timestamp):
    try:
        then = datetime.datetime.strptime(timestamp, '%Y-%m-%dT%H:%M:%SZ').replace(tzinfo=datetime.timezone.utc)
    except (TypeError, ValueError):
        return '<unknown>'
    seconds = int((datetime.datetime.now(datetime.timezone.utc) - then).total_seconds())
    for unit, size in (('d', 86400), ('h', 3600), ('m', 60)):
        if seconds >= 2 * size:
            return '%d%s' % (seconds // size, unit)
    return '%ds' % max(seconds, 0)


def table(nodes, list_rv):
    rows = []
    for node in nodes:
        conditions = (node.get('status') or {}).get('conditions') or []
        ready = [c for c in conditions if c.get('type') == 'Ready']
        status = 'Ready' if ready and ready[0].get('status') == 'True' else ('NotReady' if ready else 'Unknown')
        meta = node['metadata']
        rows.append({'cells': [meta['name'], status, '<none>', age(meta.get('creationTimestamp')),
                               ((node.get('status') or {}).get('nodeInfo') or {}).get('kubeletVersion', '')],
                     'object': {'kind': 'PartialObjectMetadata', 'apiVersion': 'meta.k8s.io/v1', 'metadata': meta}})
    columns = [{'name': n, 'type': 'string', 'format': 'name' if n == 'Name' else '', 'description': n, 'priority': 0}
               for n in ('Name', 'Status', 'Roles', 'Age', 'Version')]
    return {'kind': 'Table', 'apiVersion': 'meta.k8s.io/v1', 'metadata': {'resourceVersion': str(list_rv)},
            'columnDefinitions': columns, 'rows': rows}


class Store:
    """Nodes, a global resourceVersion and a bounded event history, under one lock."""

    def __init__(self, history=1000):
        self.lock = threading.Condition()
        self.nodes = {}
        self.rv = 1
        self.events = collections.deque(maxlen=history)
        self.oldest = 1  # events after this resourceVersion are all still in history
        self.audit = []

    def _emit(self, kind, node):
        self.events.append((self.rv, kind, copy.deepcopy(node)))
        if len(self.events) == self.events.maxlen:
            self.oldest = self.events[0][0] - 1
        self.lock.notify_all()

    def create(self, body):
        with self.lock:
            if not isinstance(body, dict) or not (body.get('metadata') or {}).get('name'):
                raise ApiError(422, 'Invalid', 'Node is invalid: metadata.name: Required value')
            name = body['metadata']['name']
            if name in self.nodes:
                raise ApiError(409, 'AlreadyExists', 'nodes "%s" already exists' % name)
            node = copy.deepcopy(body)
            node['kind'], node['apiVersion'] = 'Node', 'v1'
            self.rv += 1
            node['metadata'].update(uid=str(uuid.uuid4()), creationTimestamp=now(), resourceVersion=str(self.rv))
            node.setdefault('spec', {})
            node.setdefault('status', {})
            self.nodes[name] = node
            self._emit('ADDED', node)
            return copy.deepcopy(node)

    def get(self, name):
        with self.lock:
            if name not in self.nodes:
                raise ApiError(404, 'NotFound', 'nodes "%s" not found' % name)
            return copy.deepcopy(self.nodes[name])

    def replace(self, name, new, precondition):
        """Store new as the node, checking a resourceVersion precondition; no-op writes change nothing."""
        with self.lock:
            if name not in self.nodes:
                raise ApiError(404, 'NotFound', 'nodes "%s" not found' % name)
            old = self.nodes[name]
            if precondition is not None and precondition != old['metadata']['resourceVersion']:
                raise ApiError(409, 'Conflict', 'Operation cannot be fulfilled on nodes "%s": the object has been '
                               'modified; please apply your changes to the latest version and try again' % name)
            if not isinstance(new, dict) or not isinstance(new.get('metadata'), dict):
                raise ApiError(422, 'Invalid', 'Node "%s" is invalid: metadata is required' % name)
            if new['metadata'].get('name') != name:
                raise ApiError(400, 'BadRequest', 'the name of the object (%s) does not match the name on the URL (%s)'
                               % (new['metadata'].get('name'), name))
            annotations = new['metadata'].get('annotations') or {}
            if not isinstance(annotations, dict) or not all(isinstance(v, str) for v in annotations.values()):
                raise ApiError(400, 'BadRequest', 'metadata.annotations must map strings to strings')
            for key in ('uid', 'creationTimestamp'):
                new['metadata'][key] = old['metadata'][key]
            new['metadata']['resourceVersion'] = old['metadata']['resourceVersion']
            new['kind'], new['apiVersion'] = 'Node', 'v1'
            if new == old:
                return copy.deepcopy(old)
            self.rv += 1
            new['metadata']['resourceVersion'] = str(self.rv)
            self.nodes[name] = new
            self._emit('MODIFIED', new)
            return copy.deepcopy(new)

    def delete(self, name):
        with self.lock:
            if name not in self.nodes:
                raise ApiError(404, 'NotFound', 'nodes "%s" not found' % name)
            node = self.nodes.pop(name)
            self.rv += 1
            node['metadata']['resourceVersion'] = str(self.rv)
            self._emit('DELETED', node)
            return node

    def compact(self):
        with self.lock:
            self.events.clear()
            self.oldest = self.rv


class Handler(BaseHTTPRequestHandler):
    protocol_version = 'HTTP/1.1'
    server_version = 'wglan-kube-apiserver-test-double'

    def log_message(self, fmt, *args):  # quiet; the audit log says what happened
        return

    @property
    def store(self):
        return self.server.store

    def _send(self, code, body, content_type='application/json'):
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header('Content-Type', content_type)
        self.send_header('Content-Length', str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _body(self):
        try:
            return json.loads(self.raw_body.decode() or 'null')
        except ValueError:
            raise ApiError(400, 'BadRequest', 'the request body is not JSON')

    def _handle(self, method):
        length = int(self.headers.get('Content-Length') or 0)
        self.raw_body = self.rfile.read(length) if length else b''  # always read, so the connection stays usable
        parts = urlsplit(self.path)
        query = dict((k, v[-1]) for k, v in parse_qs(parts.query).items())
        path = parts.path.rstrip('/')
        try:
            if path.startswith('/_test/'):
                return self._test_endpoint(method, path)
            token = self.server.token
            if token and self.headers.get('Authorization') != 'Bearer ' + token:
                raise ApiError(401, 'Unauthorized', 'Unauthorized')
            if method == 'GET' and path in ('/version', '/api', '/apis', '/api/v1'):
                return self._send(200, self._discovery(path))
            if path == '/api/v1/nodes':
                if method == 'GET':
                    return self._collection(query)
                if method == 'POST':
                    self._audit('create', None)
                    return self._send(201, self.store.create(self._body()))
            elif path.startswith('/api/v1/nodes/') and path.count('/') == 4:
                return self._item(method, path.rsplit('/', 1)[1], query)
            raise ApiError(404, 'NotFound', 'the server could not find the requested resource')
        except ApiError as exc:
            return self._send(exc.code, exc.status())

    def _audit(self, verb, name):
        with self.store.lock:
            self.store.audit.append({'verb': verb, 'resource': 'nodes', 'name': name,
                                     'userAgent': self.headers.get('User-Agent', '')})

    def _test_endpoint(self, method, path):
        if method == 'GET' and path == '/_test/audit':
            with self.store.lock:
                return self._send(200, list(self.store.audit))
        if method == 'POST' and path == '/_test/compact':
            self.store.compact()
            return self._send(200, {'compactedTo': str(self.store.rv)})
        raise ApiError(404, 'NotFound', 'no such test endpoint')

    @staticmethod
    def _discovery(path):
        if path == '/version':
            return {'major': '1', 'minor': '30', 'gitVersion': 'v1.30.0-wglan-test-double', 'platform': 'linux/amd64'}
        if path == '/api':
            return {'kind': 'APIVersions', 'versions': ['v1'],
                    'serverAddressByClientCIDRs': [{'clientCIDR': '0.0.0.0/0', 'serverAddress': ''}]}
        if path == '/apis':
            return {'kind': 'APIGroupList', 'apiVersion': 'v1', 'groups': []}
        return {'kind': 'APIResourceList', 'apiVersion': 'v1', 'groupVersion': 'v1', 'resources': [NODE_RESOURCE]}

    def _wants_table(self):
        return 'as=Table' in (self.headers.get('Accept') or '')

    def _collection(self, query):
        watching = query.get('watch') in ('true', '1')
        self._audit('watch' if watching else 'list', None)
        if watching:
            return self._watch(query)
        with self.store.lock:
            nodes = [copy.deepcopy(n) for _k, n in sorted(self.store.nodes.items())
                     if field_match(n, query.get('fieldSelector')) and label_match(n, query.get('labelSelector'))]
            rv = self.store.rv
        if self._wants_table():
            return self._send(200, table(nodes, rv), 'application/json')
        return self._send(200, {'kind': 'NodeList', 'apiVersion': 'v1', 'metadata': {'resourceVersion': str(rv)},
                                'items': nodes})

    def _item(self, method, name, query):
        store = self.store
        if method == 'GET':
            self._audit('get', name)
            node = store.get(name)
            return self._send(200, table([node], node['metadata']['resourceVersion']) if self._wants_table() else node)
        if method == 'DELETE':
            self._audit('delete', name)
            store.delete(name)
            return self._send(200, {'kind': 'Status', 'apiVersion': 'v1', 'metadata': {}, 'status': 'Success',
                                    'details': {'name': name, 'kind': 'nodes'}})
        if method == 'PUT':
            self._audit('update', name)
            body = self._body()
            if not isinstance(body, dict) or not (body.get('metadata') or {}).get('resourceVersion'):
                raise ApiError(422, 'Invalid', 'Node "%s" is invalid: metadata.resourceVersion: Invalid value: '
                               '0x0: must be specified for an update' % name)
            return self._send(200, store.replace(name, body, body['metadata']['resourceVersion']))
        if method == 'PATCH':
            self._audit('patch', name)
            kind = (self.headers.get('Content-Type') or '').split(';')[0].strip()
            patch = self._body()
            with store.lock:
                current = store.get(name)
                if kind == 'application/merge-patch+json':
                    new = merge_patch(current, patch)
                elif kind == 'application/strategic-merge-patch+json':
                    if has_directive(patch):
                        raise ApiError(400, 'BadRequest', 'strategic merge patch directives ($patch, ...) are not '
                                       'supported by the test double')
                    new = merge_patch(current, patch)
                elif kind == 'application/json-patch+json':
                    new = json_patch(current, patch)
                else:
                    raise ApiError(415, 'UnsupportedMediaType', 'the body of the request was in an unknown format - '
                                   'accepted media types include: application/json-patch+json, '
                                   'application/merge-patch+json, application/strategic-merge-patch+json')
                wanted = (new.get('metadata') or {}).get('resourceVersion') if isinstance(new, dict) else None
                precondition = wanted if wanted != current['metadata']['resourceVersion'] else None
                return self._send(200, store.replace(name, new, precondition))
        raise ApiError(405, 'MethodNotAllowed', 'method %s is not allowed on a node' % method)

    def _watch(self, query):
        store = self.store
        timeout = min(float(query.get('timeoutSeconds') or MAX_WATCH_SECONDS), MAX_WATCH_SECONDS)
        bookmarks = query.get('allowWatchBookmarks') in ('true', '1')
        since = query.get('resourceVersion') or '0'
        if not since.isdigit():
            raise ApiError(400, 'BadRequest', 'resourceVersion %r is not valid' % since)
        fields, labels = query.get('fieldSelector'), query.get('labelSelector')
        self.send_response(200)
        self.send_header('Content-Type', 'application/json')
        self.send_header('Transfer-Encoding', 'chunked')
        self.end_headers()
        deadline = time.monotonic() + timeout
        last_bookmark = time.monotonic()
        with store.lock:
            if since == '0':
                pending = [('ADDED', copy.deepcopy(n)) for _k, n in sorted(store.nodes.items())]
                position = store.rv
            elif int(since) < store.oldest:
                expired = ApiError(410, 'Expired', 'too old resource version: %s (%d)' % (since, store.oldest + 1))
                pending, position = [('ERROR', expired.status())], None
            else:
                pending, position = [], int(since)
        try:
            while True:
                for kind, obj in pending:
                    if kind in ('ERROR', 'BOOKMARK') or (field_match(obj, fields) and label_match(obj, labels)):
                        self._chunk({'type': kind, 'object': obj})
                if position is None or time.monotonic() >= deadline:
                    break
                with store.lock:
                    if store.rv <= position:
                        store.lock.wait(min(0.5, max(0.0, deadline - time.monotonic())))
                    if position < store.oldest:
                        expired = ApiError(410, 'Expired', 'too old resource version: %d (%d)'
                                           % (position, store.oldest + 1))
                        pending, position = [('ERROR', expired.status())], None
                        continue
                    pending = [(kind, obj) for rv, kind, obj in store.events if rv > position]
                    position = store.rv
                if bookmarks and not pending and time.monotonic() - last_bookmark >= self.server.bookmark_every:
                    last_bookmark = time.monotonic()
                    pending = [('BOOKMARK', {'kind': 'Node', 'apiVersion': 'v1',
                                             'metadata': {'resourceVersion': str(position)}})]
            self.wfile.write(b'0\r\n\r\n')
        except (BrokenPipeError, ConnectionResetError, ssl.SSLError):
            pass
        self.close_connection = True
        return None

    def _chunk(self, event):
        data = json.dumps(event).encode() + b'\n'
        self.wfile.write(b'%x\r\n%s\r\n' % (len(data), data))
        self.wfile.flush()

    def do_GET(self):  # noqa: N802 (the name BaseHTTPRequestHandler calls)
        self._handle('GET')

    def do_POST(self):  # noqa: N802
        self._handle('POST')

    def do_PUT(self):  # noqa: N802
        self._handle('PUT')

    def do_PATCH(self):  # noqa: N802
        self._handle('PATCH')

    def do_DELETE(self):  # noqa: N802
        self._handle('DELETE')


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, token=None, cert=None, key=None, history=1000, bookmark_every=1.0):
        ThreadingHTTPServer.__init__(self, address, Handler)
        self.store = Store(history)
        self.token = token
        self.bookmark_every = bookmark_every
        if cert:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(cert, key)
            self.socket = context.wrap_socket(self.socket, server_side=True)


def write_certificates(directory, ip_address):
    """A CA and a server certificate for ip_address signed by it: ca.crt, server.crt, server.key."""
    import ipaddress
    import os
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    start = datetime.datetime.now(datetime.timezone.utc) - datetime.timedelta(hours=1)
    end = start + datetime.timedelta(days=2)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'wglan test double CA')])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(x509.random_serial_number()).not_valid_before(start).not_valid_after(end)
          .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
          .sign(ca_key, hashes.SHA256()))
    server = (x509.CertificateBuilder()
              .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, 'kube-apiserver-test-double')]))
              .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(start).not_valid_after(end)
              .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address(ip_address))]),
                             critical=False)
              .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
              .sign(ca_key, hashes.SHA256()))
    paths = dict((name, os.path.join(directory, name)) for name in ('ca.crt', 'server.crt', 'server.key'))
    with open(paths['ca.crt'], 'wb') as handle:
        handle.write(ca.public_bytes(serialization.Encoding.PEM))
    with open(paths['server.crt'], 'wb') as handle:
        handle.write(server.public_bytes(serialization.Encoding.PEM))
    with open(paths['server.key'], 'wb') as handle:
        handle.write(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                       serialization.NoEncryption()))
    return paths


def kubeconfig(server_url, ca_file, token, embed=False):
    """A kubeconfig (as a dict; JSON is valid YAML) for the double; embed puts the CA in it."""
    import base64
    cluster = {'server': server_url, 'certificate-authority': ca_file}
    if embed:
        with open(ca_file, 'rb') as handle:
            cluster = {'server': server_url, 'certificate-authority-data': base64.b64encode(handle.read()).decode()}
    return {'apiVersion': 'v1', 'kind': 'Config', 'current-context': 'lab',
            'clusters': [{'name': 'lab', 'cluster': cluster}],
            'users': [{'name': 'node', 'user': {'token': token}}],
            'contexts': [{'name': 'lab', 'context': {'cluster': 'lab', 'user': 'node'}}]}


def main():
    parser = argparse.ArgumentParser(description='Kubernetes API server TEST DOUBLE (Node subset)')
    parser.add_argument('--listen', default='127.0.0.1:6443')
    parser.add_argument('--token')
    parser.add_argument('--token-file')
    parser.add_argument('--cert')
    parser.add_argument('--key')
    parser.add_argument('--history', type=int, default=1000)
    parser.add_argument('--bookmark-every', type=float, default=1.0)
    parser.add_argument('--nodes', help='JSON file with Node objects to create at start')
    args = parser.parse_args()
    host, _sep, port = args.listen.rpartition(':')
    token = args.token
    if args.token_file:
        with open(args.token_file) as handle:
            token = handle.read().strip()
    server = Server((host.strip('[]'), int(port)), token, args.cert, args.key, args.history, args.bookmark_every)
    if args.nodes:
        with open(args.nodes) as handle:
            for node in json.load(handle):
                server.store.create(node)
    print('kube-apiserver test double listening on %s' % args.listen, flush=True)
    server.serve_forever()


if __name__ == '__main__':
    main()
