"""How fast a node's name follows its record, beside how fast the node becomes a peer.

Namespaces on one switch: the discovery service and three nodes set up the way the node role does it
(wglan_peers with the discovery service, the IPv4 overlay and names, settings saved), each with its
watcher (the role's timers). Then ROUNDS times: a new node is published to the service (as a node
would: signed, over the service's API), and each watcher is timed until the node is its peer (wg show)
and until its name is in the node's hosts file; then the node is deleted, and each watcher is timed
until it is no longer a peer and no longer named, from the moment the client sent its request (the
figures include the request itself). Polled every 20 ms: they are upper bounds by that much.
(In the lab, tests/lab/test_discovery.py times the same through each machine's own
resolver, getent, over SSH.)

Usage (root): python3 benchmarks/names.py [--rounds N]
"""
import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(HERE, 'tests', 'integration'))

from netns import COLLECTIONS, Playbook, record_of  # noqa: E402
from watchlab import service_world  # noqa: E402

TOKEN = 'names-bench-%s' % uuid.uuid4().hex
URL = 'http://198.51.100.100:8443'
NODES = ('n1', 'n2', 'n3')
CLIENT = '''
import sys
sys.path.insert(0, %(collections)r)
from ansible_collections.wglan.mesh.plugins.module_utils.sources.discovery import DiscoveryClient
c = DiscoveryClient(%(url)r, %(token)r, signing=%(seed)r)
import time
started = time.time()
%(action)s
print(started, time.time())
'''


def setup(ns, name):
    state = record_of(ns, name)
    book = Playbook(ns, ns.workdir)
    with open(os.path.join(ns.workdir, 'hosts'), 'w') as handle:
        handle.write('127.0.0.1 localhost\n')
    record = book.one('wglan.mesh.wglan_record', dict(
        name=name, public_key=state['public_key'], address=state['address'], interface=ns.ifname,
        ipv4_prefix='203.0.113.0/24', fact_path=os.path.join(ns.workdir, 'fact'),
        state_path=os.path.join(ns.workdir, 'mesh.json')))
    result = book.one('wglan.mesh.wglan_peers', dict(
        interface=ns.ifname, backend='userspace', private_key_path=ns.key_path, addresses=[state['cidr']], purge=True,
        self_name=name, discovery_url=URL, cluster_token=TOKEN, publish=record['record'], ipv4_prefix='203.0.113.0/24',
        watcher=True, names=True, hosts_path=os.path.join(ns.workdir, 'hosts'),
        state_path=os.path.join(ns.workdir, 'mesh.json'), settings_path=os.path.join(ns.workdir, 'settings.json'),
        save_settings=True, relays_path=os.path.join(ns.workdir, 'paths.json')))
    assert not result.get('failed'), result


def client(ns, seed, action):
    """The client in ns, started (it prints when its request began and when it returned)."""
    script = CLIENT % dict(collections=COLLECTIONS, url=URL, token=TOKEN, seed=seed, action=action)
    return subprocess.Popen(['ip', 'netns', 'exec', ns.name, sys.executable, '-c', script], stdout=subprocess.PIPE,
                            universal_newlines=True)


def timed(nodes, proc, key, name, present, timeout=15.0):
    """{node: seconds from the client's request until key is (present) / is not a peer}, and the same for name
    in the node's hosts file. Polled while the client runs (a watcher may be done before the client exits)."""
    started = time.monotonic()
    peer, named = {}, {}
    while time.monotonic() - started < timeout and (len(peer) < len(NODES) or len(named) < len(NODES)):
        for n in NODES:
            ns = nodes[n]
            if n not in peer:
                peers = subprocess.run(['ip', 'netns', 'exec', ns.name, 'wg', 'show', ns.ifname, 'peers'],
                                       stdout=subprocess.PIPE, universal_newlines=True, check=False).stdout.split()
                if (key in peers) == present:
                    peer[n] = time.time()
            if n not in named:
                with open(os.path.join(ns.workdir, 'hosts')) as handle:
                    if (('\t%s.wglan.internal\n' % name) in handle.read()) == present:
                        named[n] = time.time()
        time.sleep(0.02)
    began, _returned = [float(v) for v in proc.communicate(timeout=30)[0].split()[-2:]]
    return dict((n, t - began) for n, t in peer.items()), dict((n, t - began) for n, t in named.items())


def row(label, values):
    if len(values) == 0:
        return '| %s | - | - | - |' % label
    return '| %s | %.2f | %.2f | %d |' % (label, statistics.median(values), max(values), len(values))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--rounds', type=int, default=5)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix='wglan-names-')
    members = ((1, 'n1'), (2, 'n2'), (3, 'n3'))
    times = dict(peer_in=[], name_in=[], peer_out=[], name_out=[])
    with service_world(work, members, NODES) as (tag, nodes, _server, watchers):
        for n in NODES:
            with open(os.path.join(nodes[n].workdir, 'watcher.json'), 'w') as handle:
                json.dump(dict(table='wglan%s' % tag, status_path=os.path.join(nodes[n].workdir, 'status.json')), handle)
            setup(nodes[n], n)
            watchers.start(nodes[n])
        time.sleep(3)  # every watcher reconciled and watches the service
        for r in range(args.rounds):
            key = subprocess.run(['sh', '-c', 'wg genkey | wg pubkey'], stdout=subprocess.PIPE, universal_newlines=True,
                                 check=True).stdout.strip()
            seed = uuid.uuid4().hex[:32]
            name = 'ghost%d' % r
            record = dict(version=1, name=name, public_key=key, address='200:1001::%x' % (0x100 + r),
                          node_ips=['198.51.100.%d/24' % (50 + r)], port=51820, extra_endpoints=[], pod_cidrs=[],
                          observed={})
            peer, named = timed(nodes, client(nodes['n1'], seed, 'c.publish(%r)' % record), key, name, True)
            times['peer_in'] += peer.values()
            times['name_in'] += named.values()
            peer, named = timed(nodes, client(nodes['n1'], seed, 'c.delete(%r)' % key), key, name, False)
            times['peer_out'] += peer.values()
            times['name_out'] += named.values()
            time.sleep(1)
    print('\nName propagation: %d nodes published then deleted, 3 watchers, seconds from the publish (delete) '
          'request\n' % args.rounds)
    print('| event | median s | max s | samples |')
    print('|---|---:|---:|---:|')
    print(row('new node: a peer', times['peer_in']))
    print(row('new node: named', times['name_in']))
    print(row('deleted node: no longer a peer', times['peer_out']))
    print(row('deleted node: no longer named', times['name_out']))
    if len(times['name_in']) < args.rounds * len(NODES) or len(times['name_out']) < args.rounds * len(NODES):
        print('\nsome watchers did not name (or unname) a node within 15 s')


if __name__ == '__main__':
    main()
