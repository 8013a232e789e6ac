"""The demo: a lab of real machines behind two NATs, site.yml, who reaches whom, and the picture of
the mesh (playbooks/graph.yml) in docs/demo-mesh.svg, which the README shows.

    python3 tests/lab/demo.py [--per-site 2] [--keep] [--picture docs/demo-mesh.svg]
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from lab import Lab, format_matrix, full_mesh, mesh_matrix, new_name, plan  # noqa: E402

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--per-site', type=int, default=2)
    parser.add_argument('--keep', action='store_true', help='leave the lab up (tear down: tests/lab/lab.py down)')
    parser.add_argument('--picture', default=os.path.join(ROOT, 'docs', 'demo-mesh.svg'),
                        help='where the picture of the mesh goes')
    args = parser.parse_args()
    steps = []
    lab = Lab(new_name())
    try:
        start = time.monotonic()
        lab.up(plan(public=1, sites=2, per_site=args.per_site))
        steps.append(('lab up (%d machines: hub1 public; sites a and b behind NAT)' % len(lab.machines()),
                      time.monotonic() - start))
        print('lab %s: %s' % (lab.name, ', '.join(lab.machines())))
        for label in ('site.yml, first run', 'site.yml, second run'):
            start = time.monotonic()
            result = lab.playbook('playbooks/site.yml')
            took = time.monotonic() - start
            recap = [line for line in result.stdout.splitlines() if ' : ok=' in line]
            print('\n%s (%.1fs):\n  %s' % (label, took, '\n  '.join(recap)))
            steps.append((label, took))
            if result.returncode != 0:
                print('\n'.join(line for line in result.stdout.splitlines() if 'UNREACHABLE' in line or 'fatal:' in line))
                print(result.stdout[-4000:])
                return 1
        start = time.monotonic()
        _names, _reach, status = full_mesh(lab)
        steps.append(('every pair pings over the mesh (the watchers complete it)', time.monotonic() - start))
        names, reach, age = mesh_matrix(lab)
        print('\nwho reaches whom over wglan0 (ok/FAIL, seconds since the last handshake):\n')
        print(format_matrix(names, reach, age))
        print('\n`wglan status` on a1:\n\n' + status.get('a1', ''))
        start = time.monotonic()
        drawn = lab.playbook('wglan.mesh.graph', '-e', 'wglan_graph_dest=%s' % os.path.abspath(args.picture))
        if drawn.returncode != 0:
            print(drawn.stdout[-3000:])
            return 1
        steps.append(('graph.yml: the picture of the mesh, %s' % os.path.relpath(args.picture, ROOT), time.monotonic() - start))
        print('\nthe mesh as a picture: %s (open it in a browser)' % args.picture)
        print('\nsteps:')
        for label, took in steps:
            print('  %6.1fs  %s' % (took, label))
        ok = all(reach[s][d] for s in names for d in names if s != d)
        print('\n%s' % ('the mesh is complete' if ok else 'the mesh is NOT complete'))
        if args.keep:
            print('lab left up: ip netns exec %s ssh ...; inventory %s; tear down: python3 tests/lab/lab.py down'
                  ' --name %s' % (lab.controller, lab.inventory, lab.name))
        return 0 if ok else 1
    finally:
        if not args.keep:
            lab.down()


if __name__ == '__main__':
    sys.exit(main())
