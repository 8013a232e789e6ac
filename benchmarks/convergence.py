"""How fast the mesh converges with the watcher, on the lab, beside KubeSpan's documented timers.

Lab: two public hubs and two NAT sites of two machines each (6 machines).
The discovery service (on hub1) is the only source; every machine runs the
watcher. Measured, in one run:
- site.yml (first run) wall time;
- end of site.yml -> every ordered pair pings over the mesh (polled, so the
  figures are upper bounds by the poll's few seconds);
- a new machine (published to the service) -> a peer on every machine;
- site B's router switches to fully random (symmetric) NAT on the live mesh:
  the direct paths between the sites break; time until every pair pings
  again, through relays (stale detection, one sweep, relay);
- site B's NAT friendly again: time until every pair across the sites is
  direct (the machines behind each NAT listen on ports of their own);
- the WireGuard traffic between two peers of an idle mesh (keepalives);
- b2 moves from site B to the public side (new address, no NAT): time until
  every pair pings again, without Ansible;
- b1 reboots: time from its boot until every pair pings again, without Ansible.

Then the NAT shapes (tests/integration/shapes.py: namespaces, wireguard-go, the watcher
with the role's default timers, Linux NAT routers): for each shape the path found, the
time from the watchers' start until its pairs ping (mesh IPv6, and node IPv4 where both
ends have it), and the WireGuard traffic per peer at rest; and a site that turns
symmetric under traffic: time until its pairs ping again (relayed), and until they are
direct again once the NAT is friendly.

Usage (root): python3 benchmarks/convergence.py [--shapes-only | --lab-only]
"""
import os
import subprocess
import sys
import time
import uuid

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(HERE, 'tests', 'lab'))
sys.path.insert(0, os.path.join(HERE, 'tests', 'integration'))

from lab import ROOT, Lab, all_pairs, full_mesh, new_name, peer_latency, plan, status_rows  # noqa: E402

import shapes  # noqa: E402

TOKEN = 'bench-token-%s' % uuid.uuid4().hex
# KubeSpan (the Talos Linux documentation of KubeSpan): reconcile every 30 s, 15 s per endpoint, a peer is down 275 s
# after its last handshake. It has no relay, and learns new members through its discovery service.
KUBESPAN = dict(reconcile='30 s', endpoint='15 s', down='275 s', keepalive='25 s')


def write_inventory(lab):
    with open(lab.inventory) as handle:
        text = handle.read()
    text += ('\n[wglan_discovery]\nhub1\n\n[all:vars]\nwglan_use_inventory=false\nwglan_watcher=true\n'
             'wglan_cluster_token=%s\n' % TOKEN)
    path = os.path.join(lab.dir, 'bench.ini')
    with open(path, 'w') as handle:
        handle.write(text)
    return path


def publish_ghost(lab):
    ghost = lab.ssh('hub1', 'wg genkey | wg pubkey').stdout.strip()
    record = dict(version=1, name='ghost', public_key=ghost, address='200:1001::77', node_ips=['203.0.113.77/24'],
                  port=51820, extra_endpoints=[], pod_cidrs=[], observed={})
    code = ('from ansible_collections.wglan.mesh.plugins.module_utils.sources.discovery import DiscoveryClient\n'
            'DiscoveryClient("http://203.0.113.10:8443", %r).publish(%r)\n' % (TOKEN, record))
    subprocess.run(['ip', 'netns', 'exec', lab.controller, sys.executable, '-c', code], check=True, timeout=60,
                   env=dict(os.environ, PYTHONPATH=os.path.join(ROOT, 'build', 'collections')))
    return ghost, time.time()


def wait_mesh(lab, timeout):
    """Seconds until every ordered pair pings (None if not within timeout), and the status."""
    started = time.monotonic()
    names, reach, status = full_mesh(lab, timeout=timeout)
    complete = all(reach[s][d] for s, d in all_pairs(names))
    return (time.monotonic() - started if complete else None), names, status


def at_rest(lab, host, peer, seconds):
    """Packets and bytes host's interface exchanged with peer over seconds of an idle mesh (keepalives,
    and probes if any fired), as wg counts them."""
    key = lab.ssh(peer, 'wg show wglan0 public-key').stdout.strip()

    def counters():
        for line in lab.ssh(host, 'wg show wglan0 transfer').stdout.splitlines():
            fields = line.split('\t')
            if fields[0] == key:
                return int(fields[1]) + int(fields[2])
        return 0
    before = counters()
    time.sleep(seconds)
    octets = counters() - before
    return '%d bytes (%.1f keepalive-sized packets per minute)' % (octets, octets / 32.0 / (seconds / 60.0))


def cross_site(status, host, others, kind):
    """Peers among others that host reaches directly (kind 'direct') or through a relay ('relay')."""
    return [peer for peer, (_st, path) in status_rows(status[host]).items()
            if peer in others and path.startswith('via ') == (kind == 'relay')]


def shape_rows(rest_seconds=120):
    """The NAT shapes' table rows (see the module's doc)."""
    import tempfile
    rows = []
    with shapes.world(tempfile.mkdtemp(prefix='wglan-bench-shapes-')) as w:
        first = shapes.converge(w, 300)
        time.sleep(60)  # settle: relays agreed on, sweeps over
        # at rest: nothing but the watchers; every node's WireGuard traffic, per peer
        before = dict((n, w.transfer(n)) for n in shapes.NODES)
        probes_before = dict((n, probes_of(w, n)) for n in shapes.NODES)
        time.sleep(rest_seconds)
        after = dict((n, w.transfer(n)) for n in shapes.NODES)
        probes = sum(probes_of(w, n) - probes_before[n] for n in shapes.NODES)
        for title, _mesh, names, expected in shapes.SHAPES:
            pairs = [p for pair in expected for p in (pair, pair[::-1])]
            times = [first.get(p) for p in pairs]
            paths = ', '.join('%s-%s %s' % (a, b, w.path(a, b) or '?') for a, b in expected)
            focus = names[0]
            per_path = {}
            for key, total in after[focus].items():
                relayed = (w.path(focus, w.name_of(key)) or '').startswith('via')
                per_path.setdefault(relayed, []).append((total - before[focus].get(key, 0)) / (rest_seconds / 60.0))
            rest = '; '.join('%s peer %.0f' % ('relayed' if relayed else 'direct', sum(v) / len(v))
                             for relayed, v in sorted(per_path.items()))
            rows.append((title, paths, '%.0f s' % max(times) if None not in times else 'not within 300 s',
                         '%s: %s bytes/min' % (focus, rest)))
        # a site that turns symmetric under traffic, and friendly again
        traffic = [w.background('sb', 'ping -i 0.5 -W 1 %s' % w.state['tb']['address']),
                   w.background('tb', 'ping -i 0.5 -W 1 %s' % w.state['sb']['address'])]
        try:
            w.set_nat('rsb', 'symmetric')
            broke = time.monotonic()
            took = wait_until(lambda: w.unreached([('sb', 'tb'), ('tb', 'sb')]) == []
                              and w.path('sb', 'tb') == 'via pb' and w.path('tb', 'sb') == 'via pb', 180)
            took = '%.0f s' % (took - broke) if took else 'not within 180 s'
            w.set_nat('rsb', 'port-restricted')
            friendly = time.monotonic()
            back = wait_until(lambda: w.path('sb', 'tb') == 'direct' and w.path('tb', 'sb') == 'direct'
                              and w.unreached([('sb', 'tb'), ('tb', 'sb')]) == [], 180)
            back = '%.0f s' % (back - friendly) if back else 'not within 180 s'
        finally:
            for proc in traffic:
                proc.kill()
                proc.wait(10)
    return rows, probes, took, back


def probes_of(w, name):
    import json
    try:
        with open(os.path.join(w.nodes[name].workdir, 'status.json')) as handle:
            return int(json.load(handle).get('probes') or 0)
    except (OSError, ValueError):
        return 0


def wait_until(predicate, timeout):
    """The monotonic time predicate first held (polled every 0.5 s), or None."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return time.monotonic()
        time.sleep(0.5)
    return None


def print_shapes():
    rows, probes, took, back = shape_rows()
    print('| NAT shape | path found | time to its pairs pinging | WireGuard traffic at rest, per peer | '
          'KubeSpan (documented) |')
    print('|---|---|---|---|---|')
    kubespan = {0: 'no relay: the symmetric pair stays down', 3: 'no relay: IPv6-only to IPv4-only stays down'}
    usual = 'endpoints %s each, keepalive %s' % (KUBESPAN['endpoint'], KUBESPAN['keepalive'])
    for index, row in enumerate(rows):
        print('| %s | %s | %s | %s | %s |' % (row + (kubespan.get(index, usual),)))
    print('')
    print('| on the live mesh, under traffic (sb and tb ping each other) | wglan.mesh | KubeSpan (documented) |')
    print('|---|---|---|')
    print('| site S turns symmetric -> sb-tb pings again (relayed) | %s | no relay: down |' % took)
    print('| site S friendly again -> sb-tb direct again | %s | - |' % back)
    print('| probes sent by all 8 watchers in 120 s at rest | %d | - |' % probes)
    print('')
    print('At rest a direct peer costs its keepalives (and a handshake every 2 minutes); a relayed peer costs '
          'the handshake attempts WireGuard makes on its own entry (every 5 s), its traffic going through '
          'the relay\'s entry.')


def main():
    if '--shapes-only' in sys.argv[1:]:
        print_shapes()
        return 0
    lab = Lab(new_name())
    rows = []
    try:
        lab.up(plan(public=2, sites=2, per_site=2))
        inventory = write_inventory(lab)
        started = time.monotonic()
        result = lab.playbook_with_inventory(inventory, 'playbooks/site.yml')
        ended = time.monotonic()
        if result.returncode != 0:
            print(result.stdout[-3000:])
            return 1
        rows.append(('site.yml, first run', '%.0f s' % (ended - started), '-'))
        seconds, names, status = wait_mesh(lab, 240)
        rows.append(('end of site.yml -> full mesh (%d machines, %d ordered pairs)' % (len(names), len(all_pairs(names))),
                     '%.0f s' % (time.monotonic() - ended) if seconds is not None
                     else 'not complete in 240 s', 'none documented'))
        ghost, published = publish_ghost(lab)
        latency = peer_latency(lab, names, ghost, published)
        rows.append(('new machine (published) -> peer on every machine', '%.2f s' % max(latency.values()),
                     'next reconcile, up to %s' % KUBESPAN['reconcile']))
        lab.set_nat('rb', True)
        seconds, names, status = wait_mesh(lab, 300)
        relayed = sum(len(cross_site(status, h, ('b1', 'b2'), 'relay')) for h in ('a1', 'a2'))
        rows.append(('site B turns symmetric on the live mesh -> every pair pings again (%d of 4 a-to-b entries '
                     'relayed)' % relayed, '%.0f s' % seconds if seconds is not None else 'not within 300 s',
                     'no relay: pairs stay down'))
        lab.set_nat('rb', False)
        back = time.monotonic()
        direct = 0
        while time.monotonic() - back < 240 and direct < 4:
            status = dict((n, lab.ssh(n, 'wglan status', check=False).stdout) for n in ('a1', 'a2'))
            direct = sum(len(cross_site(status, h, ('b1', 'b2'), 'direct')) for h in status)
            time.sleep(2)
        rows.append(('site B friendly again -> every a-to-b entry direct again (%d of 4)' % direct,
                     '%.0f s' % (time.monotonic() - back) if direct == 4 else 'not within 240 s', '-'))
        rows.append(('seconds per endpoint candidate while a peer is down', '6 s', KUBESPAN['endpoint']))
        rows.append(('a peer with a broken path is noticed after',
                     'about 7 s under traffic (data unanswered for 5 s, then a probe unanswered for 2 s); '
                     'about 57 s at rest (2 keepalives + 5 s, then the probe)',
                     KUBESPAN['down'] + ' (last handshake)'))
        rows.append(('WireGuard traffic between two peers at rest (a1 and hub1, both ways, 120 s)',
                     at_rest(lab, 'a1', 'hub1', 120), 'keepalive %s (alike)' % KUBESPAN['keepalive']))
        moved = time.monotonic()
        ip = lab.move('b2', 'pub')
        seconds, names, status = wait_mesh(lab, 240)
        rows.append(('b2 moves from site B to the public side (%s) -> every pair pings again' % ip,
                     '%.0f s' % (time.monotonic() - moved) if seconds is not None else 'not within 240 s',
                     'old path noticed after %s, then the sweep' % KUBESPAN['down']))
        lab.reboot('b1')
        booted = time.monotonic()
        seconds, names, status = wait_mesh(lab, 240)
        rows.append(('b1 reboots -> every pair pings again (from its boot, no Ansible)',
                     '%.0f s' % (time.monotonic() - booted) if seconds is not None else 'not within 240 s', '-'))
    finally:
        lab.down()
    print('| measure | wglan.mesh (this run) | KubeSpan (documented) |')
    print('|---|---|---|')
    for row in rows:
        print('| %s | %s | %s |' % row)
    if '--lab-only' not in sys.argv[1:]:
        print('')
        print_shapes()
    return 0


if __name__ == '__main__':
    sys.exit(main())
