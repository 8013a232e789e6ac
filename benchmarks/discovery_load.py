"""Load on one discovery server: registering, refreshing and watching nodes.

For N simulated nodes (100 per cluster, each node with its own source address
in 127.0.0.0/8 so the per-client rate limit applies as in real life), inside a
network namespace this script makes:
- register: every node PUTs its sealed record (200 requests in flight);
- refresh: every node PUTs again with the next sequence number;
- propagation: every node holds a watch on its cluster; one node per cluster
  publishes; the delay from that PUT to each watcher's answer;
- memory: the server's RSS growth per stored record;
- floor: a plain HTTP round trip (GET /healthz) to the same server;
- abuse: a normal client's latency (its cluster's listing, then a refresh of its record) with
  nothing else going on, then while 1000 slowloris connections (each from its own address,
  reopened as the server cuts them off), 100 unread listings of a full cluster (1024 records
  of 2000 bytes, from 10 addresses) and a flood of requests from one IPv6 /64 are under way;
  and the server's peak memory meanwhile.
The server runs pinned to one core (taskset), the clients on the others.
Memory per record: the server's RSS growth over its start, divided by all the
records it holds (sizes run one after another on the same server).
Usage (root): python3 benchmarks/discovery_load.py [--sizes 100,1000,5000] [--abuse-seconds 20]
    [--server PATH]  (another version of the server, e.g. git show v0.5.0:roles/discovery/files/...)
"""
import argparse
import asyncio
import base64
import hashlib
import json
import os
import random
import resource
import shutil
import socket
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'tests'))
# makes ansible_collections.wglan.mesh importable
import collection  # noqa: E402,F401  pylint: disable=unused-import

from ansible_collections.wglan.mesh.plugins.module_utils.sources import discovery_crypto as crypto  # noqa: E402

NS = os.environ.get('WGLAN_BENCH_NS') or 'wglan-dload-%s' % uuid.uuid4().hex[:6]
PORT = 8443
PER_CLUSTER = 100
IN_FLIGHT = 200
SIX = 'fd77:1:2:3'  # the flood's /64, local on the namespace's lo


def pct(samples, q):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def source(i):
    return '127.%d.%d.%d' % (1 + i // 65025, (i // 255) % 255, 1 + i % 255)


def bound_socket(local):
    """A socket from local (any address of the flood's /64: IP_FREEBIND, the /64 is routed to lo)."""
    family = socket.AF_INET6 if ':' in local else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_IP, 15, 1)  # IP_FREEBIND
    sock.setblocking(False)
    sock.bind((local, 0))
    return sock


async def request(method, path, body=None, headers=None, local=None):
    """One HTTP/1.1 request on a fresh connection (as the module's client does)."""
    if local and ':' in local:
        sock = bound_socket(local)
        await asyncio.get_running_loop().sock_connect(sock, ('::1', PORT))
        reader, writer = await asyncio.open_connection(sock=sock)
    else:
        reader, writer = await asyncio.open_connection('127.0.0.1', PORT, local_addr=(local, 0) if local else None)
    payload = json.dumps(body).encode() if body is not None else b''
    head = '%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n' % (method, path, len(payload))
    for key, value in (headers or {}).items():
        head += '%s: %s\r\n' % (key, value)
    writer.write(head.encode() + b'\r\n' + payload)
    await writer.drain()
    data = await reader.read()
    writer.close()
    if not data:
        return 0, {}
    status = int(data.split(b' ', 2)[1])
    try:
        return status, json.loads(data.split(b'\r\n\r\n', 1)[1] or b'{}')
    except ValueError:
        return status, {}


class Node:
    def __init__(self, i, token):
        self.i = i
        self.local = source(i)
        self.token = token
        self.cluster = crypto.cluster_id(token)
        self.member = '%064x' % (i + 1)
        self.auth = {'Authorization': 'Bearer ' + crypto.write_key(token)}
        self.read = {'Authorization': 'Bearer ' + hashlib.sha256(crypto.write_key(token).encode()).hexdigest()}
        self.signing = crypto.signing_key()

    def body(self, box, seq):
        record = dict(version=1, name='n%d' % self.i, public_key='A' * 43 + '=', address='200:1001::%x' % self.i,
                      node_ips=['192.0.2.%d/24' % (1 + self.i % 250)], port=51820, observed={})
        return self.signed(box.seal(self.member, seq, record), seq)

    def signed(self, data, seq, ttl=1800):
        """A write as the node signs it (the service checks the signature: part of what it costs)."""
        return dict(seq=seq, data=data, ttl=ttl, signer=crypto.public_signer(self.signing),
                    sig=crypto.sign(self.signing, 'put', self.cluster, self.member, seq, ttl, data))


async def timed_all(coros):
    latencies = []
    gate = asyncio.Semaphore(IN_FLIGHT)

    async def one(coro):
        async with gate:
            start = time.monotonic()
            status, _answer = await coro
            latencies.append(time.monotonic() - start)
            if status != 200:
                raise RuntimeError('HTTP %d' % status)
    start = time.monotonic()
    await asyncio.gather(*(one(c) for c in coros))
    return latencies, time.monotonic() - start


def rss_kib(pid):
    with open('/proc/%d/status' % pid) as handle:
        for line in handle:
            if line.startswith('VmRSS:'):
                return int(line.split()[1])
    return 0


async def run_size(n, server_pid, baseline_kib, stored_before):
    clusters = max(1, n // PER_CLUSTER)
    tokens = ['bench-token-%d-%d' % (n, c) for c in range(clusters)]
    boxes = dict((t, crypto.RecordBox(t)) for t in tokens)
    nodes = [Node(i, tokens[i % clusters]) for i in range(n)]
    bodies = [node.body(boxes[node.token], 1) for node in nodes]
    refresh = [node.body(boxes[node.token], 2) for node in nodes]
    floor = []
    for i in range(200):  # (each from its own address: under the rate limit)
        start = time.monotonic()
        await request('GET', '/healthz', local=source(n + 1 + i))
        floor.append(time.monotonic() - start)
    reg, reg_wall = await timed_all(request('PUT', '/v1/clusters/%s/members/%s' % (nd.cluster, nd.member), b,
                                            nd.auth, nd.local) for nd, b in zip(nodes, bodies))
    rss_after = rss_kib(server_pid)
    ref, ref_wall = await timed_all(request('PUT', '/v1/clusters/%s/members/%s' % (nd.cluster, nd.member), b,
                                            nd.auth, nd.local) for nd, b in zip(nodes, refresh))
    # every node watches its cluster from the current version
    versions = {}
    for token in tokens:
        _status, listing = await request('GET', '/v1/clusters/%s/members' % crypto.cluster_id(token),
                                         headers=Node(0, token).read)
        versions[crypto.cluster_id(token)] = listing['version']
    arrivals = []

    async def watch(node):
        await request('GET', '/v1/clusters/%s/watch?since=%d&timeout=30' % (node.cluster, versions[node.cluster]),
                      headers=node.read, local=node.local)
        arrivals.append((node.cluster, time.monotonic()))
    watchers = [asyncio.ensure_future(watch(nd)) for nd in nodes]
    await asyncio.sleep(1.0 + n / 2000.0)  # let every watch reach the server
    sent = {}
    publishers = [nodes[c] for c in range(clusters)]
    for node in publishers:
        sent[node.cluster] = time.monotonic()
        await request('PUT', '/v1/clusters/%s/members/%s' % (node.cluster, node.member),
                      node.body(boxes[node.token], 3), node.auth, node.local)
    await asyncio.wait_for(asyncio.gather(*watchers), 60)
    delays = [when - sent[cluster] for cluster, when in arrivals]
    return dict(n=n, clusters=clusters, reg_rps=n / reg_wall, reg_p50=pct(reg, 0.5), reg_p99=pct(reg, 0.99),
                ref_rps=n / ref_wall, ref_p50=pct(ref, 0.5), ref_p99=pct(ref, 0.99),
                prop_p50=pct(delays, 0.5), prop_p99=pct(delays, 0.99), prop_max=max(delays) * 1000,
                floor_p50=pct(floor, 0.5), floor_p99=pct(floor, 0.99),
                bytes_per_record=(rss_after - baseline_kib) * 1024.0 / (stored_before + n))


async def normal_client(node, box, seq, count):
    """count rounds of what a node does: read its cluster, refresh its record. Latencies in s."""
    latencies, failures = [], 0
    for i in range(count):
        for method, path, body in (('GET', '/v1/clusters/%s/members' % node.cluster, None),
                                   ('PUT', '/v1/clusters/%s/members/%s' % (node.cluster, node.member),
                                    node.body(box, seq + i))):
            start = time.monotonic()
            try:
                status, _answer = await asyncio.wait_for(request(method, path, body, node.auth if body else node.read,
                                                                 node.local), 10)
            except (OSError, asyncio.TimeoutError):
                status = 0
            latencies.append(time.monotonic() - start)
            failures += status != 200
        await asyncio.sleep(0.15)  # (under its 15 requests/s)
    return latencies, failures


async def slowloris(stop, count):
    """count connections, each from its own address, sending a header byte a second; reopened
    when the server cuts one off."""
    async def one(i):
        local = '127.%d.%d.%d' % (200 + i // 65025, (i // 255) % 255, 1 + i % 255)
        while not stop.is_set():
            try:
                _reader, writer = await asyncio.open_connection('127.0.0.1', PORT, local_addr=(local, 0))
                writer.write(b'GET /v1/hello HTTP/1.1\r\nHost: x\r\n')
                while not stop.is_set():
                    await asyncio.sleep(1)
                    writer.write(b'X')
                    await writer.drain()
            except (OSError, asyncio.TimeoutError):
                await asyncio.sleep(0.2)
    await asyncio.gather(*(one(i) for i in range(count)))


async def unread_listings(stop, path, read, count):
    """count connections (from 10 addresses) that ask for a listing and never read it."""
    held = []
    for i in range(count):
        try:
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.bind(('127.199.0.%d' % (1 + i % 10), 0))
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, ('127.0.0.1', PORT))
            sock.send(('GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: %s\r\n\r\n'
                       % (path, read['Authorization'])).encode())
            held.append(sock)
        except OSError:
            pass
    await stop.wait()
    for sock in held:
        sock.close()


async def flood(stop, workers=50):
    """Requests as fast as they come back, each from another address of one /64."""
    sent = [0]

    async def one():
        while not stop.is_set():
            local = '%s:%x:%x:%x:%x' % (SIX, random.getrandbits(16), random.getrandbits(16), random.getrandbits(16),
                                        random.getrandbits(16))
            try:
                await asyncio.wait_for(request('GET', '/v1/hello', local=local), 5)
            except (OSError, asyncio.TimeoutError):
                await asyncio.sleep(0.01)
            sent[0] += 1
    await asyncio.gather(*(one() for _worker in range(workers)))
    return sent[0]


async def abuse(server_pid, seconds, kinds, slow=1000, unread=100):
    """A normal client's latency alone, then under abuse; the server's peak memory meanwhile."""
    token = 'bench-abuse-token'
    box = crypto.RecordBox(token)
    nodes = [Node(60000 + i, token) for i in range(PER_CLUSTER)]
    await timed_all(request('PUT', '/v1/clusters/%s/members/%s' % (nd.cluster, nd.member), nd.body(box, 1),
                            nd.auth, nd.local) for nd in nodes)
    # the unread listings ask for a full cluster: 1024 records of 2000 bytes (a 2.7 MB listing)
    data = base64.b64encode(os.urandom(2000)).decode()
    full = [Node(70000 + i, 'bench-full-token') for i in range(1024)]
    await timed_all(request('PUT', '/v1/clusters/%s/members/%s' % (nd.cluster, nd.member),
                            nd.signed(data, 1), nd.auth, nd.local) for nd in full)
    quiet, quiet_failures = await normal_client(nodes[0], box, 10, 100)
    stop = asyncio.Event()
    path = '/v1/clusters/%s/members' % full[0].cluster
    attacks = [asyncio.ensure_future(slowloris(stop, slow if 'slowloris' in kinds else 0)),
               asyncio.ensure_future(unread_listings(stop, path, full[0].read, unread if 'unread' in kinds else 0)),
               asyncio.ensure_future(flood(stop, 50 if 'flood' in kinds else 0))]
    peak = [rss_kib(server_pid)]

    async def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], rss_kib(server_pid))
            await asyncio.sleep(0.2)
    sampler = asyncio.ensure_future(sample())
    await asyncio.sleep(min(5.0, seconds / 4.0))  # the attacks reach full strength
    rounds = max(10, int(seconds * 5))  # about `seconds` long
    loud, loud_failures = await normal_client(nodes[1], box, 10, rounds)
    _status, health = await request('GET', '/healthz')
    stop.set()
    results = await asyncio.gather(*attacks, sampler, return_exceptions=True)
    return dict(quiet_p50=pct(quiet, 0.5), quiet_p99=pct(quiet, 0.99), quiet_failures=quiet_failures,
                loud_p50=pct(loud, 0.5), loud_p99=pct(loud, 0.99), loud_failures=loud_failures, requests=len(loud),
                peak_mib=peak[0] / 1024.0, flood=results[2] if isinstance(results[2], int) else 0,
                health=health)


def inner(sizes, abuse_seconds=20, server_path=None, kinds=('slowloris', 'unread', 'flood')):
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    subprocess.run(['ip', 'link', 'set', 'lo', 'up'], check=True)
    subprocess.run(['ip', '-6', 'route', 'add', 'local', '%s::/64' % SIX, 'dev', 'lo'], check=True)
    db = '/tmp/%s.db' % NS
    env = dict(os.environ, PYTHONPATH=collection.COLLECTIONS)
    program = server_path or collection.DISCOVERY_SERVER
    # (the hand-written server of 0.6 listens on one address family only: give it 0.0.0.0)
    dual = server_path is None or 'every address, IPv4 and IPv6' in open(server_path).read()
    listen = ':%d' % PORT if dual else '0.0.0.0:%d' % PORT
    script = 'ulimit -n %d; exec "$0" %s --listen %s --db %s' % (hard, program, listen, db)
    pin = ['taskset', '-c', '0'] if shutil.which('taskset') and os.cpu_count() > 1 else []
    server = subprocess.Popen(pin + ['sh', '-c', script, sys.executable],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    if pin:  # the clients elsewhere
        os.sched_setaffinity(0, set(range(1, os.cpu_count())))
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                asyncio.run(request('GET', '/healthz'))
                break
            except OSError:
                time.sleep(0.1)
        print('one server process (%s, on one core), rate limit on (15/s, burst 60 per client address);'
              ' times in ms' % (os.path.relpath(program) if server_path else 'aiohttp, SQLite WAL'))
        print()
        print('| nodes | clusters | register req/s | register p50 / p99 | refresh req/s | refresh p50 / p99 |'
              ' propagation p50 / p99 / max | plain round trip p50 / p99 | server memory per record |')
        print('|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
        baseline = rss_kib(server.pid)
        stored = 0
        for n in sizes:
            r = asyncio.run(run_size(n, server.pid, baseline, stored))
            stored += n
            print('| %(n)d | %(clusters)d | %(reg_rps).0f | %(reg_p50).1f / %(reg_p99).1f | %(ref_rps).0f | '
                  '%(ref_p50).1f / %(ref_p99).1f | %(prop_p50).0f / %(prop_p99).0f / %(prop_max).0f | '
                  '%(floor_p50).2f / %(floor_p99).2f | %(bytes_per_record).0f B |' % r)
            sys.stdout.flush()
        if abuse_seconds > 0:
            r = asyncio.run(abuse(server.pid, abuse_seconds, kinds))
            print()
            print('| a normal client (listing of its 100-member cluster, then a refresh) | p50 / p99 | failed |'
                  ' server peak memory |')
            print('|---|---:|---:|---:|')
            print('| alone | %.1f / %.1f | %d | |' % (r['quiet_p50'], r['quiet_p99'], r['quiet_failures']))
            named = dict(slowloris='1000 slowloris', unread='100 unread 2.7 MB listings',
                         flood='a flood from one /64 (%d requests)' % r['flood'])
            print('| under abuse: %s | %.1f / %.1f | %d of %d | %.0f MiB |'
                  % (', '.join(named[k] for k in kinds), r['loud_p50'], r['loud_p99'], r['loud_failures'], r['requests'],
                     r['peak_mib']))
            if 'refused' in r['health']:
                print()
                print('the server at the end of the abuse: %d connections; refused so far: %s'
                      % (r['health']['connections'], json.dumps(r['health']['refused'], sort_keys=True)))
    finally:
        server.terminate()
        server.wait(10)
        for suffix in ('', '-wal', '-shm'):
            if os.path.exists(db + suffix):
                os.unlink(db + suffix)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--sizes', default='100,1000,5000')
    parser.add_argument('--abuse-seconds', type=float, default=20, help='0: no abuse phase')
    parser.add_argument('--server', help='another version of the server program, to compare')
    parser.add_argument('--abuse', default='slowloris,unread,flood', help='which attacks the abuse phase runs')
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(',') if s]
    if 'WGLAN_BENCH_NS' in os.environ:
        inner(sizes, args.abuse_seconds, os.path.abspath(args.server) if args.server else None,
              [k for k in args.abuse.split(',') if k])
        return 0
    if os.geteuid() != 0:
        sys.exit('needs root (network namespace)')
    subprocess.run(['ip', 'netns', 'add', NS], check=True)
    try:
        return subprocess.run(['ip', 'netns', 'exec', NS, sys.executable] + sys.argv,
                              env=dict(os.environ, WGLAN_BENCH_NS=NS), check=False).returncode
    finally:
        for pid in subprocess.run(['ip', 'netns', 'pids', NS], stdout=subprocess.PIPE, universal_newlines=True,
                                  check=False).stdout.split():
            try:
                os.kill(int(pid), 9)
            except OSError:
                pass
        subprocess.run(['ip', 'netns', 'del', NS], check=False)


if __name__ == '__main__':
    sys.exit(main())
