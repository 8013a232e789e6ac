"""Key rotation without an outage, on real wireguard-go in namespaces, with the discovery service and watchers.

Run once per way the peers can be known: `inventory+discovery` is the node role's default when a
discovery service is configured (wglan_use_inventory true: the run gives each node the group's records,
made before the rotation, beside the live records of the service), `discovery` is a service alone
(wglan_use_inventory false), `inventory+kubernetes` the role's default with wglan_kubernetes (the
Node annotations, on the Kubernetes API test double, tests/kube_apiserver.py), and `kubernetes` the
annotations alone. The inventory's records of a rotated node keep its old key until the next run: every
node used to keep every other's old key after the switch (the run's record won), and lose them all.

Three nodes set up the way the node role does it, each with its watcher (key_overlap 4 s here, 30 s
by default). Pings run between every ordered pair, 10 a second, over the mesh's IPv6 and IPv4
addresses, while each node's key is rotated in turn (`wglan rotate-key --wait`, as the role does):
the node publishes its next key, every peer stands it by, at the switch time the node takes it and
every peer moves the node's addresses onto it. Measured: the packets lost (none here in most runs; a
switch may cost a packet a node sends in the milliseconds between its switch and its peers'). Also: the old key is gone from the host, the new key file is 0600,
every peer has the new key and not the old one, and a second rotation asked while one is pending
does not begin another.
"""
import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
import uuid

import pytest

from kubelab import DEBIAN_KUBECTL, Api, create
from netns import COLLECTIONS, Playbook, record_of, wait_for
from watchlab import service_world, watcher_cmd

TOKEN = 'rotation-token-%s' % uuid.uuid4().hex
URL = 'http://198.51.100.100:8443'
# (alone: the packets a switch loses depend on when each watcher gets the CPU; see conftest.py)
pytestmark = pytest.mark.serial
OVERLAY = '203.0.113.0/26'
NAMES = ('n1', 'n2', 'n3')
OVERLAP = 4
STATE = {}


@pytest.fixture(scope='module', params=['inventory+discovery', 'discovery', 'inventory+kubernetes', 'kubernetes'])
def world(request, tmp_path_factory):
    STATE.clear()
    work = str(tmp_path_factory.mktemp('rotate'))
    members = ((1, 'n1'), (2, 'n2'), (3, 'n3'))
    api = None
    with service_world(work, members, NAMES) as (tag, nodes, server, watchers):
        try:
            if request.param.endswith('kubernetes'):
                # the Kubernetes API (the test double) beside the service, the Nodes as kubelets register them
                api = Api(work, tag, ns=nodes['srv'], ip='198.51.100.100')
                for index, name in enumerate(NAMES, 1):
                    create(api, DEBIAN_KUBECTL, name, '198.51.100.%d' % index)
                STATE['kubeconfig'] = api.kubeconfig
            for name in NAMES:
                with open(os.path.join(nodes[name].workdir, 'watcher.json'), 'w') as handle:
                    json.dump(dict(resync=30, table='wglan%s' % tag, key_overlap=OVERLAP,
                                   rotate_request=os.path.join(nodes[name].workdir, 'rotate-key'),
                                   status_path=os.path.join(nodes[name].workdir, 'status.json')), handle)
            yield dict(nodes=nodes, watchers=watchers, tag=tag, sources=request.param, server=server)
        finally:
            if api is not None:
                watchers.stop_all()
                api.destroy()


def role_like(ns, name):
    """The node's record (wglan_record), as the role's first task makes it on every host."""
    STATE[name] = dict(STATE.get(name, {}), **record_of(ns, name))
    book = Playbook(ns, ns.workdir)
    record = book.one('wglan.mesh.wglan_record', dict(
        name=name, public_key=STATE[name]['public_key'], address=STATE[name]['address'], interface=ns.ifname,
        ipv4_prefix=OVERLAY, fact_path=os.path.join(ns.workdir, 'fact'), state_path=os.path.join(ns.workdir, 'mesh.json')))
    STATE[name]['address4'] = record['record']['address4']
    STATE[name]['published'] = record['record']


def role_like_peers(ns, name, sources):
    """Its peers (wglan_peers), as the role's next task configures them: with the group's records of this
    run (sources 'inventory+...'), and the service or the Kubernetes API."""
    book = Playbook(ns, ns.workdir)
    given = dict(members=list(NAMES), records=[STATE[n]['published'] for n in NAMES]) \
        if sources.startswith('inventory') else {}
    if sources.endswith('kubernetes'):
        given.update(kubeconfig=STATE['kubeconfig'], node_name=name)
    else:
        given.update(discovery_url=URL)
    result = book.one('wglan.mesh.wglan_peers', dict(
        interface=ns.ifname, backend='userspace', private_key_path=ns.key_path, addresses=[STATE[name]['cidr']],
        purge=True, self_name=name, cluster_token=TOKEN, publish=STATE[name]['published'],
        ipv4_prefix=OVERLAY, watcher=True, state_path=os.path.join(ns.workdir, 'mesh.json'),
        settings_path=os.path.join(ns.workdir, 'settings.json'), save_settings=True,
        relays_path=os.path.join(ns.workdir, 'paths.json'), **given))
    assert not result.get('failed'), result


def role_like_all(nodes, sources):
    """A run of the role on every node: every record first, then every node's peers."""
    for name in NAMES:
        role_like(nodes[name], name)
    for name in NAMES:
        role_like_peers(nodes[name], name, sources)


def peer_keys(ns):
    return set(ns.sh('wg show %s peers' % ns.ifname).stdout.split())


def own_key(ns):
    return ns.sh('wg show %s public-key' % ns.ifname).stdout.strip()


def pings_ok(nodes):
    return all(nodes[a].sh('ping -c 1 -W 1 %s' % STATE[b][family], check=False).returncode == 0
               for a in NAMES for b in NAMES if a != b for family in ('address', 'address4'))


def lost_spans(missing, interval=0.1):
    """The runs of lost pings (icmp_seq) as (from, to) seconds from the pings' start."""
    spans = []
    for seq in missing:
        if spans and seq == spans[-1][1] + 1:
            spans[-1][1] = seq
        else:
            spans.append([seq, seq])
    return [(round((a - 1) * interval, 1), round(b * interval, 1)) for a, b in spans]


def rotate(ns, wait=60):
    return subprocess.run(watcher_cmd(ns, 'rotate-key', '--wait', str(wait)), stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, timeout=wait + 30,
                          env=dict(os.environ, PYTHONPATH=COLLECTIONS), check=False)


def distinct_overlay_addresses(nodes):
    """The nodes' first places in the IPv4 overlay come from their keys, and in this /26 two collide about
    once in twenty runs; the watchers then move one (test_ipv4_overlay.py proves how). The pings here use
    each node's first address for the whole test: a node that collides gets a new key, before anything
    else is set up (a CI run lost every IPv4 ping to a node that had moved)."""
    for _attempt in range(20):
        seen = {}
        clashing = [n for n in NAMES if seen.setdefault(STATE[n]['address4'], n) != n]
        if not clashing:
            return
        for name in clashing:
            # (a new key, and no last record: a node keeps the address its last record held, whatever its key)
            os.remove(nodes[name].key_path)
            os.remove(os.path.join(nodes[name].workdir, 'fact'))
            role_like(nodes[name], name)
    raise AssertionError('the overlay addresses kept colliding: %s' % dict((n, STATE[n]['address4']) for n in NAMES))


def test_the_mesh_forms(world):
    nodes = world['nodes']
    for name in NAMES:
        role_like(nodes[name], name)
    distinct_overlay_addresses(nodes)
    for name in NAMES:
        role_like_peers(nodes[name], name, world['sources'])
    for name in NAMES:
        world['watchers'].start(nodes[name])
    assert wait_for(lambda: pings_ok(nodes), timeout=40, interval=0.5)


def test_rotating_every_key_in_turn_loses_no_ping(world):
    nodes = world['nodes']
    before = dict((n, own_key(nodes[n])) for n in NAMES)
    count = int((len(NAMES) * (OVERLAP + 6) + 10) / 0.1)  # (a bound: the pings stop 3 s after the last switch)
    pingers = []
    for a in NAMES:
        for b in NAMES:
            if a != b:
                for family in ('address', 'address4'):
                    cmd = ['ip', 'netns', 'exec', nodes[a].name, 'ping', '-n', '-i', '0.1', '-W', '1', '-c',
                           str(count), STATE[b][family]]
                    pingers.append(('%s->%s %s' % (a, b, family), subprocess.Popen(
                        cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True)))
    began, began_at = time.monotonic(), time.time()
    try:
        time.sleep(2)
        took, spans = {}, {}
        for name in NAMES:
            started = time.monotonic()
            done = rotate(nodes[name])
            took[name] = time.monotonic() - started
            spans[name] = (round(started - began, 1), round(started - began + took[name], 1))
            assert done.returncode == 0, done.stdout
            assert before[name] in done.stdout and own_key(nodes[name]) in done.stdout
        time.sleep(3)
        for _label, proc in pingers:
            proc.send_signal(signal.SIGINT)
        results, sent, gaps = {}, 0, {}
        for label, proc in pingers:
            output = proc.communicate(timeout=count * 0.1 + 60)[0]
            # lost: the pings sent that got no answer, but for the last one (under way when the pings were stopped)
            transmitted = int(re.search(r'(\d+) packets transmitted', output).group(1))
            answered = set(int(n) for n in re.findall(r'icmp_seq=(\d+) ttl=', output))
            missing = [n for n in range(1, transmitted) if n not in answered]  # (icmp_seq counts from 1)
            results[label] = len(missing)
            gaps[label] = lost_spans(missing)
            sent += transmitted - 1
    finally:
        for _label, proc in pingers:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    lost = sum(results.values())
    each = dict((n, round(t, 1)) for n, t in took.items())
    sys.stdout.write('\nkey rotation (%s) of %d nodes in turn (key_overlap %d s; %s s each), %d pairs x 2 families '
                     'at 10/s: %d of %d pings lost %s\n'
                     % (world['sources'], len(NAMES), OVERLAP, each, len(results) // 2, lost, sent, results))
    # A switch may cost what a node sends in the few milliseconds between its switch and its peers' (now and
    # then one packet). Under load (CI) a switch's handshakes cross now and then: the node that switched and a
    # peer with traffic for its new key both send one, WireGuard answers each and drops the answers, and neither
    # sent again for 5 s (CI runs lost 3.8 s and 7.7 s of two pairs). The node that switched now starts such a
    # pair again 0.3 s after the switch (logged): a crossed pair costs a flow up to about a second.
    bad = dict((flow, n) for flow, n in results.items() if n > 2)
    crossed = dict((flow, n) for flow, n in bad.items() if n <= 12)
    restarts = []
    for name in NAMES:
        with open(os.path.join(nodes[name].workdir, 'watcher.log')) as handle:
            restarts.extend('%s: %s' % (name, line.strip()) for line in handle if 'starting again' in line)
    if bad:
        # when: the seconds from the pings' start of each flow's losses, beside each rotation's; and the watchers' logs
        sys.stdout.write('pings from %s; rotations (s from then): %s\nlosses (s from then): %s\nrestarts: %s\n'
                         % (time.strftime('%H:%M:%S', time.localtime(began_at)) + '.%03d' % (began_at % 1 * 1000),
                            spans, dict((flow, gaps[flow]) for flow in bad), restarts))
        for name in NAMES:
            with open(os.path.join(nodes[name].workdir, 'watcher.log')) as handle:
                sys.stdout.write('--- %s watcher.log (end)\n%s\n' % (name, ''.join(handle.readlines()[-60:])))
    # (any flow over 1.2 s, a crossed pair the watchers did not start again, or more than two a switch besides)
    assert len(crossed) == len(bad) and (restarts or not crossed), results
    assert lost - sum(crossed.values()) <= 2 * len(NAMES), results
    after = dict((n, own_key(nodes[n])) for n in NAMES)
    for name in NAMES:
        assert after[name] != before[name]
        assert stat.S_IMODE(os.stat(nodes[name].key_path).st_mode) == 0o600
        assert not os.path.exists(nodes[name].key_path + '.next')
        for other in NAMES:
            if other != name:
                keys = peer_keys(nodes[other])
                assert after[name] in keys and before[name] not in keys, (name, other)
    assert pings_ok(nodes)


def test_a_run_with_the_records_from_before_the_rotation_keeps_the_new_keys(world):
    """A run of the module after the rotation with the group's records of the run before it (an ad-hoc run
    with the saved settings, a --limit run, facts from a cache): the rotations the live source announced
    are kept, so the old keys do not come back."""
    nodes = world['nodes']
    after = dict((n, own_key(nodes[n])) for n in NAMES)
    assert all(STATE[n]['published']['public_key'] != after[n] for n in NAMES)  # the records are the old ones
    for name in NAMES:
        role_like_peers(nodes[name], name, world['sources'])
    for name in NAMES:
        assert peer_keys(nodes[name]) == set(after[n] for n in NAMES if n != name), name
    assert wait_for(lambda: pings_ok(nodes), timeout=20, interval=0.5)


def test_a_handshake_lost_at_a_switch_is_sent_again_within_a_second(world):
    """At its switch a node sends a handshake to every peer. When it is lost (in CI runs under load: crossed
    with the peer's own, which WireGuard drops both of), WireGuard sends the next only 5 s later, and the pair
    is down meanwhile unless the peer's handshake gets through (a CI run lost 3.8 s and 7.7 s of two pairs).
    The node that switched looks again 0.3 s after it and starts each pair with no handshake since.

    Here n1's handshakes are dropped on their way out from 0.3 s before its switch to 0.2 s after, and n2's
    to 3 s after (n2 retries its own every 5 s from the moment it stood n1's next key by: without the drop
    it would now and then get through first). Pings one way (n1 to n2). Run with the role's default sources
    when a discovery service is configured (the inventory beside it).

    And the discovery service answers nothing from 0.1 s before the switch to 1.5 s after (stopped): the
    reconcile that publishes the new key waits for it, and the look at the pairs must not wait behind that
    reconcile (in the lab, over TLS, it took 0.75 s, and the restart came only then)."""
    if world['sources'] != 'inventory+discovery':
        pytest.skip('the restart does not depend on the sources: run once, with the role\'s default ones')
    nodes = world['nodes']
    n1, n2 = nodes['n1'], nodes['n2']
    server = world['server']
    table = 'wglantest%s' % world['tag']

    def drop_handshakes(ns):
        # (a handshake initiation: a UDP payload whose first byte is 1; in the node's own namespace only)
        port = int(ns.sh('wg show %s listen-port' % ns.ifname).stdout)
        ns.sh('nft add table inet %s && nft add chain inet %s out "{ type filter hook output priority 0; }" && '
              'nft add rule inet %s out udp sport %d @th,64,8 1 counter drop' % (table, table, table, port))

    pinger = subprocess.Popen(['ip', 'netns', 'exec', n1.name, 'ping', '-n', '-i', '0.1', '-W', '1', '-c', '200',
                               STATE['n2']['address']], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                              universal_newlines=True)
    rotation = subprocess.Popen(watcher_cmd(n1, 'rotate-key', '--wait', '60'), stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, universal_newlines=True,
                                env=dict(os.environ, PYTHONPATH=COLLECTIONS))
    try:
        assert wait_for(lambda: os.path.exists(n1.key_path + '.next.json'), timeout=10, interval=0.05)
        with open(n1.key_path + '.next.json') as handle:
            at = json.load(handle)['at']
        time.sleep(max(0.0, at - 0.3 - time.time()))
        drop_handshakes(n1)
        drop_handshakes(n2)
        time.sleep(max(0.0, at - 0.1 - time.time()))
        server.send_signal(signal.SIGSTOP)
        time.sleep(max(0.0, at + 0.2 - time.time()))
        dropped = [n1.sh('nft list table inet %s' % table).stdout]
        n1.sh('nft delete table inet %s' % table)
        time.sleep(max(0.0, at + 1.5 - time.time()))
        server.send_signal(signal.SIGCONT)
        time.sleep(max(0.0, at + 3 - time.time()))
        dropped.append(n2.sh('nft list table inet %s' % table).stdout)
        n2.sh('nft delete table inet %s' % table)
        sys.stdout.write('%s\n' % dropped)
        assert rotation.wait(90) == 0, rotation.stdout.read()
        time.sleep(4)
        pinger.send_signal(signal.SIGINT)
        output = pinger.communicate(timeout=30)[0]
    finally:
        server.send_signal(signal.SIGCONT)
        for proc in (pinger, rotation):
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        for ns in (n1, n2):
            ns.sh('nft delete table inet %s' % table, check=False)
    transmitted = int(re.search(r'(\d+) packets transmitted', output).group(1))
    # (answered within a second: WireGuard holds a peer's packets while it waits for a handshake, and a stalled
    # pair's pings come back late, all at once, rather than never)
    answered = set(int(n) for n, rtt in re.findall(r'icmp_seq=(\d+) ttl=\d+ time=([\d.]+) ms', output)
                   if float(rtt) < 1000)
    missing = [n for n in range(1, transmitted) if n not in answered]
    with open(os.path.join(n1.workdir, 'watcher.log')) as handle:
        restarted = [line for line in handle if 'starting again' in line]
    sys.stdout.write('\nhandshakes lost around the switch: %d of %d pings n1->n2 lost %s; %s\n'
                     % (len(missing), transmitted - 1, lost_spans(missing), restarted[-1:]))
    # (without the restart: 3 s or more, until n2's handshakes get through again)
    assert len(missing) <= 15, (lost_spans(missing), restarted)
    assert restarted and 'n2' in restarted[-1]
    # the first look, 0.3 s after the switch, came before the reconcile the stopped service held up
    assert float(re.search(r'([\d.]+) s after the switch', restarted[-1]).group(1)) < 1.0, restarted


def test_a_rotation_asked_while_one_is_pending_begins_no_other(world):
    n2 = world['nodes']['n2']
    log = os.path.join(n2.workdir, 'watcher.log')
    began = open(log).read().count('key rotation (asked for)')
    for attempt in range(2):
        with open(os.path.join(n2.workdir, 'rotate-key'), 'w') as handle:
            handle.write('rotate %d\n' % attempt)
        time.sleep(0.6)
    assert wait_for(lambda: not os.path.exists(n2.key_path + '.next'), timeout=OVERLAP + 10)
    assert open(log).read().count('key rotation (asked for)') == began + 1
    # and the secrets never show: no private key in the log
    with open(n2.key_path) as handle:
        secret = handle.read().strip()
    assert secret not in open(log).read()


def test_a_node_that_leaves_is_dropped_by_every_peer_within_seconds(world):
    """n3 leaves the mesh as the role's state absent does it: its watcher stopped, then wglan_peers state
    absent, which publishes its withdrawal (signed with its key) to the live source. Both peers drop it within
    seconds, although their settings still list it as a member with its record (the inventory's, of the last
    run), and a run of theirs with those records does not take it back."""
    nodes = world['nodes']
    n3 = nodes['n3']
    key3 = own_key(n3)
    world['watchers'].kill(n3)
    result = Playbook(n3, n3.workdir).one('wglan.mesh.wglan_peers', dict(
        interface=n3.ifname, settings_path=os.path.join(n3.workdir, 'settings.json'),
        hosts_path=os.path.join(n3.workdir, 'hosts'), state='absent'))
    assert not result.get('failed') and result['changed'], result
    assert result['withdrawn_from'] == (['kubernetes'] if world['sources'].endswith('kubernetes') else [URL]), result
    started = time.monotonic()
    assert wait_for(lambda: all(key3 not in peer_keys(nodes[n]) for n in ('n1', 'n2')), timeout=15, interval=0.2)
    sys.stdout.write('\n%s: n3 left, dropped by both peers %.1f s after its withdrawal\n'
                     % (world['sources'], time.monotonic() - started))
    role_like_peers(nodes['n1'], 'n1', world['sources'])
    assert key3 not in peer_keys(nodes['n1'])
    assert nodes['n1'].sh('ping -c 1 -W 1 %s' % STATE['n2']['address'], check=False).returncode == 0
