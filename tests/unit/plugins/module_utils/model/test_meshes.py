"""model.meshes: the paths of each mesh on a host, and the clashes between two meshes' claims."""
import pytest

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.host import meshes_on_host
from ansible_collections.wglan.mesh.plugins.module_utils.model import meshes
from ansible_collections.wglan.mesh.plugins.module_utils.model.settings import SETTINGS_PATH, STATE_PATH, \
    STATUS_PATH, WATCHER_CONFIG, WATCHER_STATE


def test_the_default_mesh_keeps_the_paths_of_every_earlier_version():
    paths = meshes.paths('')
    assert (paths['settings'], paths['state'], paths['watcher_config'], paths['relays'], paths['status']) == \
        (SETTINGS_PATH, STATE_PATH, WATCHER_CONFIG, WATCHER_STATE, STATUS_PATH)
    assert (paths['key'], paths['fact_path'], paths['fact_name'], paths['unit'], paths['table']) == (
        '/etc/wglan/private.key', '/etc/ansible/facts.d/wglan.fact', 'wglan_record', 'wglan-watcher.service', 'wglan')
    assert paths['names_domain'] == 'wglan.internal'
    assert meshes.paths(None) == paths


def test_a_named_mesh_has_files_unit_and_table_of_its_own():
    prod, mgmt = meshes.paths('prod'), meshes.paths('mgmt')
    assert mgmt['key'] == '/etc/wglan/mgmt/private.key' and mgmt['relays'] == '/run/wglan/mgmt/paths.json'
    wanted = ('wglan-watcher@mgmt.service', 'wglan_mgmt', 'wglan_record_mgmt')
    assert (mgmt['unit'], mgmt['table'], mgmt['fact_name']) == wanted
    assert mgmt['names_domain'] == 'mgmt.wglan.internal'
    default = meshes.paths('')
    assert mgmt['watcher_records'] == '/etc/wglan/mgmt/watcher-mesh.json'
    for name in ('key', 'settings', 'state', 'watcher_records', 'watcher_config', 'claims', 'relays', 'status', 'rotate_request',
                 'fact_path', 'fact_name', 'unit', 'table', 'names_domain'):
        assert len(set([prod[name], mgmt[name], default[name]])) == 3, name


@pytest.mark.parametrize('bad', ['Prod', '1mesh', 'my-mesh', 'a' * 11, '../etc', 'x y'])
def test_a_bad_mesh_name_is_refused_with_the_rule(bad):
    with pytest.raises(WglanError, match='lower case letters and digits'):
        meshes.parse_name(bad)


def default_claims(**changes):
    values = dict(mesh='', interface='wglan0', kubernetes=True, ports=['51820-51851'], prefix='200:1001::/64',
                  ipv4_prefix='10.98.0.0/16', route_table=180, rule_priority=32500, wg_mark=0x20, route_mark=0x40,
                  mark_mask=0x60)
    values.update(changes)
    return meshes.Claims(**values)


def mgmt_claims(**changes):
    values = dict(mesh='mgmt', interface='wgmgmt0', ports=[51900], prefix='fd42:1::/64', ipv4_prefix='10.99.0.0/16',
                  route_table=181, rule_priority=32501, wg_mark=0x20, route_mark=0x100, mark_mask=0x120)
    values.update(changes)
    return meshes.Claims(**values)


def test_two_meshes_that_share_nothing_have_no_clash():
    assert meshes.conflicts(mgmt_claims(), [default_claims()]) == []
    assert meshes.conflicts(default_claims(), [mgmt_claims()]) == []
    # the same mesh's own earlier claims are never a clash
    assert meshes.conflicts(default_claims(), [default_claims()]) == []


@pytest.mark.parametrize('change, words', [
    (dict(interface='wglan0'), 'both use interface wglan0'),
    (dict(ports=[51830]), 'UDP ports'),
    (dict(prefix='200:1001::/48'), 'overlapping prefixes'),
    (dict(ipv4_prefix='10.98.7.0/24'), 'overlapping prefixes'),
    (dict(route_table=180), 'route table 180'),
    (dict(rule_priority=32500), 'rule priority 32500'),
    (dict(table='wglan'), 'table wglan'),
    (dict(wg_mark=0x80, mark_mask=0x180), 'the same wglan_fwmark'),
    (dict(route_mark=0x40, mark_mask=0x60), 'outside the other'),
    (dict(route_mark=0x100, mark_mask=0x160), 'outside the other'),
    (dict(kubernetes=True), 'Kubernetes source'),
])
def test_each_clash_is_named_with_both_meshes_and_the_setting(change, words):
    found = meshes.conflicts(mgmt_claims(**change), [default_claims()])
    assert len(found) == 1 and words in found[0] and 'mesh mgmt and mesh (default)' in found[0], found


def test_claims_of_a_call_and_values_that_do_not_parse():
    steps = dict(address=dict(prefix='fd42:1::/64'), record=dict(interface='wgmgmt0', port='51900'),
                 mesh=dict(interface='wgmgmt0', listen_port='51900', listen_port_auto='False', ipv4_prefix='10.99.0.0/16'),
                 rules=dict(route_table='181', rule_priority=32501, wg_mark=32, route_mark='256', mark_mask=288))
    claims = meshes.claims_of_call('mgmt', steps)
    assert claims.as_dict() == dict(version=1, mesh='mgmt', interface='wgmgmt0', ports=['51900'], prefix='fd42:1::/64',
                                    ipv4_prefix='10.99.0.0/16', route_table=181, rule_priority=32501, wg_mark=32,
                                    route_mark=256, mark_mask=288, table='wglan_mgmt')
    auto = meshes.claims_of_call('', dict(mesh=dict(listen_port=51820, listen_port_auto=True)))
    assert auto.ports == [(51820, 51851)] and auto.route_table is None  # (no rules step: no table claimed)
    # a rules step that gives none of them claims its module's defaults
    plain = meshes.claims_of_call('', dict(rules=dict(interface='wglan0')))
    assert (plain.route_table, plain.rule_priority, plain.wg_mark, plain.route_mark, plain.mark_mask) == (
        180, 32500, 0x20, 0x40, 0x60)
    # what does not parse claims nothing (the step that takes it says what is wrong)
    odd = meshes.claims_of_call('', dict(mesh=dict(listen_port='not-a-port', ipv4_prefix='nonsense')))
    assert odd.ports == [] and odd.ipv4_prefix is None
    assert meshes.Claims.from_dict(claims.as_dict()).as_dict() == claims.as_dict()


def test_the_host_s_meshes_are_read_from_their_claims_files(tmp_path):
    root = str(tmp_path)
    assert meshes_on_host.read_all(root) == []
    meshes_on_host.write(default_claims(), meshes_on_host.claims_path('', root))
    meshes_on_host.write(mgmt_claims(), meshes_on_host.claims_path('mgmt', root))
    (tmp_path / 'odd').mkdir()
    (tmp_path / 'odd' / 'claims.json').write_text('{not json')
    (tmp_path / 'Bad-Name').mkdir()
    assert sorted(c.mesh for c in meshes_on_host.read_all(root)) == ['', 'mgmt']
    assert meshes_on_host.mesh_interfaces(root) == {'wglan0', 'wgmgmt0'}
    assert [c.mesh for c in meshes_on_host.others('', root)] == ['mgmt']


def test_each_mesh_s_watcher_unit_and_the_program_goes_with_the_last(tmp_path, monkeypatch):
    """(systemctl is not run here: remove in check mode says what it would remove)"""
    from ansible_collections.wglan.mesh.plugins.module_utils.host import watcher_service
    units = tmp_path / 'units'
    units.mkdir()
    monkeypatch.setattr(watcher_service, 'UNIT_DIR', str(units))
    program = tmp_path / 'wglan'
    program.write_text('#!/bin/sh\n')
    monkeypatch.setattr(watcher_service, 'COMMAND_PATH', str(program))
    monkeypatch.setattr(watcher_service, 'LIBRARY_PATH', str(tmp_path / 'library.zip'))
    for name in ('wglan-watcher.service', 'wglan-watcher@mgmt.service', 'wglan-wireguard-go-wglan0.service'):
        (units / name).write_text('[Service]\n')
    assert watcher_service.other_units('wglan-watcher@mgmt.service') == ['wglan-watcher.service']
    assert watcher_service.other_units('wglan-watcher.service') == ['wglan-watcher@mgmt.service']
    assert watcher_service.unit_path(meshes.paths('mgmt')['unit']) == str(units / 'wglan-watcher@mgmt.service')
    mgmt = str(units / 'wglan-watcher@mgmt.service')
    assert watcher_service.removable('wglan-watcher@mgmt.service') == [mgmt]  # the default mesh's watcher stays
    (units / 'wglan-watcher.service').unlink()
    assert watcher_service.removable('wglan-watcher@mgmt.service') == [mgmt, str(program)]  # the last one
    assert watcher_service.remove(check_mode=True, unit_name='wglan-watcher@mgmt.service') is True
    program.unlink()
    (units / 'wglan-watcher@mgmt.service').unlink()
    assert watcher_service.remove(check_mode=True, unit_name='wglan-watcher@mgmt.service') is False
