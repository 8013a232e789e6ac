"""wglan_peers with the discovery service as its only source, on real wireguard-go.

Three namespaces on one switch: the service and two nodes that are in no
inventory together; each learns the other only from the service. Also: both
ends derive the same per-pair preshared key, an unreachable service leaves the
mesh as it was, a JMESPath selector narrows the peers, the token never shows.
"""
import json
import os
import subprocess
import sys
import uuid

import pytest

from netns import ALL_OUTPUT, COLLECTIONS, DISCOVERY_SERVER, Playbook, record_of, switched, wait_for

TOKEN = 'discovery-test-token-%s' % uuid.uuid4().hex
SERVICE_IP = '198.51.100.100'
URL = 'http://%s:8443' % SERVICE_IP


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    tag = uuid.uuid4().hex[:6]
    work = str(tmp_path_factory.mktemp('disc'))
    spaces = []
    server = None
    try:
        nodes = switched(tag, ((100, 'srv'), (1, 'n1'), (2, 'n2')), ('n1', 'n2'), work, spaces)
        env = dict(os.environ, PYTHONPATH=COLLECTIONS)
        server = subprocess.Popen(['ip', 'netns', 'exec', nodes['srv'].name, sys.executable, DISCOVERY_SERVER,
                                   '--listen', '%s:8443' % SERVICE_IP, '--db', os.path.join(work, 'db')],
                                  env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        assert wait_for(lambda: nodes['n1'].sh('python3 -c "import socket; socket.create_connection((\'%s\', 8443), 1)"'
                                               % SERVICE_IP, check=False).returncode == 0, timeout=15)
        yield dict(nodes=nodes, server=server)
    finally:
        if server is not None and server.poll() is None:
            server.kill()
        for ns in reversed(spaces):
            ns.destroy()


def peers_args(ns, name, record, **extra):
    args = dict(interface=ns.ifname, backend='userspace', private_key_path=ns.key_path,
                addresses=[record['cidr']], purge=True, self_name=name, discovery_url=URL,
                cluster_token=TOKEN, publish=record['record'], state_path=os.path.join(ns.workdir, 'mesh.json'))
    args.update(extra)
    return args


STATE = {}


def run_peers(ns, name, _check=False, **extra):
    return Playbook(ns, ns.workdir).one('wglan.mesh.wglan_peers', peers_args(ns, name, STATE[name], **extra),
                                        check=_check)


def test_nodes_learn_each_other_only_from_the_service(world):
    n1, n2 = world['nodes']['n1'], world['nodes']['n2']
    STATE['n1'] = record_of(n1, 'n1')
    STATE['n2'] = record_of(n2, 'n2')
    first = run_peers(n1, 'n1')
    assert not first.get('failed'), first
    assert first['discovery'] == dict(reached=True, observed='198.51.100.1', records=1, services=[
        dict(url=URL, reached=True, observed='198.51.100.1', records=1)])
    assert first['peers_added'] == []
    assert any('plain HTTP' in w and URL in w for w in first['warnings']), first['warnings']
    second = run_peers(n2, 'n2')
    assert second['peers_added'] == [STATE['n1']['public_key']]
    assert second['endpoints']['n1'] == dict(endpoint='198.51.100.1:51820', reason='same-link')
    third = run_peers(n1, 'n1')
    assert third['peers_added'] == [STATE['n2']['public_key']]
    again = [run_peers(n1, 'n1'), run_peers(n2, 'n2')]
    assert [r['changed'] for r in again] == [False, False], 'publishing again is not a change'


def test_pairs_share_a_derived_preshared_key_and_traffic_flows(world):
    n1, n2 = world['nodes']['n1'], world['nodes']['n2']
    psk1 = n1.sh('wg show %s preshared-keys' % n1.ifname).stdout.split()
    psk2 = n2.sh('wg show %s preshared-keys' % n2.ifname).stdout.split()
    assert psk1[1] == psk2[1] and psk1[1] != '(none)'
    assert wait_for(lambda: n1.sh('ping -6 -c 1 -W 2 %s' % STATE['n2']['address'], check=False).returncode == 0,
                    timeout=15, interval=0.5)


def test_the_service_says_where_an_inventory_node_is_now(world):
    """n2 also has n1 in its inventory, with the addresses of a place n1 left since the last run: where n1
    is comes from the service, which n1 keeps current (who n1 is stays the inventory's)."""
    n2 = world['nodes']['n2']
    stale = dict(STATE['n1']['record'], node_ips=['203.0.113.77/24'])
    result = run_peers(n2, 'n2', members=['n1', 'n2'], records=[stale, STATE['n2']['record']],
                       state_path=os.path.join(n2.workdir, 'mixed.json'), _check=True)
    assert not result.get('failed'), result
    assert result['endpoints']['n1'] == dict(endpoint='198.51.100.1:51820', reason='same-link')


WATCHES_SCRIPT = r'''
import json, sys, threading, time
sys.path.insert(0, %(collections)r)
from ansible_collections.wglan.mesh.plugins.module_utils.daemon.watches import Watches
from ansible_collections.wglan.mesh.plugins.module_utils.sources.discovery import DiscoveryClient
client = DiscoveryClient(%(url)r, %(token)r)
events, stop = [], threading.Event()
watches = Watches(events.append, stop)
key = 'd2dsYW4gd2F0Y2ggdGVzdCBrZXksIDMyIGJ5dGVzISE='
# The watcher's reconcile read the service; a member publishes before the watcher's long poll starts.
client.publish({'name': 'late', 'public_key': key, 'address': '200:1001::77', 'node_ips': ['198.51.100.77/24'],
                'port': 51820})
watches.start({'discovery_url': %(url)r, 'cluster_token': %(token)r, 'cluster_id': None, 'discovery_ca': None}, [])
deadline = time.monotonic() + 15  # (an answer comes at once; the bound is for a loaded machine)
while not events and time.monotonic() < deadline:
    time.sleep(0.05)
seen = list(events)  # before the delete below, which the poll still running may report as a second change
stop.set()
client.delete(key)
print(json.dumps(seen))
'''


def test_the_watcher_reconciles_for_a_change_made_before_its_long_poll_started(world):
    """The watcher reads the service, then starts its long poll: a record published in between is
    older than the poll's first answer. The first answer asks for a reconcile."""
    script = WATCHES_SCRIPT % dict(collections=COLLECTIONS, url=URL, token=TOKEN)
    proc = world['nodes']['n1'].cmd([sys.executable, '-c', script], timeout=60)
    assert json.loads(proc.stdout.strip().splitlines()[-1]) == ['discovery service changed'], proc.stdout + proc.stderr


def test_unreachable_service_keeps_the_mesh(world):
    n1 = world['nodes']['n1']
    world['server'].kill()
    world['server'].wait(10)
    before = n1.sh('wg show %s peers' % n1.ifname).stdout
    result = run_peers(n1, 'n1')
    assert not result.get('failed') and result['changed'] is False
    assert result['discovery']['reached'] is False
    assert any('unreachable' in w and 'keeping the 2 records' in w for w in result['warnings']), result['warnings']
    assert n1.sh('wg show %s peers' % n1.ifname).stdout == before


def test_selector_narrows_peers(world):
    n1 = world['nodes']['n1']
    result = run_peers(n1, 'n1', peer_selector='nodes[?name == `nobody`]')
    assert result['peers_removed'] == [STATE['n2']['public_key']]
    result = run_peers(n1, 'n1', peer_selector="nodes[?name != 'n1']")
    assert result['peers_added'] == [STATE['n2']['public_key']]


def test_token_never_printed(world):
    assert TOKEN not in '\n'.join(ALL_OUTPUT)
