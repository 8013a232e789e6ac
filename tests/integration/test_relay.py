"""Relay on real wireguard-go, nftables and policy routing in namespaces.

x and y cannot reach each other directly: firewalls in x and y drop every
WireGuard packet between them where it arrives (what symmetric NAT on both
sides amounts to).
r reaches both and offers to relay. All three run the watcher with the
discovery service as the source. What is checked: after one full sweep x and y
go through r (allowed IPs moved, traffic flows, `status` says via r, the
relays are saved for wglan_peers, a wglan_peers run changes nothing); when
the firewalls go, the path is direct again without anyone's help; at rest no
probe is sent; a path that breaks under traffic is stale within seconds. The lab
version with real symmetric NAT routers is tests/lab/test_discovery.py.
"""
import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from ansible_collections.wglan.mesh.plugins.module_utils.daemon.liveness import PROBE_WAIT
from ansible_collections.wglan.mesh.plugins.module_utils.model.liveness import UNANSWERED
from netns import COLLECTIONS, Playbook, record_of, wait_for
from watchlab import service_world

TOKEN = 'relay-test-token-%s' % uuid.uuid4().hex
URL = 'http://198.51.100.100:8443'
SWEEP = 6.0
KEEPALIVE = 5  # a live path delivers something every 5 s; silence for 2 x 5 + 15 s marks it stale
METRICS_PORT = 9586
# Dropped where they arrive, in both x and y, as a broken path drops them on the way: each end's
# WireGuard still sends (and counts) what goes out. (A drop in the sender's own output hook fails
# the send itself, which WireGuard does not count as sent.)
BLOCK = '''
table inet wglanblock {
  chain in { type filter hook input priority 0; policy accept;
    ip saddr %s udp sport 51820 drop
  }
}
'''


def block(nodes):
    nodes['x'].cmd(['nft', '-f', '-'], input=BLOCK % '198.51.100.13')
    nodes['y'].cmd(['nft', '-f', '-'], input=BLOCK % '198.51.100.12')


def unblock(nodes):
    for name in ('x', 'y'):
        nodes[name].sh('nft delete table inet wglanblock')


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    work = str(tmp_path_factory.mktemp('relay'))
    with service_world(work, ((11, 'r'), (12, 'x'), (13, 'y')), ('r', 'x', 'y')) as (tag, nodes, _server, watchers):
        block(nodes)
        state = {}
        for name in ('r', 'x', 'y'):
            ns = nodes[name]
            with open(os.path.join(ns.workdir, 'watcher.json'), 'w') as handle:
                json.dump(dict(sweep_interval=SWEEP, resync=30, table='wglan%s' % tag, relay=name == 'r',
                               metrics_port=METRICS_PORT if name == 'x' else 0,
                               status_path=os.path.join(ns.workdir, 'status.json')), handle)
            state[name] = record_of(ns, name)
            record = dict(state[name]['record'], relay=True) if name == 'r' else state[name]['record']
            result = Playbook(ns, ns.workdir).one('wglan.mesh.wglan_peers', dict(
                interface=ns.ifname, backend='userspace', private_key_path=ns.key_path,
                addresses=[state[name]['cidr']], purge=True, self_name=name, discovery_url=URL,
                cluster_token=TOKEN, publish=record, state_path=os.path.join(ns.workdir, 'mesh.json'),
                persistent_keepalive=KEEPALIVE, watcher=True,
                settings_path=os.path.join(ns.workdir, 'settings.json'), save_settings=True,
                relays_path=os.path.join(ns.workdir, 'paths.json')))
            assert not result.get('failed'), result
        for name in ('r', 'x', 'y'):
            watchers.start(nodes[name])
        yield dict(nodes=nodes, state=state, tag=tag, watchers=watchers)


def allowed(ns, key):
    for line in ns.sh('wg show %s allowed-ips' % ns.ifname).stdout.splitlines():
        fields = line.split('\t')
        if fields[0] == key:
            return fields[1].split() if fields[1] != '(none)' else []
    return None


def received_from(ns, key):
    """Bytes ns's interface received from the peer with key."""
    for line in ns.sh('wg show %s transfer' % ns.ifname).stdout.splitlines():
        fields = line.split('\t')
        if fields[0] == key:
            return int(fields[1])
    raise AssertionError('%s has no peer %s' % (ns.name, key))


def status_rows(ns):
    """`wglan status --json` by peer name; {} before the watcher wrote its first status."""
    proc = ns.cmd([sys.executable, '-m', 'ansible_collections.wglan.mesh.plugins.module_utils.daemon.cli', 'status',
                   '--json', '--status-path', os.path.join(ns.workdir, 'status.json')],
                  env=dict(os.environ, PYTHONPATH=COLLECTIONS), check=False)
    if proc.returncode != 0:
        assert 'no status at' in proc.stderr, proc.stderr
        return {}
    return dict((row['name'], row) for row in json.loads(proc.stdout)['peers'])


def log_of(ns):
    with open(os.path.join(ns.workdir, 'watcher.log')) as handle:
        return handle.read()


def ping(ns, ip):
    return ns.sh('ping -c 1 -W 1 %s' % ip, check=False).returncode == 0


def test_no_direct_path_goes_through_the_relay(world):
    nodes, state = world['nodes'], world['state']
    x, y, r = nodes['x'], nodes['y'], nodes['r']
    started = time.monotonic()
    # x and y each reach r first (r is up for both and publishes that), then give up on each other.
    assert wait_for(lambda: status_rows(x).get('y', {}).get('path') == 'via r'
                    and status_rows(y).get('x', {}).get('path') == 'via r', timeout=60, interval=0.5), (
        log_of(x)[-3000:], log_of(y)[-3000:], x.sh('wg show').stdout)
    world['relay_seconds'] = time.monotonic() - started
    y_ip = '198.51.100.13/32'
    assert allowed(x, state['y']['public_key']) == []          # the peer stays, without addresses
    assert y_ip in allowed(x, state['r']['public_key'])         # its addresses go to the relay
    assert '198.51.100.12/32' in allowed(y, state['r']['public_key'])
    # r relays with every forwarding switch off: its netdev table sends what arrives for the other
    # peer back out of the link, the hop limit / TTL one less, IPv4 and IPv6, both ways.
    for switch in ('ipv4/conf/%s/forwarding' % r.ifname, 'ipv4/conf/all/forwarding', 'ipv6/conf/all/forwarding'):
        assert r.sh('cat /proc/sys/net/%s' % switch).stdout.strip() == '0', switch
    table = 'wglan%s_relay' % world['tag']
    assert wait_for(lambda: ping(x, '198.51.100.13'), timeout=10, interval=0.5), (
        log_of(r)[-2000:], r.sh('wg show').stdout, r.sh('nft list table netdev %s' % table, check=False).stdout)
    assert 'ttl=63' in x.sh('ping -c 1 -W 1 198.51.100.13').stdout  # one hop: TTL and checksum rewritten
    assert ping(y, '198.51.100.12')
    assert wait_for(lambda: ping(x, state['y']['address']), timeout=10, interval=0.5), (
        log_of(r)[-2000:], r.sh('nft list table netdev %s' % table, check=False).stdout)
    assert ping(y, state['x']['address'])
    # r counts what it relayed, per pair, in its status (and `wglan status`, and the metrics)

    def relayed_by_r():
        with open(os.path.join(r.workdir, 'status.json')) as handle:
            return dict(((row['source'], row['destination']), row['bytes']) for row in json.load(handle)['relayed'])
    assert wait_for(lambda: relayed_by_r().get(('x', 'y'), 0) > 0 and relayed_by_r().get(('y', 'x'), 0) > 0,
                    timeout=15, interval=1), relayed_by_r()
    hops = x.sh('ping -c 1 -W 1 %s' % state['y']['address']).stdout
    assert 'ttl=63' in hops or 'hlim=63' in hops, hops  # one hop: r took one off the hop limit
    # both families are counted, per pair of addresses
    for family in ('load6', 'load4'):
        listed = r.sh('nft list set netdev %s %s' % (table, family)).stdout
        assert 'counter packets' in listed, listed
    # agreement: x and y (one of them the pair's leader) name r in their records
    relays = dict((n, json.load(open(os.path.join(nodes[n].workdir, 'paths.json')))) for n in ('x', 'y'))
    assert relays['x']['relays'] == {state['y']['public_key']: state['r']['public_key']}, relays
    assert relays['y']['relays'] == {state['x']['public_key']: state['r']['public_key']}, relays
    # It goes through r: 20 pings of 1000 bytes from x are 20 kB more that r received from x
    # (keepalives, every 5 s, are 32 bytes).
    before = received_from(r, state['x']['public_key'])
    assert x.sh('ping -c 20 -i 0.2 -s 1000 -W 1 198.51.100.13', check=False).returncode == 0
    assert received_from(r, state['x']['public_key']) - before >= 20 * 1000
    with open(os.path.join(x.workdir, 'paths.json')) as handle:
        assert json.load(handle)['relays'] == {state['y']['public_key']: state['r']['public_key']}
    assert 'peer y: via r' in log_of(x)
    # wglan_info reports the watcher's view
    info = Playbook(x, x.workdir).one('wglan.mesh.wglan_info', dict(
        interface=x.ifname, watcher_status=os.path.join(x.workdir, 'status.json')))
    rows = dict((row['name'], row) for row in info['watcher']['peers'])
    assert rows['y']['path'] == 'via r' and rows['r']['state'] == 'up', info['watcher']
    assert 0 <= info['watcher']['age'] < 10
    # a run's wait for handshakes counts y as settled (relayed through r, which is up) ...
    waited = Playbook(x, x.workdir).one('wglan.mesh.wglan_info', dict(
        interface=x.ifname, wait=20, relays_path=os.path.join(x.workdir, 'paths.json')))
    assert waited['peers_relayed'] == 1 and waited['peers_up'] == 1 and waited['waited'] < 5, waited
    # ... where without the watcher's relays it waits the whole time for a handshake that does not come
    waited = Playbook(x, x.workdir).one('wglan.mesh.wglan_info', dict(
        interface=x.ifname, wait=3, relays_path=os.path.join(x.workdir, 'none.json')))
    assert waited['peers_relayed'] == 0 and waited['waited'] >= 3, waited
    # and so do its Prometheus metrics (opt-in port, loopback of x's namespace)
    fetch = ('import urllib.request; print(urllib.request.urlopen("http://127.0.0.1:%d/metrics", timeout=5)'
             '.read().decode())' % METRICS_PORT)
    metrics = x.cmd([sys.executable, '-c', fetch]).stdout
    assert 'wglan_peer_relayed{peer="y",public_key="%s",via="r"} 1' % state['y']['public_key'] in metrics, metrics
    assert 'wglan_peer_up{peer="r",public_key="%s"} 1' % state['r']['public_key'] in metrics, metrics
    assert '# TYPE wglan_peer_receive_bytes_total counter' in metrics
    assert 'wglan_peers 2' in metrics


def test_a_wglan_peers_run_keeps_the_relay(world):
    x, state = world['nodes']['x'], world['state']
    result = Playbook(x, x.workdir).one('wglan.mesh.wglan_peers', dict(
        watcher=True, interface=x.ifname, discovery_url=URL, cluster_token=TOKEN, backend='userspace',
        private_key_path=x.key_path, purge=True, self_name='x', state_path=os.path.join(x.workdir, 'mesh.json'),
        publish=state['x']['record'], relays_path=os.path.join(x.workdir, 'paths.json'),
        persistent_keepalive=KEEPALIVE))
    assert not result.get('failed'), result
    assert result['changed'] is False, result  # neither the relay nor the swept endpoint is undone
    assert allowed(x, state['y']['public_key']) == []
    assert '198.51.100.13/32' in allowed(x, state['r']['public_key'])
    # The ad-hoc form (no arguments but the settings file the setup saved) is just as quiet.
    adhoc = Playbook(x, x.workdir).one('wglan.mesh.wglan_peers', dict(
        settings_path=os.path.join(x.workdir, 'settings.json')))
    assert not adhoc.get('failed') and adhoc['changed'] is False, adhoc


def test_direct_again_when_a_path_opens(world):
    nodes, state = world['nodes'], world['state']
    x, y = nodes['x'], nodes['y']
    unblock(nodes)
    opened = time.monotonic()
    assert wait_for(lambda: status_rows(x).get('y', {}).get('path') == 'direct'
                    and status_rows(x)['y']['state'] == 'up', timeout=4 * SWEEP + 10, interval=0.5), (
        log_of(x)[-3000:], x.sh('wg show').stdout)
    world['direct_seconds'] = time.monotonic() - opened
    assert wait_for(lambda: '198.51.100.13/32' in (allowed(x, state['y']['public_key']) or []), timeout=3)
    assert '198.51.100.13/32' not in allowed(x, state['r']['public_key'])
    assert wait_for(lambda: '198.51.100.12/32' in (allowed(y, state['x']['public_key']) or []), timeout=10)
    assert ping(x, '198.51.100.13')
    with open(os.path.join(x.workdir, 'paths.json')) as handle:
        assert json.load(handle)['relays'] == {}


def probes(ns):
    with open(os.path.join(ns.workdir, 'status.json')) as handle:
        return json.load(handle)['probes']


def test_a_mesh_at_rest_sends_no_probes(world):
    """At rest each end hears the other's keepalive only every second interval (WireGuard restarts
    the keepalive timer on every packet, received ones too, so the two ends take turns): a probe
    after one missed keepalive would fire every cycle on a healthy mesh. None may."""
    x = world['nodes']['x']
    time.sleep(KEEPALIVE)  # whatever the last test sent is answered
    before = dict((name, probes(world['nodes'][name])) for name in ('x', 'y', 'r'))
    time.sleep(3 * KEEPALIVE)  # (a probe after one missed keepalive would fire every 2 keepalives)
    after = dict((name, probes(world['nodes'][name])) for name in ('x', 'y', 'r'))
    assert after == before, (before, after, log_of(x)[-1500:])
    assert status_rows(x)['y']['state'] == 'up' and status_rows(x)['r']['state'] == 'up'


def test_a_path_that_breaks_is_noticed_before_275_s_and_relayed(world):
    x = world['nodes']['x']
    # x keeps sending to y (a ping every 0.5 s) when the path breaks
    traffic = subprocess.Popen(['ip', 'netns', 'exec', x.name, 'ping', '-i', '0.5', '-W', '1', '198.51.100.13'],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        block(world['nodes'])
        broke = time.monotonic()
        # The handshake is recent (WireGuard would call the peer up for 275 s), but nothing arrives any
        # more while x sends data: after UNANSWERED s the watcher probes y (an echo through the tunnel)
        # and, with no answer within PROBE_WAIT, calls it stale: well before the backstop of 2
        # keepalives + 15 s of silence (25 s here), and before a peer at rest would be probed (15 s).
        assert wait_for(lambda: status_rows(x).get('y', {}).get('state') == 'stale',
                        timeout=UNANSWERED + PROBE_WAIT + 4, interval=0.5), (log_of(x)[-2000:], x.sh('wg show').stdout)
        stale = time.monotonic() - broke
        assert probes(x) >= 1  # the silence was probed before y counted as stale
        assert 'peer y: silent for' in log_of(x) and 'with data unanswered, probing' in log_of(x)
    finally:
        traffic.kill()
        traffic.wait(10)
    assert wait_for(lambda: status_rows(x).get('y', {}).get('path') == 'via r', timeout=4 * SWEEP + 20,
                    interval=0.5), (log_of(x)[-3000:], x.sh('wg show').stdout)
    relayed = time.monotonic() - broke
    assert wait_for(lambda: ping(x, '198.51.100.13'), timeout=15, interval=0.5)
    sys.stdout.write('\nrelay took over after %.1f s; direct again %.1f s after the path opened; a broken path '
                     'was stale after %.1f s and relayed after %.1f s\n'
                     % (world['relay_seconds'], world['direct_seconds'], stale, relayed))
