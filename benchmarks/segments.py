"""The cost of a gateway: round trips between two nodes directly, and through a gateway, in the same run.

Namespaces on one switch: the discovery service, a1, gw and b1, each set up the way the node role does it
(wglan_record, wglan_peers from the service, settings saved) with its watcher, gw relaying. First no node
names a segment (the full mesh: a1 and b1 are peers); then a1 is in segment a, b1 in b and gw in both (the
gateway), the watchers take it, and a1 reaches b1 through gw. Each time ROUNDS pings a1 -> b1 over the
mesh (and a1 -> gw, one tunnel, as the baseline), 10 ms apart; the table gives the median, 90th and 99th
percentile round trip and the hop limit of the answers (63: one relay on the way). wireguard-go is the
WireGuard here (userspace, like the lab): the gateway's cost is one more decryption and encryption.

Usage (root): python3 benchmarks/segments.py [--rounds N]
"""
import argparse
import json
import os
import re
import signal
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(HERE, 'tests', 'integration'))

from netns import wait_for  # noqa: E402
from watchlab import service_world  # noqa: E402
import test_segments as world_of  # noqa: E402  (the namespace test's node setup, reused)

NODES = ('a1', 'gw', 'b1')


def pings(src, address, rounds):
    """(answers' hop limit, [round trips in ms]) of rounds pings."""
    out = src.sh('ping -6 -n -c %d -i 0.01 -W 2 %s' % (rounds, address), check=False, timeout=rounds + 30).stdout
    hops = re.findall(r'ttl=(\d+)', out)
    return (int(hops[0]) if hops else None), sorted(float(t) for t in re.findall(r'time=([\d.]+)', out))


def row(label, hop, times):
    def pct(p):
        return times[min(len(times) - 1, int(len(times) * p))] if times else float('nan')
    return '| %s | %s | %d | %.3f | %.3f | %.3f |' % (label, hop, len(times), pct(0.5), pct(0.9), pct(0.99))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--rounds', type=int, default=1000)
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix='wglan-bench-segments-')
    members = ((1, 'a1'), (2, 'gw'), (3, 'b1'))
    rows = []
    with service_world(work, members, NODES) as (tag, nodes, _server, watchers):
        for name in NODES:
            with open(os.path.join(nodes[name].workdir, 'watcher.json'), 'w') as handle:
                json.dump(dict(resync=30, table='wglan%s' % tag, relay=name == 'gw',
                               status_path=os.path.join(nodes[name].workdir, 'status.json')), handle)
            world_of.join(nodes[name], name, segs=[])
        for name in NODES:
            watchers.start(nodes[name])
        state = world_of.STATE
        assert wait_for(lambda: world_of.hop_limit(nodes['a1'], 'b1') == 64, timeout=60, interval=0.5), 'no direct path'
        rows.append(row('a1 -> gw, one tunnel', *pings(nodes['a1'], state['gw']['address'], args.rounds)))
        rows.append(row('a1 -> b1, direct (full mesh)', *pings(nodes['a1'], state['b1']['address'], args.rounds)))
        started = time.monotonic()
        for name in NODES:
            world_of.join(nodes[name], name)
            watchers.procs[nodes[name].name].send_signal(signal.SIGHUP)
        assert wait_for(lambda: world_of.hop_limit(nodes['a1'], 'b1') == 63, timeout=60, interval=0.2), 'no gateway path'
        took = time.monotonic() - started
        rows.append(row('a1 -> b1, through the gateway gw', *pings(nodes['a1'], state['b1']['address'], args.rounds)))
    print('| path | hop limit | answers | median ms | p90 ms | p99 ms |')
    print('|---|---:|---:|---:|---:|---:|')
    print('\n'.join(rows))
    print('\nfrom the first of the three runs with segments (one wglan_record and one wglan_peers call each) until '
          'a1 -> b1 went through the gateway: %.1f s' % took)


if __name__ == '__main__':
    main()
