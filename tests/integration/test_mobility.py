"""Pod networking and a machine that moves, on real wireguard-go, nftables and NAT in namespaces.

m1 sits behind a home router (NAT site A, port-preserving masquerade, nothing
unsolicited let in); m2 and m3 are on the public switch; srv runs the discovery
service. All three run the watcher with pod networking on, m2 offers to relay.
What is checked:
- a peer's pod CIDR (IPv4 and IPv6) is reached through the tunnel, the only
  way there: a pod (its own namespace, plugged into m2 with a veth the way a
  CNI does it; the kernel here has no dummy interfaces) answers pings from m1
  and m3; m2's address on the pod link is not published as a node IP;
- m3 moves behind another router (NAT site B, new address, new public
  address): its watcher notices its new addresses, publishes them, the others
  notice the move, and every pair is reached again, m1-m3 included (both
  behind NAT now, which needs both sides to learn the new place), well within
  the 65 s in which a broken path would only be noticed as stale.
The lab version (real machines, systemd) is tests/lab/test_discovery.py.
"""
import json
import os
import time
import uuid

import pytest

from netns import Namespace, Playbook, move, nat_router, record_of, veth, wait_for
from watchlab import service_world

TOKEN = 'mobility-test-token-%s' % uuid.uuid4().hex
URL = 'http://198.51.100.100:8443'
PODS = dict(m1=['203.0.113.16/28', 'fd77:10:1::/64'], m2=['203.0.113.32/28', 'fd77:10:2::/64'],
            m3=['203.0.113.48/28', 'fd77:10:3::/64'])
NAMES = ('m1', 'm2', 'm3')
MOVE_BOUND = 45.0  # a path that broke shows as stale only after 2 x 25 + 15 s: this must be quicker


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    work = str(tmp_path_factory.mktemp('mobility'))
    with service_world(work, ((1, 'm1'), (2, 'm2'), (3, 'm3')), NAMES) as (tag, nodes, _server, watchers):
        routers = []
        try:
            sw = Namespace.existing('wglan-%s-sw' % tag)  # service_world's switch
            site_a = nat_router(tag, sw, 'rta', '198.51.100.60', '192.0.2.1/26', routers)
            site_b = nat_router(tag, sw, 'rtb', '198.51.100.61', '192.0.2.65/26', routers)
            move(nodes['m1'], site_a, '192.0.2.10/26', '192.0.2.1')
            for name in NAMES:
                # every node has default routes, as real ones do (the first route lookup needs one);
                # on the public switch they lead nowhere: no other host there forwards
                nodes[name].sh('ip -6 route add default dev eth0' if name == 'm1' else
                               'ip route add default dev eth0 && ip -6 route add default dev eth0')
            # a pod on m2, the way a CNI plugs one in: its own namespace, a veth, m2 forwarding
            pod = Namespace('wglan-%s-pod2' % tag)
            routers.append(pod)
            veth(nodes['m2'], 'pod0', pod, 'eth0')
            nodes['m2'].sh('ip addr add 203.0.113.46/28 dev pod0 && ip addr add fd77:10:2::fe/64 dev pod0 && '
                           'sysctl -qw net.ipv4.ip_forward=1 net.ipv6.conf.all.forwarding=1')
            pod.sh('ip addr add 203.0.113.33/28 dev eth0 && ip addr add fd77:10:2::1/64 dev eth0 && '
                   'ip route add default via 203.0.113.46 && ip -6 route add default via fd77:10:2::fe')
            state = {}
            for name in NAMES:
                ns = nodes[name]
                with open(os.path.join(ns.workdir, 'watcher.json'), 'w') as handle:
                    json.dump(dict(resync=30, table='wglan%s' % tag, relay=name == 'm2',
                                   status_path=os.path.join(ns.workdir, 'status.json')), handle)
                state[name] = record_of(ns, name)
                record = dict(state[name]['record'], pod_cidrs=PODS[name], relay=name == 'm2')
                result = Playbook(ns, ns.workdir).one('wglan.mesh.wglan_peers', dict(
                    interface=ns.ifname, backend='userspace', private_key_path=ns.key_path,
                    addresses=[state[name]['cidr']], purge=True, self_name=name, discovery_url=URL,
                    cluster_token=TOKEN, publish=record, state_path=os.path.join(ns.workdir, 'mesh.json'),
                    pod_networking=True, watcher=True, settings_path=os.path.join(ns.workdir, 'settings.json'),
                    save_settings=True, relays_path=os.path.join(ns.workdir, 'paths.json')))
                assert not result.get('failed'), result
            for name in NAMES:
                watchers.start(nodes[name])
            yield dict(nodes=nodes, state=state, tag=tag, site_b=site_b, watchers=watchers)
        finally:
            watchers.stop_all()
            for ns in reversed(routers):
                ns.destroy()


def ping(ns, ip):
    return ns.sh('ping -c 1 -W 1 %s' % ip, check=False).returncode == 0


def unreached(world):
    """Ordered pairs whose mesh addresses do not answer a ping."""
    nodes, state = world['nodes'], world['state']
    return [(a, b) for a in NAMES for b in NAMES if a != b and not ping(nodes[a], state[b]['address'])]


def log_of(ns):
    with open(os.path.join(ns.workdir, 'watcher.log')) as handle:
        return handle.read()


def status(ns):
    with open(os.path.join(ns.workdir, 'status.json')) as handle:
        return dict((row['name'], row) for row in json.load(handle)['peers'])


def published(world, name):
    """name's record as the discovery service holds it, read from m2's watcher's records (its own file)."""
    with open(os.path.join(world['nodes']['m2'].workdir, 'watcher-mesh.json')) as handle:
        return json.load(handle)['discovery'].get(name)


def test_the_mesh_forms_with_one_node_behind_nat(world):
    assert wait_for(lambda: not unreached(world), timeout=90, interval=1), (
        unreached(world), dict((n, log_of(world['nodes'][n])[-1500:]) for n in NAMES))


def test_a_peer_s_pod_cidr_is_reached_through_the_tunnel(world):
    nodes = world['nodes']
    m2_key = world['state']['m2']['public_key']
    for name in ('m1', 'm3'):
        allowed = nodes[name].sh('wg show %s allowed-ips' % nodes[name].ifname).stdout
        line = [entry for entry in allowed.splitlines() if entry.startswith(m2_key)][0]
        assert '203.0.113.32/28' in line and 'fd77:10:2::/64' in line, line
        # nothing but the tunnel leads to the pod's 203.0.113.33 or fd77:10:2::1 (m1's default route
        # goes to its NAT router, which knows neither; m3's leads nowhere)
        assert wait_for(lambda: ping(nodes[name], '203.0.113.33'), timeout=20, interval=0.5), name
        assert wait_for(lambda: ping(nodes[name], 'fd77:10:2::1'), timeout=20, interval=0.5), name
        for element, target_set in (('203.0.113.33', 'targets4'), ('fd77:10:2::1', 'targets6')):
            found = nodes[name].sh('nft get element inet wglan%s %s { %s }' % (world['tag'], target_set, element),
                                   check=False)
            assert found.returncode == 0, (name, element, found.stderr)
    # an address of the pod CIDR that nobody holds gets no answer: the replies above came from the pod
    assert not ping(nodes['m1'], '203.0.113.34')
    # m2's address on the pod link is not where m2 is: not published as a node IP
    assert wait_for(lambda: published(world, 'm2'), timeout=10)
    assert published(world, 'm2')['node_ips'] == ['198.51.100.2/24'], published(world, 'm2')


def test_a_machine_that_moves_to_another_site_is_reached_again(world):
    nodes = world['nodes']
    assert wait_for(lambda: not unreached(world), timeout=60, interval=1), unreached(world)
    moved = time.monotonic()
    move(nodes['m3'], world['site_b'], '192.0.2.70/26', '192.0.2.65')
    nodes['m3'].sh('ip -6 route add default dev eth0')
    assert wait_for(lambda: not unreached(world), timeout=120, interval=0.5), (
        unreached(world), dict((n, log_of(nodes[n])[-2000:]) for n in NAMES))
    took = time.monotonic() - moved
    path = status(nodes['m1'])['m3'].get('path')
    print('\nm3 moved behind NAT site B: every pair reached again after %.1f s (m1 to m3: %s)' % (took, path))
    # its watcher saw the new addresses and published them; the others saw the move
    assert "this node's addresses changed: 198.51.100.3/24 -> 192.0.2.70/26" in log_of(nodes['m3'])
    assert wait_for(lambda: (published(world, 'm3') or {}).get('node_ips') == ['192.0.2.70/26'], timeout=10), \
        published(world, 'm3')
    assert 'peer m3 moved' in log_of(nodes['m1'])
    assert took < MOVE_BOUND, 'every pair reached again only after %.1f s' % took
