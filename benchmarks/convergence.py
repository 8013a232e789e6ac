"""How fast the mesh converges with the watcher, on the lab, beside KubeSpan's documented timers.

Lab: two public hubs and two NAT sites of two machines each (6 machines);
site B's router does fully random (symmetric) NAT, so pairs between site A
and site B have no direct path and must go through a relay. The discovery
service (on hub1) is the only source; every machine runs the watcher.

Measured, in one run:
- site.yml (first run) wall time;
- end of site.yml -> every ordered pair pings over the mesh (polled, so the
  figure is an upper bound by the poll's few seconds);
- relay take-over: from a watcher's start to its log line `peer X: via R`
  (the slowest pair; one full sweep of the candidates plus the relay's
  observations arriving);
- a new machine (published to the service) -> a peer on every machine.
Not measured yet: recovery after a machine changes address (the lab cannot
move a machine between sites yet).

Usage (root): python3 benchmarks/convergence.py
"""
import os
import subprocess
import sys
import time
import uuid
from datetime import datetime

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'tests', 'lab'))

from lab import ROOT, Lab, all_pairs, full_mesh, new_name, peer_latency, plan  # noqa: E402

TOKEN = 'bench-token-%s' % uuid.uuid4().hex
# KubeSpan (Talos docs, see REFERENCE.md): reconcile every 30 s, 15 s per endpoint, a peer is down 275 s
# after its last handshake. It has no relay, and learns new members through its discovery service.
KUBESPAN = dict(reconcile='30 s', endpoint='15 s', down='275 s', relay='none')


def write_inventory(lab):
    with open(lab.inventory) as handle:
        text = handle.read()
    text += ('\n[wglan_discovery]\nhub1\n\n[all:vars]\nwglan_use_inventory=false\nwglan_watcher=true\n'
             'wglan_relay_ipv6=true\nwglan_cluster_token=%s\n' % TOKEN)
    path = os.path.join(lab.dir, 'bench.ini')
    with open(path, 'w') as handle:
        handle.write(text)
    return path


def journal_times(lab, host, pattern):
    """Timestamps (epoch seconds) of the watcher's journal lines containing pattern."""
    out = lab.ssh(host, 'journalctl -u wglan-watcher -o short-iso-precise --no-pager | grep -F %s || true'
                  % subprocess.list2cmdline([pattern]), check=False).stdout
    times = []
    for line in out.splitlines():
        stamp = line.split()[0]
        try:
            times.append(datetime.fromisoformat(stamp).timestamp())
        except ValueError:
            continue
    return times


def publish_ghost(lab):
    ghost = lab.ssh('hub1', 'wg genkey | wg pubkey').stdout.strip()
    record = dict(version=1, name='ghost', public_key=ghost, address='200:1001::77', node_ips=['203.0.113.77/24'],
                  port=51820, extra_endpoints=[], pod_cidrs=[], observed={})
    code = ('from ansible_collections.wglan.mesh.plugins.module_utils.discovery_client import DiscoveryClient\n'
            'DiscoveryClient("http://203.0.113.10:8443", %r).publish(%r)\n' % (TOKEN, record))
    subprocess.run(['ip', 'netns', 'exec', lab.controller, sys.executable, '-c', code], check=True, timeout=60,
                   env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, 'build', 'collections')))
    return ghost, time.time()


def main():
    lab = Lab(new_name())
    rows = []
    try:
        lab.up(plan(public=2, sites=2, per_site=2, symmetric=('b',)))
        inventory = write_inventory(lab)
        started = time.monotonic()
        result = lab.playbook_with_inventory(inventory, 'playbooks/site.yml')
        ended = time.monotonic()
        if result.returncode != 0:
            print(result.stdout[-3000:])
            return 1
        rows.append(('site.yml, first run', '%.0f s' % (ended - started), '-'))
        names, reach, status = full_mesh(lab, timeout=240)
        complete = all(reach[s][d] for s, d in all_pairs(names))
        rows.append(('end of site.yml -> full mesh (%d machines, %d ordered pairs)' % (len(names), len(all_pairs(names))),
                     '%.0f s' % (time.monotonic() - ended) if complete else 'not complete in 240 s',
                     'none documented'))
        takeovers = []
        for host in names:
            begun = journal_times(lab, host, 'wglan-watcher: started')
            relayed = journal_times(lab, host, ': via ')
            if begun and relayed:
                takeovers.append(min(relayed) - min(begun))
        relayed_rows = sum(line.count(' via ') for line in status.values())
        rows.append(('relay take-over after the watcher starts (slowest of %d relayed peer entries)' % relayed_rows,
                     '%.0f s' % max(takeovers) if takeovers else 'no relay used',
                     KUBESPAN['relay']))
        ghost, published = publish_ghost(lab)
        latency = peer_latency(lab, names, ghost, published)
        rows.append(('new machine (published) -> peer on every machine', '%.2f s' % max(latency.values()),
                     'next reconcile, up to %s' % KUBESPAN['reconcile']))
        rows.append(('seconds per endpoint candidate while a peer is down', '6 s', KUBESPAN['endpoint']))
        rows.append(('a peer counts as down after its last handshake', '275 s', KUBESPAN['down']))
        rows.append(('recovery after a machine changes address', 'not measured yet', '-'))
        print('\n'.join(status.values()))
    finally:
        lab.down()
    print('| measure | wglan.mesh (this run) | KubeSpan (documented) |')
    print('|---|---|---|')
    for row in rows:
        print('| %s | %s | %s |' % row)
    return 0


if __name__ == '__main__':
    sys.exit(main())
