"""Wall time of site.yml on the lab, with Ansible's defaults, beside Ansible's own floor: first run,
time until every node has a handshake with every other (read from the devices), second run, --limit
one machine, the floor (`ansible all -m ansible.builtin.ping`, same settings, right after the second
run), bytes the controller sent to one host, the controller's peak memory; and one row with pipelining.

Each size gets a fresh lab: real nspawn machines, one public, the rest split over two NAT sites (four
from 20 machines on), SSH from a controller namespace as a user with sudo, no ansible.cfg, no
pipelining, five forks (Ansible's defaults, as a fleet runs it; --forks adds rows with more). The
pipelining row repeats the smallest size with that one convenience on. Prints a table; the second
and --limit runs must change nothing.

Usage (root): python3 benchmarks/playbook.py [--sizes 5,20,50] [--forks 5,25] [--no-pipelining-row]
"""
import argparse
import os
import re
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'tests', 'lab'))

from lab import Lab, new_name, plan  # noqa: E402

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# (PSS of the processes whose command line holds the lab's inventory: ansible-playbook and its forks, not ssh)
from controller_scale import PeakMemory  # noqa: E402

# The anchor, measured on a 5-machine lab like this one (one public machine, two NAT sites) before
# this role's one-call runs: githubixx/ansible-role-wireguard 18.3.0, the most used WireGuard role on
# Ansible Galaxy (it formed 8 of the 20 pairs), and this role's previous version.
ANCHOR = [
    ('githubixx.ansible_role_wireguard 18.3.0, 5 machines, its defaults', '34.7', '-', '32.4', '-'),
    ('wglan.mesh 0.4, 5 machines, pipelining on', '60', '+11', '45', '20'),
]


def recap(output):
    return dict((host, dict((k, int(v)) for k, v in re.findall(r'(\w+)=(\d+)', counts)))
                for host, counts in re.findall(r'^(\S+)\s+:\s+(ok=.*)$', output, re.M))


def layout_for(size):
    """One public hub, the rest split over two NAT sites (four from 20 machines on)."""
    behind_nat = size - 1
    sites = 4 if size >= 20 else 2
    return plan(public=1, sites=sites, per_site=[behind_nat // sites + (1 if s < behind_nat % sites else 0)
                                                 for s in range(sites)])


def received(lab, mname):
    """Bytes the machine's one link has received (read from outside: no SSH of ours in the count)."""
    out = subprocess.run(['ip', 'netns', 'exec', lab.ns(mname), 'cat', '/sys/class/net/eth0/statistics/rx_bytes'],
                         stdout=subprocess.PIPE, universal_newlines=True, check=True)
    return int(out.stdout)


def timed(lab, *args, pipelining=False, forks=5, watch=None):
    """One site.yml run: (seconds, recap, bytes the machine `watch` received meanwhile), and its peak memory
    on the controller in lab.peaks."""
    before = received(lab, watch) if watch else 0
    start = time.monotonic()
    with PeakMemory(lab.inventory) as memory:
        result = lab.playbook('playbooks/site.yml', '--forks', str(forks), *args, pipelining=pipelining, timeout=3600)
    took = time.monotonic() - start
    lab.peaks = getattr(lab, 'peaks', []) + [memory.peak]
    if result.returncode != 0:
        print(result.stdout[-3000:])
        raise RunFailed('site.yml %s failed after %.1f s: %s' % (' '.join(args), took, ', '.join(
            '%s %s' % (host, ' '.join('%s=%d' % (k, v) for k, v in counts.items() if k in ('failed', 'unreachable') and v))
            for host, counts in sorted(recap(result.stdout).items()) if counts.get('failed') or counts.get('unreachable'))))
    return took, recap(result.stdout), (received(lab, watch) - before) if watch else None


class RunFailed(Exception):
    pass


def mem_available():
    """MB the host's kernel counts available (MemAvailable)."""
    with open('/proc/meminfo') as handle:
        return next(int(line.split()[1]) for line in handle if line.startswith('MemAvailable:')) / 1024.0


def floor(lab, forks, watch):
    """`ansible all -m ansible.builtin.ping`, the same settings as the runs: (seconds, bytes to `watch`)."""
    before = received(lab, watch)
    start = time.monotonic()
    result = subprocess.run(['ip', 'netns', 'exec', lab.controller, 'ansible', '-i', lab.inventory, 'all', '--become',
                             '--forks', str(forks), '-m', 'ansible.builtin.ping'],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                            env=lab._ansible_env(), timeout=1800, cwd=lab.dir, check=False)
    took = time.monotonic() - start
    if result.returncode != 0:
        raise RunFailed('ansible -m ping failed: %s' % result.stdout[-2000:])
    return took, received(lab, watch) - before


def handshakes(lab, mname):
    """(own public key, {peer key: seconds of its last handshake, 0 for none}) from the machine's device."""
    out = lab.ssh(mname, 'wg show wglan0 public-key; wg show wglan0 latest-handshakes', check=False, timeout=60)
    lines = out.stdout.split('\n')
    found = dict((k, int(t)) for k, t in (line.split() for line in lines[1:] if len(line.split()) == 2))
    return lines[0].strip(), found


def until_whole(lab, timeout=300):
    """Seconds until every node's device has a handshake with every other node (None: not within timeout)."""
    start = time.monotonic()
    names = lab.machines()
    with ThreadPoolExecutor(10) as pool:
        while time.monotonic() - start < timeout:
            seen = dict(zip(names, pool.map(lambda m: handshakes(lab, m), names)))
            keys = set(key for key, _peers in seen.values())
            if all(all(peers.get(other, 0) > 0 for other in keys - {key}) for key, peers in seen.values()):
                return time.monotonic() - start
            time.sleep(1)
    return None


def measure(size, pipelining=False, forks=5):
    """One row; a run that fails is reported in the row (and the table goes on)."""
    lab = Lab(new_name())
    try:
        available = mem_available()
        lab.up(layout_for(size))
        time.sleep(5)  # (the machines' boot settles)
        per_machine = (available - mem_available()) / size
        return dict(measure_on(lab, size, pipelining, forks), per_machine=per_machine)
    except (RunFailed, RuntimeError) as exc:  # (RuntimeError: the lab did not come up)
        return dict(size=size, nat=size - 1, pipelining=pipelining, forks=forks, failed=str(exc))
    finally:
        lab.down()


def measure_on(lab, size, pipelining, forks):
    one = sorted(m for m in lab.machines() if not m.startswith('hub'))[0]
    first = timed(lab, pipelining=pipelining, forks=forks)[0]
    whole = until_whole(lab)
    second, counts, second_bytes = timed(lab, pipelining=pipelining, forks=forks, watch=one)
    floor_s, floor_bytes = floor(lab, forks, one)
    limited, limit_counts, limit_bytes = timed(lab, '--limit', one, pipelining=pipelining, forks=forks, watch=one)
    changed = sum(c['changed'] for c in counts.values()) + sum(c['changed'] for c in limit_counts.values())
    tasks = max(c['ok'] for c in counts.values())
    peak = max(lab.peaks)
    return dict(size=size, nat=size - 1, pipelining=pipelining, forks=forks, boot=lab.state['timings'].get('boot', 0),
                first=first, whole=whole, second=second, limit=limited, tasks=tasks, changed=changed,
                floor=floor_s, second_bytes=second_bytes, floor_bytes=floor_bytes, limit_bytes=limit_bytes,
                peak=peak)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--sizes', default='5,20,50')
    parser.add_argument('--forks', default='5', help='comma-separated: a row per size for each (5: the default)')
    parser.add_argument('--no-pipelining-row', action='store_true')
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(',')]
    rows = [measure(size, forks=int(forks)) for size in sizes for forks in args.forks.split(',')]
    if not args.no_pipelining_row:
        rows.append(measure(sizes[0], pipelining=True))
    print('| machines (behind NAT) | Ansible | lab boot s | first run s (x floor) | every pair\'s handshake s after it |'
          ' second run s (x floor) | floor: -m ping s | --limit one machine s | KB to one host: 2nd run / floor / --limit |'
          ' controller peak MB | MB per machine (booted) | tasks run per host (2nd run) | changed on 2nd and --limit |')
    print('|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|')
    for row in rows:
        how = ('pipelining' if row['pipelining'] else 'defaults') + ('' if row['forks'] == 5 else ', %d forks' % row['forks'])
        if 'failed' in row:
            print('| %d (%d) | %s | %s |' % (row['size'], row['nat'], how, row['failed']))
            continue
        print('| %d (%d) | %s | %.0f | %.1f (%.1fx) | %s | %.1f (%.1fx) | %.1f | %.1f | %.0f / %.0f / %.0f | %.0f | %.0f | %d | %d |' % (
            row['size'], row['nat'], how, row['boot'], row['first'], row['first'] / row['floor'],
            '%.1f' % row['whole'] if row['whole'] is not None else 'not within 300 s', row['second'],
            row['second'] / row['floor'], row['floor'], row['limit'], row['second_bytes'] / 1024.0,
            row['floor_bytes'] / 1024.0, row['limit_bytes'] / 1024.0, row['peak'], row['per_machine'], row['tasks'],
            row['changed']))
    print()
    print('Anchor (measured before this work, same lab shape): | role | first run s | whole mesh s |'
          ' second run s | --limit s |')
    for anchor in ANCHOR:
        print('| %s | %s | %s | %s | %s |' % anchor)
    return 0 if all('failed' not in row and row['changed'] == 0 and row['whole'] is not None for row in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
