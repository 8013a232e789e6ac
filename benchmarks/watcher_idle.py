"""What a watcher costs at rest: CPU, processes spawned, memory; this version against another.

Namespaces on one switch: the discovery service and three nodes set up the way the node role does it
(tests/integration/test_key_rotation.py's setup: wglan_record, then wglan_peers with the discovery
service and the IPv4 overlay), each with its watcher under the role's default options. Once every pair
pings, the mesh is left alone for --seconds, and for each watcher: its CPU (its own and its children's,
from /proc), the programs it started (a PATH that counts nft, ip and wg calls, then runs the real one),
and its resident memory at the end. Then the same watchers are started from another version of the
collection (--before COMMIT: `git archive` of that commit's plugins), on the same mesh, measured the same
way, in the same run.

Usage (root): python3 benchmarks/watcher_idle.py [--seconds 60] [--before COMMIT]
"""
import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.join(HERE, 'tests', 'integration'))

from netns import COLLECTIONS, wait_for  # noqa: E402
from watchlab import service_world, watcher_cmd  # noqa: E402
from test_key_rotation import NAMES, STATE, pings_ok, role_like_all  # noqa: E402

COUNTED = ('nft', 'ip', 'wg')


def shim(workdir):
    """A directory of programs that log their call, then run the real one."""
    place = os.path.join(workdir, 'shim')
    os.makedirs(place, exist_ok=True)
    for program in COUNTED:
        real = shutil.which(program)
        with open(os.path.join(place, program), 'w') as handle:
            handle.write('#!/bin/sh\necho "%s $*" >> "$WGLAN_CALLS"\nexec %s "$@"\n' % (program, real))
        os.chmod(os.path.join(place, program), 0o755)
    return place


def collection_of(commit, workdir):
    """The collection's tree at commit, importable (PYTHONPATH) like build/collections."""
    root = os.path.join(workdir, 'before')
    target = os.path.join(root, 'ansible_collections', 'wglan', 'mesh')
    os.makedirs(target)
    archive = subprocess.run(['git', '-C', HERE, 'archive', commit, 'plugins'], stdout=subprocess.PIPE, check=True)
    subprocess.run(['tar', '-x', '-C', target], input=archive.stdout, check=True)
    for part in ('ansible_collections', 'ansible_collections/wglan'):
        open(os.path.join(root, part, '__init__.py'), 'a').close()
    return root


def cpu_seconds(pid):
    with open('/proc/%d/stat' % pid) as handle:
        fields = handle.read().rsplit(')', 1)[1].split()
    ticks = os.sysconf('SC_CLK_TCK')
    return sum(int(f) for f in fields[11:15]) / float(ticks)  # utime stime cutime cstime


def rss_mib(pid):
    with open('/proc/%d/status' % pid) as handle:
        return [int(line.split()[1]) for line in handle if line.startswith('VmRSS:')][0] / 1024.0


def measure(nodes, pythonpath, shimdir, seconds, label):
    procs = {}
    try:
        for name in NAMES:
            ns = nodes[name]
            calls = os.path.join(ns.workdir, 'calls-%s' % label.split()[0])
            open(calls, 'w').close()
            env = dict(os.environ, PYTHONPATH=pythonpath, PATH=shimdir + ':' + os.environ['PATH'], WGLAN_CALLS=calls)
            procs[name] = (subprocess.Popen(watcher_cmd(ns, 'run'), env=env, stdout=subprocess.DEVNULL,
                                            stderr=subprocess.DEVNULL), calls)
        assert wait_for(lambda: pings_ok(nodes), timeout=90, interval=0.5), 'the mesh did not form'
        time.sleep(10)  # settled
        start = dict((name, cpu_seconds(proc.pid)) for name, (proc, _calls) in procs.items())
        for _proc, calls in procs.values():
            open(calls, 'w').close()
        time.sleep(seconds)
        rows = []
        for name, (proc, calls) in sorted(procs.items()):
            used = cpu_seconds(proc.pid) - start[name]
            with open(calls) as handle:
                spawned = [line.split()[0] for line in handle]
            rows.append(dict(label=label, name=name, cpu=100.0 * used / seconds, rss=rss_mib(proc.pid),
                             spawned=dict((p, spawned.count(p)) for p in COUNTED), seconds=seconds))
        return rows
    finally:
        for proc, _calls in procs.values():
            proc.kill()
            proc.wait(10)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--seconds', type=float, default=60.0)
    parser.add_argument('--before', help='a commit to compare with')
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix='wglan-idle-')
    rows = []
    try:
        shimdir = shim(work)
        versions = [(COLLECTIONS, 'this version')]
        if args.before:
            versions.append((collection_of(args.before, work), 'before (%s)' % args.before))
        STATE.clear()
        with service_world(work, ((1, 'n1'), (2, 'n2'), (3, 'n3')), NAMES) as (_tag, nodes, _server, _watchers):
            for name in NAMES:  # the role's defaults but for where the status goes (one file per node here)
                with open(os.path.join(nodes[name].workdir, 'watcher.json'), 'w') as handle:
                    json.dump(dict(status_path=os.path.join(nodes[name].workdir, 'status.json')), handle)
            role_like_all(nodes, 'inventory+discovery')
            for path, label in versions:
                rows += measure(nodes, path, shimdir, args.seconds, label)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print('\nWatchers at rest (3 nodes, the role\'s default options, %.0f s each)\n' % args.seconds)
    print('| version | node | CPU (% of a core, with its children) | nft per minute | ip per minute | wg per minute '
          '| resident memory |')
    print('|---|---|---:|---:|---:|---:|---:|')
    for r in rows:
        per_minute = dict((p, r['spawned'][p] * 60.0 / r['seconds']) for p in COUNTED)
        print('| %s | %s | %.2f | %.1f | %.1f | %.1f | %.0f MiB |'
              % (r['label'], r['name'], r['cpu'], per_minute['nft'], per_minute['ip'], per_minute['wg'], r['rss']))


if __name__ == '__main__':
    main()
