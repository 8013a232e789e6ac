"""Wall time of site.yml on the lab: first and second run, for 4 and 8 machines, and a --limit run.

Each size gets a fresh lab (real nspawn machines behind two NATs, SSH from a
controller namespace). Prints a table; the second run must change nothing.
The --limit run configures one machine behind NAT and reads the others'
records from them (the role's loop over the hosts outside the play).
Usage (root): python3 benchmarks/playbook.py [--sizes 4,8]
"""
import argparse
import os
import re
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'tests', 'lab'))

from lab import Lab, new_name, plan  # noqa: E402


def changed_tasks(output):
    return sum(int(n) for n in re.findall(r'^\S+\s+:\s+ok=\d+\s+changed=(\d+)', output, re.M))


def layout_for(size):
    """One public hub, the rest split over two NAT sites."""
    behind_nat = size - 1
    return plan(public=1, sites=2, per_site=[behind_nat - behind_nat // 2, behind_nat // 2]), size


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--sizes', default='4,8')
    args = parser.parse_args()
    rows = []
    for size in [int(s) for s in args.sizes.split(',')]:
        layout, real = layout_for(size)
        lab = Lab(new_name())
        try:
            lab.up(layout)
            times, changed = [], []
            for _run in range(2):
                start = time.monotonic()
                result = lab.playbook('playbooks/site.yml')
                times.append(time.monotonic() - start)
                if result.returncode != 0:
                    print(result.stdout[-3000:])
                    return 1
                changed.append(changed_tasks(result.stdout))
            start = time.monotonic()
            one = sorted(m for m in lab.machines() if not m.startswith('hub'))[0]
            result = lab.playbook('playbooks/site.yml', '--limit', one)
            if result.returncode != 0:
                print(result.stdout[-3000:])
                return 1
            times.append(time.monotonic() - start)
            rows.append((real, real - 1, lab.state['timings'].get('boot', 0), times[0], times[1], times[2],
                         changed[1]))
        finally:
            lab.down()
    print('| machines | of which behind NAT | lab boot s | first run s | second run s | --limit one machine s |'
          ' tasks changed on 2nd run |')
    print('|---:|---:|---:|---:|---:|---:|---:|')
    for row in rows:
        print('| %d | %d | %.1f | %.1f | %.1f | %.1f | %d |' % row)
    return 0 if all(row[-1] == 0 for row in rows) else 1


if __name__ == '__main__':
    sys.exit(main())
