"""Peer reconcile at scale on a real wireguard-go interface, against wg(8).

For N peers: (a) first apply from empty, (b) no-op reconcile, (c) change one
peer's endpoint, (d) remove one peer. Beside each, in the same run, wg(8) doing
the same on the same interface with the same configuration: setconf for (a),
showconf and syncconf for (b), syncconf for (c) and (d). Ours is the library
call the module makes (read device, diff, send the difference), measured in
process; wg's figures include its process start, which is part of using it.
"Ops sent" counts the peers named in what actually went over the UAPI socket.

Runs in a network namespace it creates and removes. Needs root, wireguard-go, wg.
Usage: python3 benchmarks/peers_scale.py [--sizes 10,100,1000,5000] [--repeat 5]
"""
import argparse
import base64
import os
import statistics
import subprocess
import sys
import tempfile
import time
import uuid

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'tests'))
# makes ansible_collections.wglan.mesh importable
import collection  # noqa: E402,F401  pylint: disable=unused-import
from ansible_collections.wglan.mesh.plugins.module_utils.model import keys
from ansible_collections.wglan.mesh.plugins.module_utils.model import peers as model
from ansible_collections.wglan.mesh.plugins.module_utils.model import plan
from ansible_collections.wglan.mesh.plugins.module_utils.host import wg_device
from ansible_collections.wglan.mesh.plugins.module_utils.host import wg_uapi  # noqa: E402

NS = os.environ.get('WGLAN_BENCH_NS') or 'wglan-bench-%s' % uuid.uuid4().hex[:6]
IFNAME = os.environ.get('WGLAN_BENCH_IF') or 'wgb%s' % uuid.uuid4().hex[:6]
SENT = []


def run_in_namespace():
    """Make the namespace, run this script again inside it, always tear it down."""
    subprocess.run(['ip', 'netns', 'add', NS], check=True)
    try:
        subprocess.run(['ip', 'netns', 'exec', NS, 'ip', 'link', 'set', 'lo', 'up'], check=True)
        env = dict(os.environ, WGLAN_BENCH_NS=NS, WGLAN_BENCH_IF=IFNAME)
        return subprocess.run(['ip', 'netns', 'exec', NS, sys.executable] + sys.argv, env=env, check=False).returncode
    finally:
        sock = wg_uapi.socket_path(IFNAME)
        if os.path.exists(sock):
            os.unlink(sock)
        pids = subprocess.run(['ip', 'netns', 'pids', NS], stdout=subprocess.PIPE,
                              universal_newlines=True, check=False).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), 9)
            except OSError:
                pass
        subprocess.run(['ip', 'netns', 'del', NS], check=False)


def record_requests():
    original = wg_uapi.UapiBackend._exchange

    def exchange(self, request):
        if request.startswith('set=1'):
            SENT.append(request.count('\npublic_key='))
        return original(self, request)
    wg_uapi.UapiBackend._exchange = exchange


def make_peers(n):
    out = []
    for i in range(n):
        out.append({
            'public_key': base64.b64encode(os.urandom(32)).decode(),
            'endpoint': '%s.%d:%d' % ('198.51.100' if i % 2 else '203.0.113', 1 + i % 250, 40000 + i % 20000),
            'allowed_ips': ['200:1001::%x:%x/128' % (i >> 16, i & 0xffff), 'fd00:10:%x::/64' % i],
            'persistent_keepalive': 25,
        })
    return out


def wg_conf(private_key, raw_peers):
    lines = ['[Interface]', 'PrivateKey = %s' % base64.b64encode(private_key).decode(),
             'ListenPort = 51820', 'FwMark = 0x20', '']
    for p in raw_peers:
        lines += ['[Peer]', 'PublicKey = %s' % p['public_key'], 'Endpoint = %s' % p['endpoint'],
                  'AllowedIPs = %s' % ', '.join(p['allowed_ips']),
                  'PersistentKeepalive = %d' % p['persistent_keepalive'], '']
    return '\n'.join(lines)


def timed(func):
    start = time.perf_counter()
    func()
    return time.perf_counter() - start


def wg(*args):
    subprocess.run(['wg'] + list(args), check=True, stdout=subprocess.DEVNULL)


def ours(config, peer_list, purge=True):
    """What wglan_peers does: read the device, plan against it (model.plan), apply the plan's operations."""
    topo = plan.Topology(peer_list, {}, {}, [], [])  # (validated already: the input validation row)
    found = wg_device.read_device(config.ifname, plan.needs_handshakes(topo))
    the_plan = plan.plan(topo, found[2] if found else None, None, time.time(), purge=purge)
    return wg_device.apply_device(config, the_plan.peers, purge=purge, current=found, ops=the_plan.ops)


def showconf():
    subprocess.run(['wg', 'showconf', IFNAME], check=True, stdout=subprocess.DEVNULL)


def fmt(value, form='%.1f'):
    return '-' if value is None else form % value


def median_ms(samples):
    return statistics.median(samples) * 1000


def bench(n, repeat, private_key, config, workdir):
    raw = make_peers(n)
    parse_times = []
    for _rep in range(repeat):
        start = time.perf_counter()
        peer_list = model.parse_peers(raw)
        model.resolve_overlaps(peer_list)
        parse_times.append(time.perf_counter() - start)
    conf = os.path.join(workdir, 'full.conf')
    with open(conf, 'w') as handle:
        handle.write(wg_conf(private_key, raw))
    empty = os.path.join(workdir, 'empty.conf')
    with open(empty, 'w') as handle:
        handle.write(wg_conf(private_key, []))
    rows = {'input validation (parse, overlaps)': (median_ms(parse_times), None, '-', None)}

    a_ours, a_wg = [], []
    for _rep in range(repeat):
        wg('setconf', IFNAME, empty)
        a_ours.append(timed(lambda: ours(config, peer_list)))
        wg('setconf', IFNAME, empty)
        a_wg.append(timed(lambda: wg('setconf', IFNAME, conf)))
    rows['(a) first apply'] = (median_ms(a_ours), median_ms(a_wg), 'wg setconf', None)

    wg('setconf', IFNAME, empty)
    ours(config, peer_list)
    for _warm in range(3):
        ours(config, peer_list)
        showconf()
    del SENT[:]
    b_ours, b_show, b_sync = [], [], []
    for _rep in range(repeat):
        # interleaved, so both sides meet the same state of wireguard-go (its GC, caches)
        b_ours.append(timed(lambda: ours(config, peer_list)))
        b_show.append(timed(showconf))
        b_sync.append(timed(lambda: wg('syncconf', IFNAME, conf)))
    b_sent = sum(SENT)
    rows['(b) no-op reconcile'] = (median_ms(b_ours), median_ms(b_show), 'wg showconf', b_sent)
    rows['(b) no-op reconcile '] = (median_ms(b_ours), median_ms(b_sync), 'wg syncconf', b_sent)

    c_ours, c_wg, c_sent = [], [], []
    for rep in range(repeat):
        changed = list(peer_list)
        changed[n // 2] = changed[n // 2].replace(endpoint='192.0.2.%d:51820' % (1 + rep))
        del SENT[:]
        c_ours.append(timed(lambda: ours(config, changed)))
        c_sent.append(sum(SENT))
        raw_changed = [dict(p) for p in raw]
        raw_changed[n // 2]['endpoint'] = '192.0.2.%d:51821' % (1 + rep)
        with open(conf + '.c', 'w') as handle:
            handle.write(wg_conf(private_key, raw_changed))
        c_wg.append(timed(lambda: wg('syncconf', IFNAME, conf + '.c')))
    rows['(c) change one endpoint'] = (median_ms(c_ours), median_ms(c_wg), 'wg syncconf', max(c_sent))

    d_ours, d_wg, d_sent = [], [], []
    with open(conf + '.d', 'w') as handle:
        handle.write(wg_conf(private_key, raw[1:]))
    for _rep in range(repeat):
        wg('setconf', IFNAME, conf)
        del SENT[:]
        d_ours.append(timed(lambda: ours(config, peer_list[1:])))
        d_sent.append(sum(SENT))
        wg('setconf', IFNAME, conf)
        d_wg.append(timed(lambda: wg('syncconf', IFNAME, conf + '.d')))
    rows['(d) remove one peer'] = (median_ms(d_ours), median_ms(d_wg), 'wg syncconf', max(d_sent))
    return rows


def main():
    parser = argparse.ArgumentParser(description=__doc__.split('\n', maxsplit=1)[0])
    parser.add_argument('--sizes', default='10,100,1000,5000')
    parser.add_argument('--repeat', type=int, default=9)
    args = parser.parse_args()
    if os.geteuid() != 0:
        sys.exit('needs root (network namespace)')
    sizes = [int(s) for s in args.sizes.split(',')]
    if 'WGLAN_BENCH_NS' not in os.environ:
        sys.exit(run_in_namespace())
    record_requests()
    workdir = tempfile.mkdtemp(prefix='wglan-bench-')
    try:
        private_key = keys.generate_private_key()
        config = wg_device.DeviceConfig(IFNAME, private_key, backend='userspace')
        ours(config, [])
        print('wireguard-go %s, interface in namespace %s, median of %d runs, times in ms'
              % (subprocess.run(['dpkg-query', '-W', '-f=${Version}', 'wireguard-go'], stdout=subprocess.PIPE,
                                universal_newlines=True, check=False).stdout or '?', NS, args.repeat))
        print()
        print('| N | case | wglan.mesh | wg(8) | wg command | ratio | ops sent |')
        print('|---:|---|---:|---:|---|---:|---:|')
        for n in sizes:
            for case, (mine, theirs, what, sent) in bench(n, args.repeat, private_key, config, workdir).items():
                ratio = None if theirs is None else mine / theirs
                print('| %d | %s | %s | %s | %s | %s | %s |' % (
                    n, case.strip(), fmt(mine), fmt(theirs), what, fmt(ratio, '%.2fx'), fmt(sent, '%d')))
            sys.stdout.flush()
    finally:
        wg_device.remove_device(IFNAME)


if __name__ == '__main__':
    main()
