import base64

import pytest

from ansible_collections.wglan.mesh.plugins.module_utils import mesh, sources
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError


def key(n):
    return base64.b64encode(n.to_bytes(32, 'big')).decode()


def raw(name, n):
    return dict(name=name, public_key=key(n), address='200:1001::%x' % n, node_ips=['192.0.2.%d/24' % n])


def test_inventory_wins_and_bad_discovery_records_are_skipped_by_name():
    warnings = []
    inventory = [mesh.parse_record(raw('a1', 1)), mesh.parse_record(raw('a2', 2))]
    discovered = [raw('a1', 1), raw('a2', 9), raw('d1', 3), dict(raw('d2', 4), address='nonsense')]
    merged = sources.merge(inventory, discovered, warnings.append)
    assert [r.name for r in merged] == ['a1', 'a2', 'd1']
    assert merged[1].public_key == key(2)
    assert any('a2 has another public key' in w for w in warnings)
    assert any('d2: record skipped' in w and 'not an IPv6 address' in w for w in warnings)


def test_selector_hub_and_spoke():
    records = [mesh.parse_record(raw(n, i)) for i, n in enumerate(['hub1', 'a1', 'a2', 'b1'], start=1)]
    expression = "self.name == 'hub1' && nodes || nodes[?name == 'hub1']"
    spoke = sources.select(records, records[1], expression)
    assert sorted(r.name for r in spoke) == ['a1', 'hub1']
    hub = sources.select(records, records[0], expression)
    assert sorted(r.name for r in hub) == ['a1', 'a2', 'b1', 'hub1']
    by_name = sources.select(records, records[1], "['b1']")
    assert sorted(r.name for r in by_name) == ['a1', 'b1']


@pytest.mark.parametrize('expression,fragment', [
    ('nodes[?', 'not a valid JMESPath'),
    ("self.name", 'must give a list'),
    ('[`1`]', 'expected node records or names'),
])
def test_selector_errors_are_clear(expression, fragment):
    records = [mesh.parse_record(raw('a1', 1))]
    with pytest.raises(WglanError) as err:
        sources.select(records, records[0], expression)
    assert fragment in str(err.value)


class DeadService:
    def publish(self, record, ttl):
        raise WglanError('discovery service at http://192.0.2.1:8443 is unreachable: refused')

    fetch = publish


def test_unreachable_service_keeps_last_records():
    warnings = []
    saved = {'d1': raw('d1', 3)}
    records, published, reached = sources.from_discovery(DeadService(), raw('a1', 1), 60, saved, warnings.append,
                                                         check_mode=False)
    assert records == [saved['d1']] and published is None and reached is False
    assert 'keeping the 1 records it gave last time' in warnings[0]
