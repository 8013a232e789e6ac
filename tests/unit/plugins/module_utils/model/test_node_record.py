import ipaddress
import json
import os

import pytest

from ansible_collections.wglan.mesh.plugins.filter.member_records import member_records
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.model import node_records
from ansible_collections.wglan.mesh.plugins.module_utils.host import host_addresses
from ansible_collections.wglan.mesh.plugins.module_utils.host import state_files


def record(observed=None, **kw):
    base = node_records.build_record('a1', 'A' * 43 + '=', ipaddress.IPv6Address('200:1001::1'),
                                     [ipaddress.ip_interface('192.0.2.10/26')], 51820, observed=observed)
    base.update(kw)
    return base


def test_usable_node_ips_skip_mesh_local_and_excluded():
    mesh = ipaddress.ip_network('200:1001::/64')
    exclude = [ipaddress.ip_network('198.51.100.0/24')]
    ok = host_addresses.usable_node_ip
    assert ok(ipaddress.ip_interface('192.0.2.10/26'), mesh, exclude)
    assert not ok(ipaddress.ip_interface('200:1001::5/64'), mesh, exclude)
    assert not ok(ipaddress.ip_interface('fe80::1/64'), mesh, exclude)
    assert not ok(ipaddress.ip_interface('127.0.0.1/8'), mesh, exclude)
    assert not ok(ipaddress.ip_interface('198.51.100.7/24'), mesh, exclude)


def test_observations_alone_are_not_a_significant_change(tmp_path):
    path = str(tmp_path / 'facts.d' / 'wglan.fact')
    significant = node_records.without_observations
    assert state_files.write_json_if_changed(path, record(), significant=significant) is True
    assert state_files.write_json_if_changed(path, record(), significant=significant) is False
    moved = record(observed={'B' * 43 + '=': '203.0.113.101:51820'})
    assert state_files.write_json_if_changed(path, moved, significant=significant) is False
    with open(path) as handle:
        assert json.load(handle)['observed'] == moved['observed'], 'the cache is still refreshed'
    assert state_files.write_json_if_changed(path, record(port=51821), significant=significant) is True
    assert oct(os.stat(path).st_mode & 0o777) == '0o644'


def test_check_mode_writes_nothing(tmp_path):
    path = str(tmp_path / 'state.json')
    assert state_files.write_json_if_changed(path, {'x': 1}, check_mode=True) is True
    assert not os.path.exists(path)


def test_state_with_records_drops_observations_per_record():
    state = {'version': 1, 'records': {'a1': record(observed={'k': 'v'})}}
    assert 'observed' not in node_records.without_observations(state)['records']['a1']


class HostVars(dict):
    """Like Ansible's hostvars: a missing variable raises."""


def test_member_records_lines_up_and_tolerates_missing():
    hostvars = HostVars(a1={'wglan_record': {'name': 'a1'}}, b1={}, c1={'wglan_record': 'garbage'})
    assert member_records(['a1', 'b1', 'c1', 'ghost'], hostvars) == [{'name': 'a1'}, None, None, None]


def test_state_drops_observations_in_every_source_section():
    state = {'version': 1, 'records': {}, 'discovery': {'d1': record(observed={'k': 'v'})},
             'kubernetes': {'k1': record(observed={'k': 'v'})}}
    stripped = node_records.without_observations(state)
    assert 'observed' not in stripped['discovery']['d1'] and 'observed' not in stripped['kubernetes']['k1']
    assert stripped['kubernetes']['k1']['port'] == state['kubernetes']['k1']['port']


def test_a_record_its_peers_would_refuse_is_not_built():
    # (a port out of range was published once, and every peer refused the node's record)
    for port in (0, 70000, True, '51820'):
        with pytest.raises(WglanError, match='port must be 1-65535'):
            node_records.build_record('a1', 'A' * 43 + '=', ipaddress.IPv6Address('200:1001::1'), [], port)
