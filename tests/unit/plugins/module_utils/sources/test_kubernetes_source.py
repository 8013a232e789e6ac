import base64

import pytest

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.sources import kubernetes as k8s
from ansible_collections.wglan.mesh.plugins.module_utils.model.node_records import parse_record

KEY = base64.b64encode(b'\x01' * 32).decode()
RECORD = dict(version=1, name='node1', public_key=KEY, address='200:1001::1', node_ips=['192.0.2.10/26'],
              port=51820, extra_endpoints=['203.0.113.9:51999'], pod_cidrs=['10.244.9.0/24'],
              observed={KEY: '203.0.113.101:51820'})


def node(name='node1', annotations=None, spec=None, status=None):
    return {'metadata': {'name': name, 'annotations': annotations or {}}, 'spec': spec or {},
            'status': status or {}}


def test_round_trip_through_annotations():
    annotations = k8s.annotations_for_record(RECORD)
    assert set(annotations) == set(k8s.PREFIX + key for key in k8s.KEYS)
    assert all(isinstance(v, str) for v in annotations.values())
    record = k8s.record_from_node(node(annotations=annotations))  # parsed once, there
    assert record.as_dict() == parse_record(RECORD).as_dict()


def test_patch_touches_only_wglan_annotations_and_detects_change():
    patch = k8s.annotation_patch(RECORD)
    assert list(patch) == ['metadata'] and list(patch['metadata']) == ['annotations']
    assert all(key.startswith('wglan.mesh/') for key in patch['metadata']['annotations'])
    current = node(annotations=dict(k8s.annotations_for_record(RECORD), **{'other.io/x': 'y'}))
    assert not k8s.needs_patch(current, RECORD)
    assert k8s.needs_patch(current, dict(RECORD, port=51821))


def test_pod_cidrs_and_status_addresses_are_read():
    annotations = {'wglan.mesh/public-key': KEY, 'wglan.mesh/address': '200:1001::1'}
    raw = k8s.record_from_node(node(annotations=annotations,
                                    spec={'podCIDRs': ['10.244.1.0/24', 'fd00:10:244:1::/64']},
                                    status={'addresses': [{'type': 'InternalIP', 'address': '192.0.2.10'},
                                                          {'type': 'Hostname', 'address': 'node1'}]}))
    assert [str(n) for n in raw.pod_cidrs] == ['10.244.1.0/24', 'fd00:10:244:1::/64']
    assert [str(i) for i in raw.node_ips] == ['192.0.2.10/32']


def test_malformed_nodes_are_skipped_with_their_name_and_reason():
    good = node('good', k8s.annotations_for_record(dict(RECORD, name='good')))
    bad = [
        node('nokey', {'wglan.mesh/address': '200:1001::9'}),
        node('badkey', {'wglan.mesh/public-key': 'garbage'}),
        node('badcidr', {'wglan.mesh/public-key': KEY, 'wglan.mesh/assigned-prefixes': '10.0.0.1/8'}),
        node('badjson', {'wglan.mesh/public-key': KEY, 'wglan.mesh/observed': '{not json'}),
        node('badaddr', {'wglan.mesh/public-key': KEY},
             status={'addresses': [{'type': 'InternalIP', 'address': 'nonsense'}]}),
        'not a node',
    ]
    warnings = []
    not_member = node('plain', {'other/annotation': 'x'})
    records = k8s.records_from_nodes([bad[0], good, not_member] + bad[1:], warnings.append)
    assert [r.name for r in records] == ['good']
    assert len(warnings) == len(bad)
    for name in ('nokey', 'badkey', 'badcidr', 'badjson', 'badaddr'):
        assert any(name in w for w in warnings), name
    assert not any('plain' in w for w in warnings), 'a node that does not run wglan is not an error'


def test_a_node_whose_annotations_turn_bad_keeps_its_last_good_record():
    good = dict(RECORD, name='worker')
    broken = node('worker', dict(k8s.annotations_for_record(good), **{'wglan.mesh/observed': '{oops'}))
    warnings = []
    records = k8s.records_from_nodes([broken], warnings.append, last_good={'worker': good})
    assert [r.as_dict() for r in records] == [parse_record(good).as_dict()]
    assert len(warnings) == 1 and 'worker' in warnings[0] and 'last good record' in warnings[0]
    assert k8s.records_from_nodes([broken], warnings.append, last_good={'other': good}) == []


def test_a_withdrawal_round_trips_through_annotations_and_a_bad_flag_is_refused():
    withdrawn = dict(RECORD, withdrawn=True)
    record = k8s.record_from_node(node(annotations=k8s.annotations_for_record(withdrawn)))
    assert record.withdrawn is True and record.as_dict()['withdrawn'] is True
    assert k8s.record_from_node(node(annotations=k8s.annotations_for_record(RECORD))).withdrawn is False
    with pytest.raises(WglanError):
        parse_record(dict(RECORD, withdrawn='yes'))
