"""Wall time of site.yml on the lab, with Ansible's defaults: first run, time until the whole mesh
answers, second run, --limit one machine, tasks per host; and one row with pipelining.

Each size gets a fresh lab: real nspawn machines, one public, the rest split over two NAT sites,
SSH from a controller namespace as a user with sudo, no ansible.cfg, no pipelining, five forks
(Ansible's defaults, as a fleet runs it). The pipelining row repeats the smallest size with that
one convenience on. Prints a table; the second and --limit runs must change nothing.

Usage (root): python3 benchmarks/playbook.py [--sizes 5,10,20] [--no-pipelining-row]
"""
import argparse
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'tests', 'lab'))

from lab import Lab, all_pairs, mesh_matrix, new_name, plan  # noqa: E402

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
    """One public hub, the rest split over two NAT sites."""
    behind_nat = size - 1
    return plan(public=1, sites=2, per_site=[behind_nat - behind_nat // 2, behind_nat // 2])


def timed(lab, *args, pipelining=False):
    start = time.monotonic()
    result = lab.playbook('playbooks/site.yml', *args, pipelining=pipelining, timeout=1800)
    took = time.monotonic() - start
    if result.returncode != 0:
        print(result.stdout[-3000:])
        raise RunFailed('site.yml %s failed after %.1f s: %s' % (' '.join(args), took, ', '.join(
            '%s %s' % (host, ' '.join('%s=%d' % (k, v) for k, v in counts.items() if k in ('failed', 'unreachable') and v))
            for host, counts in sorted(recap(result.stdout).items()) if counts.get('failed') or counts.get('unreachable'))))
    return took, recap(result.stdout)


class RunFailed(Exception):
    pass


def until_whole(lab, timeout=120):
    """Seconds until every ordered pair answers a ping over the mesh (None: not within timeout)."""
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        names, reach, _age = mesh_matrix(lab, wait=1)
        if all(reach[s][d] for s, d in all_pairs(names)):
            return time.monotonic() - start
        time.sleep(1)
    return None


def measure(size, pipelining=False):
    """One row; a run that fails is reported in the row (and the table goes on)."""
    lab = Lab(new_name())
    try:
        lab.up(layout_for(size))
        return measure_on(lab, size, pipelining)
    except RunFailed as exc:
        return dict(size=size, nat=size - 1, pipelining=pipelining, failed=str(exc))
    finally:
        lab.down()


def measure_on(lab, size, pipelining):
    first = timed(lab, pipelining=pipelining)[0]
    whole = until_whole(lab)
    second, counts = timed(lab, pipelining=pipelining)
    one = sorted(m for m in lab.machines() if not m.startswith('hub'))[0]
    limited, limit_counts = timed(lab, '--limit', one, pipelining=pipelining)
    changed = sum(c['changed'] for c in counts.values()) + sum(c['changed'] for c in limit_counts.values())
    tasks = max(c['ok'] for c in counts.values())
    return dict(size=size, nat=size - 1, pipelining=pipelining, boot=lab.state['timings'].get('boot', 0),
                first=first, whole=whole, second=second, limit=limited, tasks=tasks, changed=changed)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--sizes', default='5,10,20')
    parser.add_argument('--no-pipelining-row', action='store_true')
    args = parser.parse_args()
    sizes = [int(s) for s in args.sizes.split(',')]
    rows = [measure(size) for size in sizes]
    if not args.no_pipelining_row:
        rows.append(measure(sizes[0], pipelining=True))
    print('| machines (behind NAT) | Ansible | lab boot s | first run s | whole mesh s after it | second run s |'
          ' --limit one machine s | tasks run per host (2nd run) | changed on 2nd and --limit |')
    print('|---|---|---:|---:|---:|---:|---:|---:|---:|')
    for row in rows:
        if 'failed' in row:
            how = 'pipelining' if row['pipelining'] else 'defaults'
            print('| %d (%d) | %s | %s |' % (row['size'], row['nat'], how, row['failed']))
            continue
        print('| %d (%d) | %s | %.0f | %.1f | %s | %.1f | %.1f | %d | %d |' % (
            row['size'], row['nat'], 'pipelining' if row['pipelining'] else 'defaults', row['boot'], row['first'],
            '%.1f' % row['whole'] if row['whole'] is not None else 'not within 120 s', row['second'], row['limit'],
            row['tasks'], row['changed']))
    print()
    print('Anchor (measured before this work, same lab shape): | role | first run s | whole mesh s |'
          ' second run s | --limit s |')
    for anchor in ANCHOR:
        print('| %s | %s | %s | %s | %s |' % anchor)
    return 0 if all('failed' not in row and row['changed'] == 0 and row['whole'] is not None for row in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
