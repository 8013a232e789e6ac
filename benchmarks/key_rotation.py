"""Packets lost while every node's key is rotated: the watcher's rotation against replacing the key and running again.

Namespaces on one switch: the discovery service and three nodes set up the way the node role does it
(wglan_peers with the discovery service and the IPv4 overlay, settings saved), each with its watcher; the
peers known from the inventory's records too (the role's default beside a service: wglan_use_inventory
true), or from the service alone (--sources discovery).
Pings run between every ordered pair over the mesh's IPv6 and IPv4 addresses, 10 a second, while each
node's key is rotated in turn, two ways in the same run:

- rotate-key: `wglan rotate-key --wait` (what the role's wglan_rotate_keys runs): the next key is
  published, peers stand it by, node and peers switch together at the announced time (key_overlap);
- replace and run: wglan_keys with rotate=true, then wglan_record and wglan_peers again (what a
  rotation was before: the node takes the new key at once, its peers learn it from the record; the
  service still holds the record with the old key, under the same name, until its TTL).

Usage (root): python3 benchmarks/key_rotation.py [--overlap SECONDS] [--sources inventory+discovery|discovery ...]
"""
import argparse
import json
import os
import re
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(HERE, 'tests', 'integration'))

from netns import COLLECTIONS, Playbook, wait_for  # noqa: E402
from watchlab import service_world, watcher_cmd  # noqa: E402

# the node setup and the ping check of the namespace test (the role's calls, the same service world)
from test_key_rotation import NAMES, STATE, pings_ok, role_like_all  # noqa: E402


def rotate_key(nodes, name, overlap, _sources):
    done = subprocess.run(watcher_cmd(nodes[name], 'rotate-key', '--wait', str(int(overlap) + 60)),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                          env=dict(os.environ, PYTHONPATH=COLLECTIONS), check=False, timeout=overlap + 90)
    assert done.returncode == 0, done.stdout


def replace_and_run(nodes, name, _overlap, sources):
    ns = nodes[name]
    Playbook(ns, ns.workdir).one('wglan.mesh.wglan_keys', dict(path=ns.key_path, rotate=True))
    role_like_all(nodes, sources)


def measured(nodes, how, overlap, sources):
    """Rotate every key in turn the way how does, with pings between every pair and family all the while.
    Returns (seconds, pings sent, lost, {pair: lost})."""
    pingers = []
    for a in NAMES:
        for b in NAMES:
            if a != b:
                for family in ('address', 'address4'):
                    cmd = ['ip', 'netns', 'exec', nodes[a].name, 'ping', '-n', '-q', '-i', '0.1', '-W', '1', '-w', '900',
                           STATE[b][family]]
                    pingers.append(('%s->%s %s' % (a, b, family), subprocess.Popen(
                        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)))
    try:
        time.sleep(2)
        started = time.monotonic()
        for name in NAMES:
            how(nodes, name, overlap, sources)
            time.sleep(2)
        took = time.monotonic() - started
        time.sleep(8)  # (the last switch's stragglers, and a peer that had to sweep back)
        for _label, proc in pingers:
            proc.send_signal(2)
        lost, sent = {}, 0
        for label, proc in pingers:
            out = proc.communicate(timeout=30)[0]
            count, got = re.search(r'(\d+) packets transmitted, (\d+) (?:packets )?received', out).groups()
            sent += int(count)
            if int(count) != int(got):
                lost[label] = int(count) - int(got)
    finally:
        for _label, proc in pingers:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    return took, sent, sum(lost.values()), lost


def one_world(sources, overlap):
    """The rows of both ways for one choice of sources, in a world of its own."""
    STATE.clear()
    work = tempfile.mkdtemp(prefix='wglan-rotation-')
    rows = []
    with service_world(work, ((1, 'n1'), (2, 'n2'), (3, 'n3')), NAMES) as (tag, nodes, _server, watchers):
        for name in NAMES:
            with open(os.path.join(nodes[name].workdir, 'watcher.json'), 'w') as handle:
                json.dump(dict(table='wglan%s' % tag, key_overlap=overlap,
                               rotate_request=os.path.join(nodes[name].workdir, 'rotate-key'),
                               status_path=os.path.join(nodes[name].workdir, 'status.json')), handle)
        role_like_all(nodes, sources)
        for name in NAMES:
            watchers.start(nodes[name])
        assert wait_for(lambda: pings_ok(nodes), timeout=60, interval=0.5), 'the mesh did not form'
        for label, how in (('rotate-key (this version)', rotate_key), ('replace the key and run again', replace_and_run)):
            took, sent, lost, pairs = measured(nodes, how, overlap, sources)
            worst = max(pairs.values()) / 10.0 if pairs else 0.0
            started = time.monotonic()
            back = wait_for(lambda: pings_ok(nodes), timeout=120, interval=0.5)
            rows.append((sources, label, took, sent, lost, worst, '%.0f s later' % (time.monotonic() - started) if back
                         else 'not within 120 s'))
    return rows


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument('--overlap', type=float, default=5.0)
    parser.add_argument('--sources', nargs='+', default=['inventory+discovery', 'discovery'],
                        choices=['inventory+discovery', 'discovery'])
    args = parser.parse_args()
    rows = []
    for sources in args.sources:
        rows += one_world(sources, args.overlap)
    print('\nKey rotation of %d nodes in turn, pings between every ordered pair over IPv6 and IPv4, 10 a second '
          '(key_overlap %.0f s)\n' % (len(NAMES), args.overlap))
    print('| sources | how | seconds | pings sent | lost | worst pair: seconds of pings lost | every pair pings again |')
    print('|---|---|---:|---:|---:|---:|---|')
    for sources, label, took, sent, lost, worst, back in rows:
        share = 100.0 * lost / max(sent, 1)
        print('| %s | %s | %.0f | %d | %d (%.2f %%) | %.1f s | %s |' % (sources, label, took, sent, lost, share, worst, back))


if __name__ == '__main__':
    main()
