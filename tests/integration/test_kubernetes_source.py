"""wglan_peers with Kubernetes Node annotations as its only source, on real wireguard-go.

The API server is the test double (tests/kube_apiserver.py; see
test_kube_apiserver_double.py for how it is held to the real one), over TLS with
a bearer token, in its own namespace on the nodes' switch. The Node objects are
made with the real kubectl, as a kubelet would have registered them. Each node
annotates its own Node and learns the other from the API alone; malformed
annotations on other Nodes are skipped by name; the ad-hoc call with no source
arguments refreshes from the saved settings; an unreachable API keeps the mesh.
"""
import json
import os
import stat
import uuid

import pytest

from kubelab import DEBIAN_KUBECTL, Api, create
from netns import ALL_OUTPUT, COLLECTIONS, Playbook, record_of, switched, wait_for

API_IP = '198.51.100.100'
STATE = {}


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    tag = uuid.uuid4().hex[:6]
    work = str(tmp_path_factory.mktemp('kube'))
    spaces, api = [], None
    try:
        nodes = switched(tag, ((100, 'api'), (1, 'n1'), (2, 'n2')), ('n1', 'n2'), work, spaces)
        api = Api(work, tag, ns=nodes['api'], ip=API_IP)
        for index, name in ((1, 'n1'), (2, 'n2')):
            create(api, DEBIAN_KUBECTL, name, '198.51.100.%d' % index)
        yield dict(nodes=nodes, api=api, work=work)
    finally:
        if api is not None:
            api.destroy()
        for ns in reversed(spaces):
            ns.destroy()


def peers_args(ns, name, **extra):
    args = dict(interface=ns.ifname, backend='userspace', private_key_path=ns.key_path,
                addresses=[STATE[name]['cidr']], purge=True, self_name=name, node_name=name,
                kubeconfig=STATE['kubeconfig'], publish=STATE[name]['record'],
                state_path=os.path.join(ns.workdir, 'mesh.json'),
                settings_path=os.path.join(ns.workdir, 'settings.json'), save_settings=True)
    args.update(extra)
    return args


def run_peers(ns, name, **extra):
    return Playbook(ns, ns.workdir).one('wglan.mesh.wglan_peers', peers_args(ns, name, **extra))


def adhoc(ns, args):
    """`ansible localhost -m wglan.mesh.wglan_peers -a ...`, as an operator would type it."""
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR='1',
               ANSIBLE_PYTHON_INTERPRETER='/usr/bin/python3', ANSIBLE_LOCAL_TEMP=ns.workdir,
               ANSIBLE_REMOTE_TEMP=ns.workdir)
    proc = ns.cmd(['ansible', 'localhost', '-i', 'localhost,', '-c', 'local', '-m', 'wglan.mesh.wglan_peers',
                   '-a', json.dumps(args)], check=False, timeout=120, env=env)
    ALL_OUTPUT.append(proc.stdout + proc.stderr)
    # The ad-hoc (minimal) output: "localhost | CHANGED => {...}"
    head, sep, body = proc.stdout.partition(' => ')
    assert sep and head.startswith('localhost |'), proc.stdout + proc.stderr
    result = json.loads(body)
    result['warnings'] = [line for line in proc.stderr.splitlines() if 'WARNING' in line]
    return result


def annotations(world, name):
    out = world['api'].kubectl(DEBIAN_KUBECTL, 'get', 'node', name, '-o', 'json').stdout
    return json.loads(out)['metadata'].get('annotations', {})


def test_mesh_forms_from_node_annotations_alone(world):
    n1, n2 = world['nodes']['n1'], world['nodes']['n2']
    STATE['kubeconfig'] = world['api'].kubeconfig
    STATE['n1'] = record_of(n1, 'n1')
    STATE['n2'] = record_of(n2, 'n2')

    first = run_peers(n1, 'n1')
    assert not first.get('failed'), first
    assert first['kubernetes'] == dict(reached=True, node='n1', published=True, records=1)
    assert first['peers_added'] == []
    published = annotations(world, 'n1')
    assert published['wglan.mesh/public-key'] == STATE['n1']['public_key']
    assert published['wglan.mesh/address'] == STATE['n1']['address']
    assert published['wglan.mesh/node-ips'] == '198.51.100.1/24'

    second = run_peers(n2, 'n2')
    assert second['peers_added'] == [STATE['n1']['public_key']]
    assert second['endpoints']['n1'] == dict(endpoint='198.51.100.1:51820', reason='same-link')
    third = run_peers(n1, 'n1')
    assert third['peers_added'] == [STATE['n2']['public_key']]
    assert wait_for(lambda: n1.sh('ping -6 -c 1 -W 2 %s' % STATE['n2']['address'], check=False).returncode == 0,
                    timeout=15, interval=0.5)
    again = [run_peers(n1, 'n1'), run_peers(n2, 'n2')]
    assert [r['changed'] for r in again] == [False, False]
    assert [r['kubernetes']['published'] for r in again] == [False, False], 'annotations current: no patch'


def test_malformed_annotations_on_other_nodes_do_not_stop_the_rest(world):
    n1 = world['nodes']['n1']
    api = world['api']

    def fresh_key():
        return n1.sh('wg genkey | wg pubkey').stdout.strip()

    broken = {
        'bad-key': ['wglan.mesh/public-key=not-a-key'],
        'bad-cidr': ['wglan.mesh/public-key=%s' % fresh_key(), 'wglan.mesh/assigned-prefixes=10.0.0.1/8'],
        'bad-json': ['wglan.mesh/public-key=%s' % fresh_key(), 'wglan.mesh/observed={not json'],
    }
    for index, (name, values) in enumerate(sorted(broken.items())):
        create(api, DEBIAN_KUBECTL, name, '198.51.100.%d' % (50 + index))
        api.kubectl(DEBIAN_KUBECTL, 'annotate', 'node', name, *values)
    peers_before = n1.sh('wg show %s peers' % n1.ifname).stdout
    result = run_peers(n1, 'n1')
    assert not result.get('failed'), result
    assert result['changed'] is False and result['kubernetes']['records'] == 2  # n1 and n2
    for name in broken:
        assert any('node %s' % name in w for w in result['warnings']), (name, result['warnings'])
    assert n1.sh('wg show %s peers' % n1.ifname).stdout == peers_before
    for name in broken:
        api.kubectl(DEBIAN_KUBECTL, 'delete', 'node', name)


def test_a_node_without_a_node_object_still_reads_the_others(world):
    n1 = world['nodes']['n1']
    result = run_peers(n1, 'n1', node_name='not-registered', save_settings=False)
    assert not result.get('failed'), result
    assert result['kubernetes']['published'] is None and result['kubernetes']['records'] == 2
    assert any('no Node named not-registered' in w for w in result['warnings']), result['warnings']
    assert result['peers_removed'] == []


def test_adhoc_call_refreshes_from_the_saved_settings(world):
    n1 = world['nodes']['n1']
    api = world['api']
    settings = os.path.join(n1.workdir, 'settings.json')
    assert stat.S_IMODE(os.stat(settings).st_mode) == 0o600
    key = n1.sh('wg genkey | wg pubkey').stdout.strip()
    create(api, DEBIAN_KUBECTL, 'n3', '198.51.100.3')
    api.kubectl(DEBIAN_KUBECTL, 'annotate', 'node', 'n3', 'wglan.mesh/public-key=%s' % key,
                'wglan.mesh/address=200:1001::3')
    added = adhoc(n1, dict(settings_path=settings))
    assert not added.get('failed'), added
    assert added['changed'] is True and added['peers_added'] == [key], added
    assert added['interface'] == n1.ifname and added['kubernetes']['node'] == 'n1'
    api.kubectl(DEBIAN_KUBECTL, 'delete', 'node', 'n3')
    removed = adhoc(n1, dict(settings_path=settings))
    assert removed['peers_removed'] == [key], 'purge came from the settings too'
    # Giving a source makes the call self-contained: the saved purge does not apply.
    alone = adhoc(n1, dict(settings_path=settings, interface=n1.ifname, backend='userspace',
                           private_key_path=n1.key_path, peers=[]))
    assert alone['changed'] is False and alone['peers_removed'] == []


def test_unreachable_api_keeps_the_mesh(world):
    n1 = world['nodes']['n1']
    world['api'].stop()
    before = n1.sh('wg show %s peers' % n1.ifname).stdout
    result = run_peers(n1, 'n1')
    assert not result.get('failed') and result['changed'] is False, result
    assert result['kubernetes']['reached'] is False
    assert any('unreachable' in w and 'keeping the 2 records' in w for w in result['warnings']), result['warnings']
    assert n1.sh('wg show %s peers' % n1.ifname).stdout == before
    world['api'].start()


def test_no_secret_in_any_output(world):
    with open(world['api'].kubeconfig) as handle:
        token = json.load(handle)['users'][0]['user']['token']
    assert token not in '\n'.join(ALL_OUTPUT)
