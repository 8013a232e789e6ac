"""Node certificates on real wireguard-go in namespaces, with the discovery service and watchers: what a
member holding the cluster token can no longer do.

The CA is made by wglan_ca and each node's certificate signed by wglan_certificate (on the test's host,
as the controller would), then each node runs wglan_record, wglan_peers (the CA's public key given) and
its watcher. n4 is the insider: certified as n4, it holds the token and its own key, runs no watcher,
and writes to the discovery service with the collection's own client code. An outsider holds the
token alone. What is checked on the honest nodes' real devices: the mesh forms and every pair pings;
the insider taking n1's name, or claiming n2's mesh address and node IP, moves nothing (n1 and n2
keep theirs, the insider keeps its own certified address); the outsider is nobody's peer; a
revocation list signed by the CA, given to one node by one call, drops the insider on every node
within 5 s while it keeps publishing. Last, the service pins member slots to certificates (--slot-ca, as
the discovery role starts it for a mesh with a CA): the insider's squat of n1's slot, made before, is taken
over by n1's next write, and no write without the CA's grant of its slot gets in.
"""
import json
import os
import time
import uuid

import pytest

from netns import COLLECTIONS, Playbook, record_of, wait_for
from watchlab import PROBE, service_world, start_service

TOKEN = 'certificates-token-%s' % uuid.uuid4().hex
URL = 'http://198.51.100.100:8443'
MESH = 'wglan0'
HONEST = ('n1', 'n2', 'n3')
STATE = {}


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    work = str(tmp_path_factory.mktemp('certs'))
    members = ((1, 'n1'), (2, 'n2'), (3, 'n3'), (4, 'n4'), (5, 'out'))
    with service_world(work, members, ('n1', 'n2', 'n3', 'n4', 'out')) as (tag, nodes, server, watchers):
        for name in HONEST:
            with open(os.path.join(nodes[name].workdir, 'watcher.json'), 'w') as handle:
                json.dump(dict(resync=30, table='wglan%s' % tag), handle)
        world = dict(nodes=nodes, watchers=watchers, tag=tag, work=work, ca=os.path.join(work, 'ca', 'wglan-ca.key'),
                     server=server)
        try:
            yield world
        finally:
            if world['server'] is not server and world['server'].poll() is None:  # (a test started it again)
                world['server'].kill()
                world['server'].wait(10)


def join(world, name, watcher=True, **extra):
    """What the node role does for a node of a mesh with a CA: record, certificate (on the controller),
    peers with the CA's public key (and the watcher)."""
    ns = world['nodes'][name]
    STATE[name] = dict(STATE.get(name, {}), **record_of(ns, name))
    book = Playbook(ns, ns.workdir)
    record = book.one('wglan.mesh.wglan_record', dict(
        name=name, public_key=STATE[name]['public_key'], address=STATE[name]['address'], interface=ns.ifname,
        fact_path=os.path.join(ns.workdir, 'wglan.fact'), state_path=os.path.join(ns.workdir, 'mesh.json'),
        private_key_path=ns.key_path))
    assert not record.get('failed') and record['signer'], record
    cert = book.one('wglan.mesh.wglan_certificate', dict(path=world['ca'], mesh=MESH, record=record['record'],
                                                         signer=record['signer']))
    assert not cert.get('failed'), cert
    STATE[name].update(certificate=cert['certificate'], record=record['record'])
    args = dict(interface=ns.ifname, backend='userspace', private_key_path=ns.key_path,
                addresses=[STATE[name]['cidr']], purge=True, self_name=name, discovery_url=URL, cluster_token=TOKEN,
                publish=dict(record['record'], certificate=cert['certificate']), ca_public_key=world['ca_public'],
                mesh_name=MESH, watcher=watcher, state_path=os.path.join(ns.workdir, 'mesh.json'),
                settings_path=os.path.join(ns.workdir, 'settings.json'), save_settings=watcher,
                relays_path=os.path.join(ns.workdir, 'paths.json'))
    args.update(extra)
    result = book.one('wglan.mesh.wglan_peers', args)
    assert not result.get('failed'), result
    return result


def allowed(ns):
    """{peer public key: {allowed IPs}} on the node's device."""
    out = {}
    for line in ns.sh('wg show %s allowed-ips' % ns.ifname).stdout.splitlines():
        key, _sep, rest = line.partition('\t')
        out[key] = set(n for n in rest.split() if n != '(none)')
    return out


def pings(nodes, names):
    return all(nodes[a].sh('ping -6 -c 1 -W 1 %s' % STATE[b]['address'], check=False).returncode == 0
               for a in names for b in names if a != b)


INSIDER = r'''
import base64, json, sys
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.model import certificates
from ansible_collections.wglan.mesh.plugins.module_utils.sources.discovery import DiscoveryClient
private, record, seq, kind = sys.argv[1], json.loads(sys.argv[2]), int(sys.argv[3]) or None, sys.argv[4]
client = DiscoveryClient(%r, %r, signing=private)
try:
    if kind == 'delete':
        client.delete(record['public_key'], seq=seq)
    else:
        client.publish(certificates.sign_claims(record, private), ttl=600, seq=seq)
    print('published')
except WglanError as exc:
    print('refused: %%s' %% exc)
'''


def insider_publishes(world, name, record, seq=0, kind='put', refused=False):
    """name's namespace writes record to the discovery service with the collection's client, its claims
    signed with name's own key (what any token holder with a key of its own can do); kind delete: deletes
    the slot of the record's key. refused: the service must refuse it. Returns what the client said."""
    ns = world['nodes'][name]
    with open(ns.key_path) as handle:
        private = handle.read().strip()
    script = os.path.join(ns.workdir, 'insider.py')
    with open(script, 'w') as handle:
        handle.write(INSIDER % (URL, TOKEN))
    out = ns.cmd(['env', 'PYTHONPATH=%s' % COLLECTIONS, 'python3', script, private, json.dumps(record), str(seq),
                  kind], check=False)
    assert ('refused' if refused else 'published') in out.stdout, out.stdout + out.stderr
    return out.stdout


def test_the_mesh_forms_with_certificates(world):
    nodes = world['nodes']
    ca = Playbook(nodes['n1'], nodes['n1'].workdir).one('wglan.mesh.wglan_ca', dict(path=world['ca'], mesh=MESH))
    assert ca['created'] and not ca.get('failed'), ca
    assert oct(os.stat(world['ca']).st_mode & 0o777) == '0o600'
    with open(world['ca']) as handle:
        secret = handle.read().strip()
    assert secret.split(':', 1)[1] not in json.dumps(ca)
    world['ca_public'] = ca['public_key']
    join(world, 'n4', watcher=False)   # the insider: certified as n4, no watcher
    for name in HONEST:
        join(world, name)
    for name in HONEST:
        world['watchers'].start(nodes[name])
    assert wait_for(lambda: pings(nodes, HONEST), timeout=40, interval=0.5), \
        dict((n, allowed(nodes[n])) for n in HONEST)
    for name in HONEST:
        assert wait_for(lambda: STATE['n4']['public_key'] in allowed(nodes[name]), timeout=15), allowed(nodes[name])
    # a second call signs nothing new: the certificate stands
    again = Playbook(nodes['n1'], nodes['n1'].workdir).one('wglan.mesh.wglan_certificate', dict(
        path=world['ca'], mesh=MESH, record=STATE['n1']['record'], signer=join_signer(world, 'n1'),
        certificate=STATE['n1']['certificate']))
    assert not again['changed'] and again['certificate'] == STATE['n1']['certificate']


def join_signer(world, name):
    ns = world['nodes'][name]
    result = Playbook(ns, ns.workdir).one('wglan.mesh.wglan_record', dict(
        name=name, public_key=STATE[name]['public_key'], address=STATE[name]['address'], interface=ns.ifname,
        fact_path=os.path.join(ns.workdir, 'wglan.fact'), state_path=os.path.join(ns.workdir, 'mesh.json'),
        private_key_path=ns.key_path))
    return result['signer']


def routes_hold(nodes, owners=('n1', 'n2', 'n4')):
    """Every honest node routes each owner's mesh address to that owner alone (n1 and n2 theirs, the
    insider its own certified one)."""
    for name in HONEST:
        found = allowed(nodes[name])
        for owner in owners:
            if owner == name:
                continue
            wanted = '%s/128' % STATE[owner]['address']
            holders = [k for k, nets in found.items() if wanted in nets]
            if holders != [STATE[owner]['public_key']]:
                return False
    return True


def test_a_member_cannot_take_another_nodes_name_or_addresses(world):
    nodes = world['nodes']
    base = dict(STATE['n4']['record'], certificate=STATE['n4']['certificate'])
    # the name n1, under its own key and certificate
    insider_publishes(world, 'n4', dict(base, name='n1'))
    # (a record whose name its certificate does not hold is no peer at all: the insider is gone)
    assert wait_for(lambda: all(STATE['n4']['public_key'] not in allowed(nodes[n]) for n in HONEST), timeout=10)
    assert routes_hold(nodes, ('n1', 'n2')), dict((n, allowed(nodes[n])) for n in HONEST)
    assert pings(nodes, HONEST)
    # n2's mesh address and node IP (its key sorts wherever it sorts: it does not matter any more)
    insider_publishes(world, 'n4', dict(base, address=STATE['n2']['address'],
                                        node_ips=base['node_ips'] + ['198.51.100.2/24']))
    assert wait_for(lambda: all(STATE['n4']['public_key'] in allowed(nodes[n]) for n in HONEST), timeout=10)
    time.sleep(1)
    assert routes_hold(nodes), dict((n, allowed(nodes[n])) for n in HONEST)
    for name in ('n1', 'n3'):
        insider = allowed(nodes[name]).get(STATE['n4']['public_key'], set())
        assert '198.51.100.2/32' not in insider and '%s/128' % STATE['n2']['address'] not in insider
    assert pings(nodes, HONEST)
    with open(os.path.join(nodes['n1'].workdir, 'watcher.log')) as handle:
        log = handle.read()
    assert 'not admitted' in log and 'not granted by its certificate' in log
    insider_publishes(world, 'n4', base)  # (back to what it may claim)


def test_a_stolen_token_without_a_certificate_joins_nobody(world):
    nodes = world['nodes']
    out = nodes['out']
    STATE['out'] = record_of(out, 'out')
    insider_publishes(world, 'out', STATE['out']['record'])

    def refused_everywhere():
        logs = [open(os.path.join(nodes[n].workdir, 'watcher.log')).read() for n in HONEST]
        return all('node out is not admitted: it has no certificate' in log for log in logs)
    # every watcher read the outsider's record (and said why it is no peer), and none made it a peer
    assert wait_for(refused_everywhere, timeout=10, interval=0.2)
    for name in HONEST:
        assert STATE['out']['public_key'] not in allowed(nodes[name])


def test_a_revoked_member_still_publishing_is_dropped_everywhere_within_5_s(world):
    nodes = world['nodes']
    book = Playbook(nodes['n1'], nodes['n1'].workdir)
    listed = book.one('wglan.mesh.wglan_ca', dict(path=world['ca'], mesh=MESH, revoke_names=['n4']))
    assert listed['changed'] and listed['revocations'], listed
    again = book.one('wglan.mesh.wglan_ca', dict(path=world['ca'], mesh=MESH, revoke_names=['n4']))
    assert not again['changed'] and again['revocations'] == listed['revocations']
    # a call that names no revocation (the discovery role's, for the CA's public key) leaves the list alone
    alone = book.one('wglan.mesh.wglan_ca', dict(path=world['ca'], mesh=MESH))
    assert not alone['changed'] and alone['revocations'] == listed['revocations'], alone
    # one call on one node (what a run of the role on any node passes on)
    join(world, 'n1', revocations=[listed['revocations']])
    started = time.monotonic()
    insider_publishes(world, 'n4', dict(STATE['n4']['record'], certificate=STATE['n4']['certificate']))

    def gone():
        return all(STATE['n4']['public_key'] not in allowed(nodes[n]) for n in HONEST)
    assert wait_for(gone, timeout=10, interval=0.1), dict((n, allowed(nodes[n])) for n in HONEST)
    took = time.monotonic() - started
    print('the revoked member was gone from every node %.1f s after the call' % took)
    assert took < 5.0
    assert pings(nodes, HONEST)


def test_with_slots_pinned_to_certificates_a_squatted_slot_returns_to_its_node_and_no_write_without_a_grant_gets_in(
        world):
    """A token holder wrote a node's slot first (its own signing key, sequence 2^62): the real node got
    403 on every write while the squatter renewed. The service now pins slots to certificates (--slot-ca):
    n1's next write, which carries its certificate's slot grant, takes the slot over; the squatter's
    writes and deletes, and a stolen token's, are refused."""
    nodes, watchers = world['nodes'], world['watchers']
    n1 = dict(STATE['n1']['record'], certificate=STATE['n1']['certificate'])
    watchers.kill(nodes['n1'])
    insider_publishes(world, 'n1', n1, kind='delete')  # (n1 itself: its slot is empty now)
    squat = insider_publishes(world, 'n4', n1, seq=2 ** 62)  # n4 writes n1's slot first, with its own key
    assert 'published' in squat
    refused = insider_publishes(world, 'n1', n1, refused=True)  # the service as it was: n1 is locked out
    assert "another key's" in refused, refused
    world['server'].kill()
    world['server'].wait(10)
    log_path = os.path.join(world['work'], 'service.log')
    with open(log_path, 'w') as log:
        world['server'] = start_service(nodes['srv'], '198.51.100.100', world['work'], '--slot-ca', world['ca_public'],
                                        stderr=log)
    assert wait_for(lambda: nodes['n2'].sh(PROBE, check=False).returncode == 0, timeout=15)
    watchers.start(nodes['n1'])  # its next write carries its certificate's grant

    def taken_back():
        with open(log_path) as handle:
            return 'taken over by the key its certificate names' in handle.read()
    assert wait_for(taken_back, timeout=20, interval=0.2), open(log_path).read()[-2000:]
    for attempt in (dict(name='n4', record=n1, seq=2 ** 62 + 1), dict(name='n4', record=n1, kind='delete', seq=2 ** 62 + 1),
                    dict(name='out', record=STATE['out']['record'])):
        said = insider_publishes(world, refused=True, **attempt)
        # (the squatter sends n1's certificate, which is public, and so its grant: but for another signing key)
        assert '403' in said and any(why in said for why in ("another key's", 'no slot grant',
                                                             'not for this member and key')), (attempt, said)
    # the certified members' writes go on, n1's among them, and every pair pings
    insider_publishes(world, 'n4', dict(STATE['n4']['record'], certificate=STATE['n4']['certificate']))
    assert wait_for(lambda: pings(nodes, HONEST), timeout=20, interval=0.5)
