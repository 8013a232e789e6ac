"""Segments and the segment filter on real wireguard-go and nftables in namespaces, with the discovery
service and watchers.

Four nodes on one switch (each could reach every other directly): a1 in segment a, b1 in segment b, gw
in both (with the watcher's relay on: the gateway), c1 alone in segment c. Each is set up the way the
node role does it: wglan_record with its segments, wglan_peers from the discovery service, its watcher.
What is checked: a1 and b1 are not each other's peers, each has the other's addresses on the gateway's
entry, and they ping each other through the gateway (one hop more: the hop limit shows it); c1, which
no gateway joins, is nobody's peer and reaches nobody. Then the segment filter (segment_policy, kept by
the watchers): only what the policy lets across segments passes, in one direction; a bad policy is
refused and the filter stays.
"""
import json
import os
import re
import signal
import subprocess
import uuid

import pytest

from netns import Playbook, record_of, wait_for
from watchlab import service_world

TOKEN = 'segments-token-%s' % uuid.uuid4().hex
URL = 'http://198.51.100.100:8443'
SEGMENTS = dict(a1=['a'], gw=['a', 'b'], b1=['b'], c1=['c'])
STATE = {}


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    work = str(tmp_path_factory.mktemp('segments'))
    members = ((1, 'a1'), (2, 'gw'), (3, 'b1'), (4, 'c1'))
    with service_world(work, members, tuple(SEGMENTS)) as (tag, nodes, server, watchers):
        for name in SEGMENTS:
            with open(os.path.join(nodes[name].workdir, 'watcher.json'), 'w') as handle:
                json.dump(dict(resync=30, table='wglan%s' % tag, relay=name == 'gw',
                               status_path=os.path.join(nodes[name].workdir, 'status.json')), handle)
        for name in SEGMENTS:
            join(nodes[name], name)
        for name in SEGMENTS:
            watchers.start(nodes[name])
        yield dict(nodes=nodes, watchers=watchers, tag=tag)


def join(ns, name, segs=None, **mesh):
    """wglan_record then wglan_peers, as the node role calls them (segs: the node's segments, SEGMENTS' by
    default; mesh: more options of wglan_peers)."""
    segs = SEGMENTS[name] if segs is None else segs
    STATE[name] = record_of(ns, name)
    book = Playbook(ns, ns.workdir)
    record = book.one('wglan.mesh.wglan_record', dict(
        name=name, public_key=STATE[name]['public_key'], address=STATE[name]['address'], interface=ns.ifname,
        segments=segs, relay=name == 'gw', fact_path=os.path.join(ns.workdir, 'wglan.fact'),
        state_path=os.path.join(ns.workdir, 'mesh.json')))
    assert not record.get('failed'), record
    assert record['record'].get('segments', []) == sorted(segs)
    result = book.one('wglan.mesh.wglan_peers', dict(
        interface=ns.ifname, backend='userspace', private_key_path=ns.key_path, addresses=[STATE[name]['cidr']],
        purge=True, self_name=name, discovery_url=URL, cluster_token=TOKEN, publish=record['record'], watcher=True,
        state_path=os.path.join(ns.workdir, 'mesh.json'), settings_path=os.path.join(ns.workdir, 'settings.json'),
        save_settings=True, relays_path=os.path.join(ns.workdir, 'paths.json'), **mesh))
    assert not result.get('failed'), result
    return result


def allowed(ns):
    """{peer public key: [allowed IPs]} of the node's device."""
    out = {}
    for line in ns.sh('wg show %s allowed-ips' % ns.ifname).stdout.splitlines():
        fields = line.split()
        out[fields[0]] = sorted(f for f in fields[1:] if f != '(none)')
    return out


def hop_limit(src, dst):
    """The hop limit of dst's answer to one ping from src over the mesh (None: no answer)."""
    proc = src.sh('ping -6 -c 1 -W 2 %s' % STATE[dst]['address'], check=False)
    found = re.search(r'ttl=(\d+)', proc.stdout)
    return int(found.group(1)) if proc.returncode == 0 and found else None


def key(name):
    return STATE[name]['public_key']


def test_a_full_mesh_inside_a_segment_and_the_other_segment_through_the_gateway(world):
    nodes = world['nodes']
    b1_address = '%s/128' % STATE['b1']['address']
    a1_address = '%s/128' % STATE['a1']['address']
    assert wait_for(lambda: set(allowed(nodes['a1'])) == {key('gw')} and b1_address in allowed(nodes['a1'])[key('gw')],
                    timeout=30, interval=0.5), allowed(nodes['a1'])
    assert wait_for(lambda: set(allowed(nodes['b1'])) == {key('gw')} and a1_address in allowed(nodes['b1'])[key('gw')],
                    timeout=30, interval=0.5), allowed(nodes['b1'])
    # the gateway has both as peers, each with its own addresses only
    assert wait_for(lambda: {key('a1'), key('b1')} <= set(allowed(nodes['gw'])), timeout=30, interval=0.5)
    assert b1_address in allowed(nodes['gw'])[key('b1')] and a1_address not in allowed(nodes['gw'])[key('b1')]
    # a1 and b1 reach each other through the gateway: one hop more than a peer directly
    assert wait_for(lambda: hop_limit(nodes['a1'], 'b1') == 63, timeout=30, interval=0.5), hop_limit(nodes['a1'], 'b1')
    assert hop_limit(nodes['b1'], 'a1') == 63
    assert hop_limit(nodes['a1'], 'gw') == 64
    # (the gateway's relay table forwards them: its counters have the pair)
    table = nodes['gw'].sh('nft list table netdev wglan%s_relay' % world['tag']).stdout
    assert STATE['a1']['address'] in table and STATE['b1']['address'] in table, table


def test_a_node_no_gateway_joins_is_nobody_s_peer_and_reaches_nobody(world):
    nodes = world['nodes']
    assert allowed(nodes['c1']) == {}
    for name in ('a1', 'gw', 'b1'):
        assert key('c1') not in allowed(nodes[name]), name
    assert hop_limit(nodes['a1'], 'c1') is None and hop_limit(nodes['c1'], 'a1') is None


POLICY = [{'from': 'a', 'to': 'b', 'ports': [8080]}]
CONNECT = 'python3 -c "import socket; socket.create_connection((\'%s\', 8080), 2)"'


def connects(src, dst):
    return src.sh(CONNECT % STATE[dst]['address'], check=False).returncode == 0


def test_the_segment_filter_lets_in_the_node_s_segments_and_what_the_policy_allows(world):
    """segment_policy [a to b, TCP 8080] on every node, taken by the watchers from the saved settings: a1 opens
    TCP 8080 on b1 through the gateway, but neither pings the other (no entry lets ICMP across, either way);
    each still pings the gateway (its own segment). A run of the rules beside the watcher keeps the filter."""
    nodes, watchers = world['nodes'], world['watchers']
    server = subprocess.Popen(['ip', 'netns', 'exec', nodes['b1'].name, 'python3', '-m', 'http.server', '8080',
                               '--bind', '::'], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert wait_for(lambda: connects(nodes['a1'], 'b1'), timeout=15, interval=0.5), 'no filter yet: a1 reaches b1'
        for name in SEGMENTS:
            result = join(nodes[name], name, segment_policy=POLICY)
            assert not result['changed'] or result['peers_changed'] == [], result  # (the filter is the watcher's)
            watchers.procs[nodes[name].name].send_signal(signal.SIGHUP)
        table = 'wglan%s' % world['tag']
        assert wait_for(lambda: all(nodes[n].sh('nft list chain inet %s filter_in' % table, check=False).returncode == 0
                                    for n in SEGMENTS), timeout=15, interval=0.5)
        assert wait_for(lambda: hop_limit(nodes['a1'], 'b1') is None, timeout=10, interval=0.5)
        assert hop_limit(nodes['b1'], 'a1') is None
        assert connects(nodes['a1'], 'b1')                       # a to b, TCP 8080, through the gateway
        assert not connects(nodes['b1'], 'a1')                   # (nothing listens there; and b to a is not allowed)
        assert hop_limit(nodes['a1'], 'gw') == 64 and hop_limit(nodes['b1'], 'gw') == 64
        assert hop_limit(nodes['gw'], 'a1') == 64 and hop_limit(nodes['gw'], 'b1') == 64
        # a run of the rules (as the role makes one beside the watcher) keeps the watcher's filter
        rules = Playbook(nodes['b1'], nodes['b1'].workdir).one('wglan.mesh.wglan_rules', dict(
            interface=nodes['b1'].ifname, table=table))
        assert not rules.get('failed') and rules['changed'] is False, rules
        assert connects(nodes['a1'], 'b1') and hop_limit(nodes['a1'], 'b1') is None
    finally:
        server.kill()
        server.wait(10)


def test_a_bad_policy_is_refused_and_the_filter_stays(world):
    nodes = world['nodes']
    book = Playbook(nodes['a1'], nodes['a1'].workdir)
    bad = book.one('wglan.mesh.wglan_peers', dict(settings_path=os.path.join(nodes['a1'].workdir, 'settings.json'),
                                                  segment_policy=[{'from': 'a', 'to': 'B'}]))
    assert bad.get('failed') and 'not a segment name' in bad['msg'], bad
    assert hop_limit(nodes['a1'], 'gw') == 64 and hop_limit(nodes['b1'], 'a1') is None
