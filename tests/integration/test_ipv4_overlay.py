"""The IPv4 overlay (ipv4_prefix) and names on real wireguard-go in namespaces, with the discovery service and watchers.

Each node is set up the way the node role does it: wglan_record (with the overlay prefix) makes its
record, wglan_peers takes the peers from the discovery service and saves the settings, then its
watcher runs. What is checked: every node has an address of its own in the overlay, on its interface
with the prefix's length; IPv4 pings between every pair go through the tunnel; a node that claims an
address another node holds (a forced collision: its last record held it) ends with every node agreeing
who keeps it (the smaller public key) and the other one moved, and every pair still pings. The
watchers name every node in each node's hosts file (a file of the test's: the machine's own /etc/hosts
is not touched here; the lab resolves the names for real), next to lines of the admin's left alone.
"""
import ipaddress
import json
import os
import time
import uuid

import pytest

from netns import Playbook, record_of, wait_for
from watchlab import service_world

TOKEN = 'ipv4-overlay-token-%s' % uuid.uuid4().hex
URL = 'http://198.51.100.100:8443'
OVERLAY = '203.0.113.0/26'  # (the namespaces' underlay is 198.51.100.0/24)
NAMES = ('n1', 'n2', 'n3')
STATE = {}


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    work = str(tmp_path_factory.mktemp('ipv4'))
    members = ((1, 'n1'), (2, 'n2'), (3, 'n3'), (4, 'n4'))
    with service_world(work, members, ('n1', 'n2', 'n3', 'n4')) as (tag, nodes, server, watchers):
        for name in ('n1', 'n2', 'n3', 'n4'):
            with open(os.path.join(nodes[name].workdir, 'watcher.json'), 'w') as handle:
                status = os.path.join(nodes[name].workdir, 'status.json')
                json.dump(dict(resync=30, table='wglan%s' % tag, status_path=status), handle)
        yield dict(nodes=nodes, watchers=watchers, tag=tag)


ADMIN_LINES = '127.0.0.1 localhost\n# the admin own lines\n192.0.2.50 printer.example\n'


def hosts_path(ns):
    return os.path.join(ns.workdir, 'hosts')


def named(ns):
    """{host name: {addresses}} in the node's hosts file, and whether the admin's lines are still first."""
    with open(hosts_path(ns)) as handle:
        text = handle.read()
    found = {}
    for line in text.splitlines():
        if line and not line.startswith('#') and line.endswith('.wglan.internal'):
            ip, name = line.split()
            found.setdefault(name, set()).add(ip)
    return found, text.startswith(ADMIN_LINES)


def expected_names(names):
    return dict(('%s.wglan.internal' % n, {STATE[n]['address'], STATE[n]['address4']}) for n in names)


def fact_path(ns):
    return os.path.join(ns.workdir, 'wglan.fact')


def role_like(ns, name):
    """wglan_record then wglan_peers, as the node role calls them (the overlay given to both)."""
    STATE[name] = dict(STATE.get(name, {}), **record_of(ns, name))
    book = Playbook(ns, ns.workdir)
    record = book.one('wglan.mesh.wglan_record', dict(
        name=name, public_key=STATE[name]['public_key'], address=STATE[name]['address'], interface=ns.ifname,
        ipv4_prefix=OVERLAY, fact_path=fact_path(ns), state_path=os.path.join(ns.workdir, 'mesh.json')))
    assert not record.get('failed'), record
    result = book.one('wglan.mesh.wglan_peers', dict(
        interface=ns.ifname, backend='userspace', private_key_path=ns.key_path, addresses=[STATE[name]['cidr']],
        purge=True, self_name=name, discovery_url=URL, cluster_token=TOKEN, publish=record['record'],
        ipv4_prefix=OVERLAY, watcher=True, names=True, hosts_path=hosts_path(ns), state_path=os.path.join(ns.workdir, 'mesh.json'),
        settings_path=os.path.join(ns.workdir, 'settings.json'), save_settings=True,
        relays_path=os.path.join(ns.workdir, 'paths.json')))
    assert not result.get('failed'), result
    return record['record'], result


def overlay_address(ns):
    """The node's IPv4 address on its interface (address/length), or None."""
    found = ns.json('ip -j -4 addr show dev %s' % ns.ifname)
    addresses = ['%s/%s' % (a['local'], a['prefixlen']) for link in found for a in link.get('addr_info', [])]
    return addresses[0] if len(addresses) == 1 else None


def routed_to(ns, address):
    """{public key} of the peers whose allowed IPs hold address/32 on this node's device."""
    out = ns.sh('wg show %s allowed-ips' % ns.ifname).stdout
    return set(line.split()[0] for line in out.splitlines() if '%s/32' % address in line.split()[1:])


def pings_ok(nodes, names):
    return all(nodes[a].sh('ping -4 -c 1 -W 1 %s' % STATE[b]['address4'], check=False).returncode == 0
               for a in names for b in names if a != b)


def test_every_node_gets_an_address_of_its_own_and_every_pair_pings(world):
    nodes = world['nodes']
    for done, name in enumerate(NAMES):
        record, result = role_like(nodes[name], name)
        if record['address4'] != result['address4']:
            # The keys are random: two first places collide in a /26 about once in twenty runs. The record
            # knew no claim yet (no peers saved); the run saw the earlier node's and moved, as the rule says.
            holders = [n for n in NAMES[:done] if STATE[n]['address4'] == record['address4']]
            assert holders and all(STATE[n]['public_key'] < STATE[name]['public_key'] for n in holders), \
                (name, record['address4'], result['address4'], holders)
            print('%s: its first place %s is held by %s (a smaller key): it took %s'
                  % (name, record['address4'], holders, result['address4']))
        assert ipaddress.ip_address(result['address4']) in ipaddress.ip_network(OVERLAY)
        STATE[name]['address4'] = result['address4']
    for name in NAMES:
        # the other way round: a later node with a smaller key took an earlier node's place; the earlier
        # node's next run moves it (its watcher would too)
        smaller = [n for n in NAMES if n != name and STATE[n]['address4'] == STATE[name]['address4']
                   and STATE[n]['public_key'] < STATE[name]['public_key']]
        if smaller:
            record, result = role_like(nodes[name], name)
            assert result['address4'] != STATE[name]['address4'], (name, smaller, result)
            print('%s: its place %s is held by %s (a smaller key): it moved to %s'
                  % (name, STATE[name]['address4'], smaller, result['address4']))
            STATE[name]['address4'] = result['address4']
    for name in NAMES:
        with open(hosts_path(nodes[name]), 'w') as handle:
            handle.write(ADMIN_LINES)
        world['watchers'].start(nodes[name])
    assert len(set(STATE[n]['address4'] for n in NAMES)) == 3
    for name in NAMES:
        assert wait_for(lambda: overlay_address(nodes[name]) == '%s/26' % STATE[name]['address4'], timeout=15)
    assert wait_for(lambda: pings_ok(nodes, NAMES), timeout=30, interval=0.5), \
        [nodes[n].sh('wg show %s allowed-ips' % nodes[n].ifname).stdout for n in NAMES]
    # each peer's overlay address is routed to that peer alone, on every node
    for a in NAMES:
        for b in NAMES:
            if a != b:
                assert routed_to(nodes[a], STATE[b]['address4']) == {STATE[b]['public_key']}
    # every watcher names every node, the admin's lines untouched
    for name in NAMES:
        assert wait_for(lambda: named(nodes[name]) == (expected_names(NAMES), True), timeout=15), named(nodes[name])


def test_a_second_run_keeps_every_address(world):
    nodes = world['nodes']
    for name in NAMES:
        record, result = role_like(nodes[name], name)
        assert record['address4'] == STATE[name]['address4'] == result['address4']
        assert not result['changed'], result


def test_a_forced_collision_resolves_the_same_way_on_every_node(world):
    """n4's last record held n1's address: n4 claims it. The smaller key keeps it, the other node moves,
    and every node routes the address, and the moved node's new one, to the same peer."""
    nodes = world['nodes']
    n4 = nodes['n4']
    STATE['n4'] = dict(record_of(n4, 'n4'))
    with open(fact_path(n4), 'w') as handle:
        json.dump(dict(STATE['n4']['record'], address4=STATE['n1']['address4']), handle)
    record, _result = role_like(n4, 'n4')
    assert record['address4'] == STATE['n1']['address4'], 'n4 knew no claim yet: it keeps its last address'
    world['watchers'].start(n4)
    everyone = NAMES + ('n4',)
    contested = STATE['contested'] = STATE['n1']['address4']
    keeper, mover = sorted(('n1', 'n4'), key=lambda n: STATE[n]['public_key'])

    def settled():
        moved = overlay_address(nodes[mover])
        if moved is None or moved == '%s/26' % contested:
            return False
        STATE[mover]['address4'] = moved.split('/')[0]
        return all(routed_to(nodes[n], contested) == ({STATE[keeper]['public_key']} if n != keeper else set())
                   and (n == mover or routed_to(nodes[n], STATE[mover]['address4']) == {STATE[mover]['public_key']})
                   for n in everyone)
    assert wait_for(settled, timeout=30, interval=0.5), dict(
        (n, nodes[n].sh('wg show %s allowed-ips' % nodes[n].ifname).stdout) for n in everyone)
    assert overlay_address(nodes[keeper]) == '%s/26' % contested
    STATE['n4'].setdefault('address4', contested)
    assert len(set(STATE[n]['address4'] for n in everyone)) == 4
    assert wait_for(lambda: pings_ok(nodes, everyone), timeout=30, interval=0.5)
    # the names follow: the moved node is named at its new address on every node
    for name in everyone:
        if name != 'n4':
            assert wait_for(lambda: named(nodes[name]) == (expected_names(everyone), True), timeout=15), \
                named(nodes[name])
    log = open(os.path.join(nodes[mover].workdir, 'watcher.log')).read()
    assert 'IPv4 overlay address %s' % STATE[mover]['address4'] in log, log[-2000:]


def test_an_ad_hoc_run_beside_the_watcher_publishes_the_address_the_watcher_moved_to(world):
    """`ansible -m wglan_peers` on the node that moved (its saved settings hold the role's record, with the
    contested address): the run publishes the address the watcher holds (its state file), so no peer routes
    the moved node's address away, and a run on another node then finds nothing to change."""
    nodes = world['nodes']
    everyone = NAMES + ('n4',)
    contested = STATE['contested']  # (STATE['n1'] holds n1's new address when n1 was the node that moved)
    keeper, mover = sorted(('n1', 'n4'), key=lambda n: STATE[n]['public_key'])
    saved = dict(settings_path=os.path.join(nodes[mover].workdir, 'settings.json'))
    with open(saved['settings_path']) as handle:
        assert json.load(handle)['publish']['address4'] == contested, 'the role recorded the contested address'
    result = Playbook(nodes[mover], nodes[mover].workdir).one('wglan.mesh.wglan_peers', saved)
    assert not result.get('failed') and not result['changed'], result
    assert result['address4'] == STATE[mover]['address4']
    time.sleep(2)  # (a watcher reconciles at once for a record the service has: had it gone back, they would have)

    def routes_stay():
        return all(routed_to(nodes[n], STATE[mover]['address4']) == {STATE[mover]['public_key']}
                   and routed_to(nodes[n], contested) == {STATE[keeper]['public_key']} for n in everyone if n not in (mover, keeper))
    assert routes_stay(), dict((n, nodes[n].sh('wg show %s allowed-ips' % nodes[n].ifname).stdout) for n in everyone)
    other = next(n for n in NAMES if n not in (mover, keeper))
    again = Playbook(nodes[other], nodes[other].workdir).one(
        'wglan.mesh.wglan_peers', dict(settings_path=os.path.join(nodes[other].workdir, 'settings.json')))
    assert not again.get('failed') and not again['changed'], again
    assert routes_stay()


def test_without_a_watcher_a_run_writes_the_names_and_absent_removes_them(world):
    """A run with watcher false owns the names: check mode writes nothing, a run writes them, the next
    changes nothing, names false removes the block, state absent removes it too (the admin's lines stay)."""
    n3 = world['nodes']['n3']
    path = os.path.join(n3.workdir, 'hosts-run')
    with open(path, 'w') as handle:
        handle.write(ADMIN_LINES)
    args = dict(interface=n3.ifname, backend='userspace', private_key_path=n3.key_path,
                addresses=[STATE['n3']['cidr']], purge=True, self_name='n3', discovery_url=URL, cluster_token=TOKEN,
                ipv4_prefix=OVERLAY, names=True, hosts_path=path, state_path=os.path.join(n3.workdir, 'mesh.json'),
                relays_path=os.path.join(n3.workdir, 'paths.json'), settings_path=os.path.join(n3.workdir, 'none.json'))
    book = Playbook(n3, n3.workdir)
    check, first, second = book.run([('wglan.mesh.wglan_peers', args, True), ('wglan.mesh.wglan_peers', args, False),
                                     ('wglan.mesh.wglan_peers', args, False)])
    assert check['names_changed'] and first['names_changed'] and not second['names_changed'], (check, first, second)
    with open(path) as handle:
        text = handle.read()
    assert text.startswith(ADMIN_LINES) and 'n1.wglan.internal' in text and text.count('# BEGIN wglan.mesh') == 1
    assert sorted(first['names']) == sorted('%s.wglan.internal' % n for n in ('n1', 'n2', 'n3', 'n4'))
    off = book.one('wglan.mesh.wglan_peers', dict(args, names=False))
    assert off['names_changed'] and open(path).read() == ADMIN_LINES
    book.one('wglan.mesh.wglan_peers', args)
    assert 'n1.wglan.internal' in open(path).read()
    gone = book.one('wglan.mesh.wglan_peers', dict(interface=n3.ifname, state='absent', hosts_path=path,
                                                   settings_path=os.path.join(n3.workdir, 'none.json')))
    assert gone['changed'] and gone['names_changed'] and open(path).read() == ADMIN_LINES
