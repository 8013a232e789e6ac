"""Load on one discovery server: registering, refreshing and watching nodes.

For N simulated nodes (100 per cluster, each node with its own source address
in 127.0.0.0/8 so the per-client rate limit applies as in real life), inside a
network namespace this script makes:
- register: every node PUTs its sealed record (200 requests in flight);
- refresh: every node PUTs again with the next sequence number;
- propagation: every node holds a watch on its cluster; one node per cluster
  publishes; the delay from that PUT to each watcher's answer;
- memory: the server's RSS growth per stored record;
- floor: a plain HTTP round trip (GET /healthz) to the same server.
Memory per record: the server's RSS growth over its start, divided by all the
records it holds (sizes run one after another on the same server).
Usage (root): python3 benchmarks/discovery_load.py [--sizes 100,1000,5000]
"""
import argparse
import asyncio
import json
import os
import resource
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


def pct(samples, q):
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def source(i):
    return '127.%d.%d.%d' % (1 + i // 65025, (i // 255) % 255, 1 + i % 255)


async def request(method, path, body=None, headers=None, local=None):
    """One HTTP/1.1 request on a fresh connection (as the module's client does)."""
    reader, writer = await asyncio.open_connection('127.0.0.1', PORT, local_addr=(local, 0) if local else None)
    payload = json.dumps(body).encode() if body is not None else b''
    head = '%s %s HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\nConnection: close\r\n' % (method, path, len(payload))
    for key, value in (headers or {}).items():
        head += '%s: %s\r\n' % (key, value)
    writer.write(head.encode() + b'\r\n' + payload)
    await writer.drain()
    data = await reader.read()
    writer.close()
    status = int(data.split(b' ', 2)[1])
    return status, json.loads(data.split(b'\r\n\r\n', 1)[1] or b'{}')


class Node:
    def __init__(self, i, token):
        self.i = i
        self.local = source(i)
        self.token = token
        self.cluster = crypto.cluster_id(token)
        self.member = '%064x' % (i + 1)
        self.auth = {'Authorization': 'Bearer ' + crypto.write_key(token)}

    def body(self, box, seq):
        record = dict(version=1, name='n%d' % self.i, public_key='A' * 43 + '=', address='200:1001::%x' % self.i,
                      node_ips=['192.0.2.%d/24' % (1 + self.i % 250)], port=51820, observed={})
        return dict(seq=seq, data=box.seal(self.member, seq, record), ttl=1800)


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
    for _i in range(200):
        start = time.monotonic()
        await request('GET', '/healthz', local=source(n + 1))
        floor.append(time.monotonic() - start)
    reg, reg_wall = await timed_all(request('PUT', '/v1/clusters/%s/members/%s' % (nd.cluster, nd.member), b,
                                            nd.auth, nd.local) for nd, b in zip(nodes, bodies))
    rss_after = rss_kib(server_pid)
    ref, ref_wall = await timed_all(request('PUT', '/v1/clusters/%s/members/%s' % (nd.cluster, nd.member), b,
                                            nd.auth, nd.local) for nd, b in zip(nodes, refresh))
    # every node watches its cluster from the current version
    versions = {}
    for token in tokens:
        _status, listing = await request('GET', '/v1/clusters/%s/members' % crypto.cluster_id(token))
        versions[crypto.cluster_id(token)] = listing['version']
    arrivals = []

    async def watch(node):
        await request('GET', '/v1/clusters/%s/watch?since=%d&timeout=30' % (node.cluster, versions[node.cluster]),
                      local=node.local)
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


def inner(sizes):
    _soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    subprocess.run(['ip', 'link', 'set', 'lo', 'up'], check=True)
    db = '/tmp/%s.db' % NS
    env = dict(os.environ, PYTHONPATH=collection.COLLECTIONS)
    script = 'ulimit -n %d; exec "$0" %s --listen 127.0.0.1:%d --db %s' % (hard, collection.DISCOVERY_SERVER, PORT, db)
    server = subprocess.Popen(['sh', '-c', script, sys.executable],
                              env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            try:
                asyncio.run(request('GET', '/healthz'))
                break
            except OSError:
                time.sleep(0.1)
        print('one server process (asyncio, SQLite WAL), rate limit on (15/s, burst 60 per client address);'
              ' times in ms')
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
    finally:
        server.terminate()
        server.wait(10)
        for suffix in ('', '-wal', '-shm'):
            if os.path.exists(db + suffix):
                os.unlink(db + suffix)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--sizes', default='100,1000,5000')
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(',')]
    if 'WGLAN_BENCH_NS' in os.environ:
        inner(sizes)
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
