"""The controller's own cost of site.yml at 100 to thousands of hosts, beside `ansible -m ping`.

No lab machine answers here: every host of the inventory is this machine over Ansible's `local`
connection, and its Python is a stand-in (a symlink per host to this script) that answers each module
at once, wglan_node with the result a settled second run gives (nothing changed, every pair up, this
run's records the ones used: every field the role reads, and per-peer fields of the size the module's
report has). Nothing on this machine is changed: no module runs. What is left is Ansible's and the
role's cost on the controller - a worker forked per host and task, the templating, the results kept -
which the lab (benchmarks/playbook.py) cannot reach past 100 machines. The stand-in is a stand-in
because a thousand real machines do not fit on this one; the real runs are the lab's.

Per size: the floor (`ansible all -m ansible.builtin.ping`), the second run of site.yml (nothing to do),
the ratio, the controller's peak memory (PSS of ansible-playbook and its forks) for each.

Usage: python3 benchmarks/controller_scale.py [--sizes 100,250,500,1000] [--forks 5,25]
"""
import argparse
import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def stand_in():
    """This script as a host's Python: argv[0] names the host, argv[1] the module's AnsiballZ file."""
    host = os.path.basename(sys.argv[0])
    module = os.path.basename(sys.argv[1]) if len(sys.argv) > 1 else ''
    size = int(os.environ.get('WGLAN_STAND_IN_SIZE', '1'))
    if module != 'AnsiballZ_wglan_node.py':
        print(json.dumps(dict(ping='pong', changed=False)))
        return
    names = ['h%d' % i for i in range(size)]
    others = [n for n in names if n != host]

    def digest(name):
        return hashlib.sha256(name.encode()).hexdigest()

    def address(name):
        return 'fdcc:1:2:3:%x::1' % names.index(name)
    record = dict(name=host, public_key=hashlib.sha256(host.encode()).hexdigest()[:43] + '=', address=address(host),
                  endpoints=['198.51.100.%d:51820' % (names.index(host) % 250 + 1)], node_ips=['198.51.100.1/32'])
    mesh = dict(changed=False, interface='wglan0', live_sources=False, admission_transition=False, backend='userspace',
                targets=[address(n) + '/128' for n in others], peers_added=0, peers_changed=0, peers_removed=0,
                endpoints=dict((n, '198.51.100.%d:51820' % (names.index(n) % 250 + 1)) for n in others),
                names=dict((n, [address(n)]) for n in others),
                records_used=dict((n, digest(n)) for n in names), records_saved=False)
    steps = ['keys', 'address', 'record', 'firewall', 'mesh', 'rules', 'watcher']
    print(json.dumps(dict(
        changed=False, missing=[], os_family='Debian', steps=steps,
        keys=dict(changed=False), address=dict(changed=False), record=dict(changed=False, record=record),
        firewall=dict(changed=False, manager='nftables'), mesh=mesh, rules=dict(changed=False),
        watcher=dict(changed=False), public_key=record['public_key'], record_digest=digest(host), record_changed=False,
        firewall_manager='nftables', live_sources=False, records_used=mesh['records_used'], reached_before=others,
        peers_up=len(others), peers_relayed=0, peers_total=len(others), all_up=True,
        ansible_facts=dict(wglan_record=record))))


class PeakMemory:
    """The largest sum of PSS of the processes whose command line holds marker, every 0.2 s. MB."""

    def __init__(self, marker):
        self.marker = marker.encode()
        self.peak = 0.0
        self.done = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self):
        while not self.done.wait(0.2):
            total = 0
            for pid in os.listdir('/proc'):
                try:
                    with open('/proc/%s/cmdline' % pid, 'rb') as handle:
                        if self.marker not in handle.read():
                            continue
                    with open('/proc/%s/smaps_rollup' % pid) as handle:
                        total += sum(int(line.split()[1]) for line in handle if line.startswith('Pss:'))
                except (OSError, ValueError, IndexError):
                    continue
            self.peak = max(self.peak, total / 1024.0)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.done.set()
        self.thread.join()


def setup(work, size):
    """The inventory (every host this machine, its Python the stand-in) and a collection path."""
    python = os.path.join(work, 'python')
    os.makedirs(python)
    launcher = os.path.join(work, 'stand-in')
    with open(launcher, 'w') as handle:
        handle.write('#!%s\nimport sys\nsys.path.insert(0, %r)\nimport controller_scale\ncontroller_scale.stand_in()\n'
                     % (sys.executable, os.path.dirname(os.path.abspath(__file__))))
    os.chmod(launcher, 0o755)
    lines = ['[wglan]']
    for i in range(size):
        os.symlink(launcher, os.path.join(python, 'h%d' % i))
        lines.append('h%d ansible_connection=local ansible_become=false ansible_python_interpreter=%s'
                     % (i, os.path.join(python, 'h%d' % i)))
    inventory = os.path.join(work, 'inventory-%d.ini' % size)
    with open(inventory, 'w') as handle:
        handle.write('\n'.join(lines) + '\n')
    collections = os.path.join(work, 'collections', 'ansible_collections', 'wglan')
    if not os.path.exists(collections):
        os.makedirs(collections)
        os.symlink(ROOT, os.path.join(collections, 'mesh'))
    return inventory


def run(work, inventory, size, cmd):
    env = dict((k, v) for k, v in os.environ.items() if not k.startswith('ANSIBLE_'))
    env.update(ANSIBLE_COLLECTIONS_PATH=os.path.join(work, 'collections'), ANSIBLE_NOCOLOR='1',
               ANSIBLE_LOCAL_TEMP=os.path.join(work, 'tmp'), ANSIBLE_REMOTE_TMP=os.path.join(work, 'tmp'),
               WGLAN_STAND_IN_SIZE=str(size), ANSIBLE_PYTHON_INTERPRETER='auto_silent')
    start = time.monotonic()
    with PeakMemory(inventory) as memory:
        result = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                                env=env, cwd=work, timeout=7200, check=False)
    took = time.monotonic() - start
    if result.returncode != 0:
        raise SystemExit('%s failed:\n%s' % (' '.join(cmd[:3]), result.stdout[-3000:]))
    return took, memory.peak, result.stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--sizes', default='100,250,500,1000')
    parser.add_argument('--forks', default='5,25')
    args = parser.parse_args()
    work = tempfile.mkdtemp(prefix='wglan-controller-')
    rows = []
    try:
        for size in [int(s) for s in args.sizes.split(',')]:
            inventory = setup(os.path.join(work, str(size)), size)
            for forks in [int(f) for f in args.forks.split(',')]:
                floor, floor_mb, _out = run(os.path.dirname(inventory), inventory, size, [
                    'ansible', '-i', inventory, 'all', '--forks', str(forks), '-m', 'ansible.builtin.ping'])
                second, second_mb, out = run(os.path.dirname(inventory), inventory, size, [
                    'ansible-playbook', '-i', inventory, '--forks', str(forks), 'wglan.mesh.site'])
                changed = sum(int(n) for n in re.findall(r'changed=(\d+)', out))
                rows.append((size, forks, floor, second, floor_mb, second_mb, changed))
                print('%d hosts, %d forks: floor %.1f s, second run %.1f s' % (size, forks, floor, second), flush=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print()
    print('| hosts | forks | floor: -m ping s | second run s | x floor | per host ms (2nd run) | controller peak MB:'
          ' ping / site.yml | changed |')
    print('|---:|---:|---:|---:|---:|---:|---:|---:|')
    for size, forks, floor, second, floor_mb, second_mb, changed in rows:
        print('| %d | %d | %.1f | %.1f | %.1fx | %.0f | %.0f / %.0f | %d |' % (
            size, forks, floor, second, second / floor, second / size * 1000, floor_mb, second_mb, changed))
    return 0 if all(row[-1] == 0 for row in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
