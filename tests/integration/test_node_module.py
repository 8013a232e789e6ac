"""wglan_node: the node's modules in one call, on real wireguard-go, nftables and policy routing.

Two namespaces form a mesh from their records with two calls each (record, then mesh), as the
node role does: check mode first (nothing made), apply, apply again (nothing changes). Then a
step with bad input fails naming the step and leaves the device as it was; the cluster token
never reaches the output; a host without the libraries gets the packages to install and no change.
The watcher step runs with service=false here: installing the service needs systemd as PID 1
(the lab's machines test that part, through the role).
"""
import base64
import json
import os
import shutil
import subprocess
import sys
import time
import uuid

import pytest

from netns import ALL_OUTPUT, Namespace, Playbook, wait_for

MODULE = 'wglan.mesh.wglan_node'
TOKEN = 'node-module-test-token-%s' % uuid.uuid4().hex


def record_call(node):
    return dict(
        keys=dict(path=node.key_path),
        address=dict(source_interface='veth0'),
        record=dict(name=node.letter, interface=node.ifname, port=51820,
                    fact_path=os.path.join(node.workdir, 'wglan.fact')),
        firewall=dict(owner=node.ifname, udp_ports=['51820']),
    )


def mesh_call(node, records, **mesh):
    options = dict(interface=node.ifname, backend='userspace', private_key_path=node.key_path, listen_port=51820,
                   purge=True, members=['a', 'b'], records=records, self_name=node.letter,
                   state_path=os.path.join(node.workdir, 'mesh.json'),
                   settings_path=os.path.join(node.workdir, 'settings.json'), save_settings=True, watcher=True,
                   relays_path=os.path.join(node.workdir, 'paths.json'))
    options.update(mesh)
    return dict(
        keys=dict(path=node.key_path),
        address=dict(source_interface='veth0'),
        mesh=options,
        cluster_token=TOKEN,
        rules=dict(interface=node.ifname),
        watcher=dict(service=False, path=os.path.join(node.workdir, 'watcher.json'), sweep_interval=4),
        meshes_root=node.workdir,
    )


def device_peers(node):
    proc = node.ns.cmd(['wg', 'show', node.ifname, 'peers'], check=False)
    return sorted(proc.stdout.split()) if proc.returncode == 0 else None


def _ping(node, target):
    return node.ns.cmd(['ping', '-6', '-c', '1', '-W', '1', target], check=False).returncode == 0


@pytest.fixture(scope='module')
def meshed(two_nodes):
    """Both nodes through check mode, apply and apply again, for both calls. Returns what they gave."""
    out = {}
    for node in two_nodes:
        check, first, again = Playbook(node.ns, node.workdir).run(
            [(MODULE, record_call(node), True), (MODULE, record_call(node), False), (MODULE, record_call(node), False)])
        out[node.letter] = dict(record_check=check, record=first, record_again=again)
    records = [out['a']['record']['record'], out['b']['record']['record']]
    for node in two_nodes:
        check, first, again = Playbook(node.ns, node.workdir).run(
            [(MODULE, mesh_call(node, records), True), (MODULE, mesh_call(node, records), False),
             (MODULE, mesh_call(node, records), False)])
        out[node.letter].update(mesh_check=check, mesh=first, mesh_again=again)
    out['records'] = records
    return out


def test_the_record_call_makes_key_address_record_and_changes_nothing_the_second_time(two_nodes, meshed):
    for node in two_nodes:
        got = meshed[node.letter]
        for result in (got['record_check'], got['record'], got['record_again']):
            assert not result.get('failed'), result.get('msg')
        assert got['record_check']['changed'] is True and got['record_check']['public_key'] is None
        assert got['record']['changed'] is True and got['record_again']['changed'] is False, got['record_again']
        assert got['record']['steps'] == ['keys', 'address', 'record', 'firewall']
        derived = node.ns.sh('wg pubkey < %s' % node.key_path).stdout.strip()
        assert got['record']['public_key'] == derived == got['record']['record']['public_key']
        assert got['record']['record']['address'] == got['record']['address']
        assert got['record']['ansible_facts']['wglan_record'] == got['record']['record']
        assert oct(os.stat(node.key_path).st_mode & 0o777) == oct(0o600)
        with open(os.path.join(node.workdir, 'wglan.fact')) as handle:
            assert json.load(handle)['public_key'] == derived
        assert got['record']['firewall_manager'] == 'nftables'
        # a diff per step, headed with it
        headers = [d['before_header'] for d in got['record_check'].get('diff', [])]
        assert 'keys (before)' in headers and 'record (before)' in headers, headers


def test_the_mesh_call_forms_the_mesh_and_changes_nothing_the_second_time(two_nodes, meshed):
    a, b = two_nodes
    for node in two_nodes:
        got = meshed[node.letter]
        for result in (got['mesh_check'], got['mesh'], got['mesh_again']):
            assert not result.get('failed'), result.get('msg')
        assert got['mesh_check']['changed'] is True
        assert got['mesh']['changed'] is True and got['mesh_again']['changed'] is False, got['mesh_again']
        assert got['mesh']['steps'] == ['keys', 'address', 'mesh', 'rules', 'watcher']
        assert got['mesh']['peers_total'] == 1
        other = [r for r in meshed['records'] if r['name'] != node.letter][0]
        assert device_peers(node) == [other['public_key']]
        # the fingerprint of the record it used for the other is the one the other published
        # (what the role's stale_records compares to decide on a second call)
        assert got['mesh']['records_used'][other['name']] == meshed[other['name']]['record']['record_digest']
        # the watcher step wrote its options (validated), and the mesh step the settings the watcher reads
        with open(os.path.join(node.workdir, 'watcher.json')) as handle:
            assert json.load(handle)['sweep_interval'] == 4
        assert oct(os.stat(os.path.join(node.workdir, 'settings.json')).st_mode & 0o777) == oct(0o600)
        # the rules: our table exists (its targets belong to the watcher, which is not running here)
        assert node.ns.cmd(['nft', 'list', 'table', 'inet', 'wglan'], check=False).returncode == 0
    # the tunnel carries traffic between the mesh addresses (the check-mode call made nothing first:
    # the interface exists because of the apply)
    assert wait_for(lambda: _ping(a, meshed['b']['record']['address']), timeout=20, interval=0.5)


def test_check_mode_on_a_fresh_node_made_nothing(tmp_path, two_nodes):
    # a third, untouched key path and interface in the same namespace: check mode makes neither
    node = two_nodes[0]
    key = str(tmp_path / 'fresh.key')
    call = dict(keys=dict(path=key), address=dict(source_interface='veth0'))
    ifname = 'wgf%s' % uuid.uuid4().hex[:6]
    call['mesh'] = dict(interface=ifname, backend='userspace', private_key_path=key, listen_port=51899, peers=[],
                        state_path=str(tmp_path / 'mesh.json'), settings_path=str(tmp_path / 'settings.json'))
    call['meshes_root'] = str(tmp_path)
    result = Playbook(node.ns, str(tmp_path)).one(MODULE, call, check=True)
    assert not result.get('failed'), result.get('msg')
    assert result['changed'] is True
    assert not os.path.exists(key)
    assert node.ns.cmd(['ip', 'link', 'show', ifname], check=False).returncode != 0


def test_bad_input_fails_naming_the_step_and_leaves_the_device(two_nodes, meshed):
    node = two_nodes[0]
    before = device_peers(node)
    call = mesh_call(node, meshed['records'], listen_port='not-a-port')
    result = Playbook(node.ns, node.workdir).one(MODULE, call)
    assert result.get('failed') and result['msg'].startswith('mesh: '), result
    bad_peer = mesh_call(node, [{'name': 'a'}, {'public_key': 'short'}])
    Playbook(node.ns, node.workdir).one(MODULE, bad_peer)  # (records skipped with a warning, none kept)
    assert device_peers(node) == before
    # a secret given inside the step instead of at the top level is refused, and named
    inside = mesh_call(node, meshed['records'], cluster_token=TOKEN)
    result = Playbook(node.ns, node.workdir).one(MODULE, inside)
    assert result.get('failed') and 'cluster_token' in result['msg'], result
    del inside['cluster_token']  # (only inside: refused as well)
    result = Playbook(node.ns, node.workdir).one(MODULE, inside)
    assert result.get('failed') and 'cluster_token' in result['msg'], result
    assert device_peers(node) == before


def test_a_second_mesh_that_would_take_the_first_s_interface_fails_before_any_step(two_nodes, meshed):
    """The mesh call kept the default mesh's claims (meshes_root); a call of mesh mgmt with the same interface
    and port fails naming both and the setting, and changes nothing; with its own, it passes the check."""
    node = two_nodes[0]
    with open(os.path.join(node.workdir, 'claims.json')) as handle:
        claims = json.load(handle)
    assert (claims['mesh'], claims['interface'], claims['ports']) == ('', node.ifname, ['51820']), claims
    before = device_peers(node)
    call = mesh_call(node, meshed['records'], settings_path=os.path.join(node.workdir, 'mgmt-settings.json'))
    call['mesh_name'] = 'mgmt'
    result = Playbook(node.ns, node.workdir).one(MODULE, call)
    assert result.get('failed') and 'nothing was changed' in result['msg'], result
    assert 'mesh mgmt and mesh (default) both use interface %s (wglan_interface)' % node.ifname in result['conflicts']
    assert any('UDP ports' in c for c in result['conflicts']) and any('route table 180' in c for c in result['conflicts'])
    assert device_peers(node) == before
    assert not os.path.exists(os.path.join(node.workdir, 'mgmt', 'claims.json'))
    assert not os.path.exists(os.path.join(node.workdir, 'mgmt-settings.json'))
    # (check mode: the claims a call of mesh mgmt with settings of its own would keep, and no clash)
    ifname = 'wgm%s' % uuid.uuid4().hex[:6]
    own = dict(keys=call['keys'], mesh=dict(call['mesh'], interface=ifname, listen_port=51900),
               rules=dict(interface=ifname, route_table=181, rule_priority=32501, route_mark=256, mark_mask=288),
               mesh_name='mgmt', meshes_root=node.workdir, cluster_token=TOKEN)
    checked = Playbook(node.ns, node.workdir).one(MODULE, own, check=True)
    assert not checked.get('failed'), checked.get('msg')


def test_whom_a_node_reached_as_a_call_began_is_waited_for_and_a_lost_peer_named(two_nodes, meshed):
    """wglan_node returns the peers the node reached before it changed anything; wglan_info with
    expect_reached waits for those that are still peers, and fails naming one that is not reached (here a
    peer added to the device by hand, with an endpoint nobody answers at). No watcher runs here, so the
    peers are their keys."""
    a, b = two_nodes
    assert wait_for(lambda: _ping(a, meshed['b']['record']['address']), timeout=20, interval=0.5)
    again = Playbook(a.ns, a.workdir).one(MODULE, mesh_call(a, meshed['records']))
    b_key = meshed['b']['record']['record']['public_key']
    assert again['reached_before'] == [b_key], again.get('reached_before')
    status = os.path.join(a.workdir, 'no-status.json')
    waited = Playbook(a.ns, a.workdir).one('wglan.mesh.wglan_info', dict(
        interface=a.ifname, expect_reached=[b_key, 'a-peer-that-left'], wait=10, watcher_status=status))
    assert not waited.get('failed') and waited['not_reached'] == [], waited
    lost = base64.b64encode(bytes([7]) * 32).decode('ascii')
    a.ns.sh('wg set %s peer %s endpoint 192.0.2.250:51820 allowed-ips 192.0.2.250/32' % (a.ifname, lost))
    try:
        failed = Playbook(a.ns, a.workdir).one('wglan.mesh.wglan_info', dict(
            interface=a.ifname, expect_reached=[b_key, lost], wait=2, watcher_status=status))
        assert failed.get('failed') and failed['not_reached'] == [lost], failed
        assert '1 peers this node reached before the run are not reached 2 s after it: %s' % lost in failed['msg']
    finally:
        a.ns.sh('wg set %s peer %s remove' % (a.ifname, lost))


def test_a_key_rotation_with_the_inventory_alone_is_refused_at_once_changing_nothing(two_nodes, meshed):
    """wglan_rotate_keys with no live source (the inventory alone, the role's default without a discovery
    service): the peers would learn the next key only at the next run. The call fails before any step, in
    far less than the 90 s a rotation waits, and the device, the settings and the key stay as they were."""
    node = two_nodes[0]
    before = (device_peers(node), open(node.key_path).read(), open(os.path.join(node.workdir, 'settings.json')).read())
    call = dict(mesh_call(node, meshed['records']), rotate_keys=True)
    started = time.monotonic()
    result = Playbook(node.ns, node.workdir).one(MODULE, call)
    took = time.monotonic() - started
    assert result.get('failed') and 'needs a live source' in result['msg'] and 'nothing was changed' in result['msg'], result
    assert took < 30, took  # (a bound on the test, not a benchmark: the refusal comes before any step)
    sys.stdout.write('\nrotation with the inventory alone: refused in %.1f s (the module call, ansible-playbook '
                     'included), nothing changed\n' % took)
    assert result.get('steps') is None
    assert (device_peers(node), open(node.key_path).read(),
            open(os.path.join(node.workdir, 'settings.json')).read()) == before
    # the same call with the watcher off names that instead
    off = dict(call, mesh=dict(call['mesh'], watcher=False))
    del off['watcher']
    result = Playbook(node.ns, node.workdir).one(MODULE, off)
    assert result.get('failed') and 'needs the watcher' in result['msg'], result


def test_the_cluster_token_never_reaches_the_output(meshed):
    text = '\n'.join(ALL_OUTPUT) + json.dumps(meshed)
    assert meshed['a']['mesh']['changed'] is True  # (the calls ran, with the token)
    assert TOKEN not in text


@pytest.fixture(scope='module')
def bare_python(tmp_path_factory):
    """A venv without site packages: a managed host that lacks the libraries."""
    path = tmp_path_factory.mktemp('bare') / 'venv'
    subprocess.run(['/usr/bin/python3', '-m', 'venv', '--without-pip', str(path)], check=True)
    return str(path / 'bin' / 'python3')


def test_a_host_without_the_libraries_gets_the_packages_to_install_and_no_change(tmp_path, bare_python):
    ns = Namespace('wglan-nodebare-%s' % uuid.uuid4().hex[:6])
    old = os.environ.get('WGLAN_TEST_PYTHON')
    os.environ['WGLAN_TEST_PYTHON'] = bare_python
    try:
        key = str(tmp_path / 'private.key')
        result = Playbook(ns, str(tmp_path)).one(MODULE, dict(keys=dict(path=key), record=dict(name='x')))
    finally:
        if old is None:
            os.environ.pop('WGLAN_TEST_PYTHON')
        else:
            os.environ['WGLAN_TEST_PYTHON'] = old
        ns.destroy()
    assert not result.get('failed'), result.get('msg')
    assert result['changed'] is False and result['steps'] == []
    assert {'python3-cryptography', 'python3-pyroute2'} <= set(result['missing']), result['missing']
    assert result['os_family'] == 'Debian'
    assert not os.path.exists(key)


FEDORA = 'NAME="Fedora Linux"\nVERSION_ID=41\nID=fedora\nPRETTY_NAME="Fedora Linux 41 (Server Edition)"\n'
BULLSEYE = 'PRETTY_NAME="Debian GNU/Linux 11 (bullseye)"\nVERSION_ID="11"\nID=debian\n'


@pytest.mark.parametrize('release', [FEDORA, BULLSEYE], ids=['fedora-41', 'debian-11'])
def test_a_host_of_another_release_is_refused_before_anything_changes(tmp_path, release):
    """The role failed somewhere in the middle on a distribution it does not support. The node call now
    reads /etc/os-release first: on another release it fails naming the supported ones and what the
    collection needs there, with nothing made; supported_os_only=false goes on. (`ip netns exec` puts
    /etc/netns/<namespace>/os-release over the host's for what runs in the namespace: the module sees
    that release, the machine's own file is untouched.)"""
    ns = Namespace('wglan-os-%s' % uuid.uuid4().hex[:6])
    etc = os.path.join('/etc/netns', ns.name)
    try:
        os.makedirs(etc)
        with open(os.path.join(etc, 'os-release'), 'w') as handle:
            handle.write(release)
        key = str(tmp_path / 'private.key')
        call = dict(keys=dict(path=key), record=dict(name='x', fact_path=str(tmp_path / 'wglan.fact')),
                    meshes_root=str(tmp_path))
        refused = Playbook(ns, str(tmp_path)).one(MODULE, call)
        assert refused.get('failed'), refused
        assert 'Debian 12 and 13; Ubuntu 22.04 and 24.04' in refused['msg'], refused['msg']
        assert release.split('PRETTY_NAME="')[1].split('"')[0] in refused['msg'], refused['msg']
        assert 'nothing was changed' in refused['msg'] and 'nftables' in refused['msg'], refused['msg']
        assert not any(os.path.exists(str(tmp_path / made)) for made in ('private.key', 'wglan.fact', 'claims.json'))
        went_on = Playbook(ns, str(tmp_path)).one(MODULE, dict(call, supported_os_only=False))
        assert not went_on.get('failed'), went_on.get('msg')
        assert os.path.exists(key) and went_on['steps'][:1] == ['keys'], went_on
    finally:
        ns.destroy()
        shutil.rmtree(etc, ignore_errors=True)
