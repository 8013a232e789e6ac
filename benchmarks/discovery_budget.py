"""The discovery service against attacks on its memory, under its unit's memory limit.

Each attack of tests/integration/test_discovery_attacks.py that aims at memory, run against this
version of the service and (with --server) another one, each in a memory cgroup of its own with the
role's MemoryMax (256 MiB: past it the kernel kills the service, as it would the unit), TLS on, the
role's 10 s handshake deadline, inside a network namespace this script makes:
- silent: 3000 TCP connections from one address that never begin their TLS handshake;
- long polls: 3000 TLS connections from 50 addresses, each holding a watch;
- slow readers: 640 TLS connections from 10 addresses that ask for a full cluster's listing (1024 records
  of 2 KiB, 2.9 MB) and never read it;
- restart: the service started on a database of 55 000 records of 2 KB.
For each: connections (or, at a restart, records) the service held, its peak resident memory against the budget, whether the
kernel killed it, a normal client's p50 / p99 (a new TLS connection and one request, 100 times from
50 addresses, during the attack) and its failures.
Usage (root): python3 benchmarks/discovery_budget.py [--server PATH]
    (PATH: another version of roles/discovery/files/wglan_discovery.py, e.g. from git show)
"""
import argparse
import os
import sys
import tempfile
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'tests'))
sys.path.insert(0, os.path.join(os.path.dirname(HERE), 'tests', 'integration'))
import collection  # noqa: E402,F401  pylint: disable=unused-import

import netns  # noqa: E402
import test_discovery_attacks as attacks  # noqa: E402

RESTART = '''
time.sleep(2)
took = normal_latencies(100)
print(json.dumps(dict(held=health().get('members', 0), took=took)))
'''


def attack(name, server, label, workdir):
    from ansible_collections.wglan.mesh.plugins.module_utils.host import discovery_tls
    tls = discovery_tls.ensure(os.path.join(workdir, 'tls'), ['127.0.0.1'])
    client = attacks.TLS_CLIENT.replace('CA', repr(tls['ca_pem']), 1)
    service = attacks.Service(uuid.uuid4().hex[:6], workdir, sys.executable)
    cage = netns.MemoryLimit(uuid.uuid4().hex[:6], attacks.BUDGET)
    program = attacks.DISCOVERY_SERVER
    try:
        if server:
            attacks.DISCOVERY_SERVER = server
        flags = ['--cert', os.path.join(workdir, 'tls', 'server.pem'), '--key', os.path.join(workdir, 'tls', 'server.key'),
                 '--header-timeout', '10']
        if not server:
            flags += ['--memory-budget', '256M']  # (as the role's unit gives it)
        db = attacks.big_database(os.path.join(workdir, 'big.db')) if name == 'restart' else None
        with attacks.Peak(service) as starting:
            service.start(*flags, cage=cage, db=db)
        code = dict(restart=RESTART, silent=attacks.SILENT_ATTACK).get(name)
        if name == 'slow readers':
            service.run(client + attacks.SLOW_FILL, timeout=300)
            code = attacks.SLOW_READERS
        if name == 'long polls':
            version = service.run(client + 'connect = secure; print(json.dumps(put("polled", member(1), 1, '
                                  'src="127.0.3.1")))')[1]['version']
            code = attacks.POLLS_ATTACK.replace('VERSION', str(version))
        before = service.rss_kib() << 10
        with attacks.Peak(service) as peak:
            out = service.run(client + code, timeout=300)
        took = sorted(out['took'])
        failed = sum(1 for t in took if t >= 99)
        ok = [t for t in took if t < 99] or [0.0]
        return dict(attack=name, server=label, held=out['held'], before=before >> 20,
                    peak=max(peak.peak, starting.peak) >> 20,
                    killed=(not service.alive()) or cage.oom_kills() > 0, p50=ok[len(ok) // 2] * 1000,
                    p99=ok[min(len(ok) - 1, int(0.99 * len(ok)))] * 1000, failed=failed)
    finally:
        attacks.DISCOVERY_SERVER = program
        service.destroy()
        cage.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--server', help='another version of the server program, to compare')
    args = parser.parse_args()
    servers = [(None, 'this version')] + ([(os.path.abspath(args.server), 'other: %s' % os.path.basename(args.server))]
                                          if args.server else [])
    rows = []
    with tempfile.TemporaryDirectory(prefix='wglan-budget-') as workdir:
        for name in ('silent', 'long polls', 'slow readers', 'restart'):
            for server, label in servers:
                place = os.path.join(workdir, uuid.uuid4().hex[:6])
                os.makedirs(place)
                rows.append(attack(name, server, label, place))
                sys.stderr.write('%s\n' % rows[-1])
    print('| attack | server | connections held | memory before / peak (budget %d MiB) | killed | normal client p50 / '
          'p99 (ms) | normal client failed |' % (attacks.BUDGET >> 20))
    print('|---|---|---:|---:|---|---:|---:|')
    for r in rows:
        latency = '%.1f / %.1f' % (r['p50'], r['p99']) if r['failed'] < 100 else '-'
        print('| %s | %s | %d | %d / %d MiB | %s | %s | %d of 100 |'
              % (r['attack'], r['server'], r['held'], r['before'], r['peak'], 'yes' if r['killed'] else 'no',
                 latency, r['failed']))


if __name__ == '__main__':
    main()
