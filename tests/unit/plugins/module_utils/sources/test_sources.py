import base64
import time

import pytest

from ansible_collections.wglan.mesh.plugins.module_utils.model import node_records
from ansible_collections.wglan.mesh.plugins.module_utils.model import source_merge
from ansible_collections.wglan.mesh.plugins.module_utils.sources import discovery
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError


def key(n):
    return base64.b64encode(n.to_bytes(32, 'big')).decode()


def raw(name, n):
    return dict(name=name, public_key=key(n), address='200:1001::%x' % n, node_ips=['192.0.2.%d/24' % n])


def parsed(*raws):
    return [node_records.parse_record(r) for r in raws]


def test_inventory_wins_over_a_later_source():
    warnings = []
    inventory = parsed(raw('a1', 1), raw('a2', 2))
    merged = source_merge.merge(inventory, parsed(raw('a1', 1), raw('a2', 9), raw('d1', 3)), warnings.append)
    assert [r.name for r in merged] == ['a1', 'a2', 'd1']
    assert merged[1].public_key == key(2)
    assert any('a2 has another public key' in w for w in warnings)


def test_records_kept_from_last_time_are_parsed_once_and_a_bad_one_is_skipped_by_name():
    warnings = []
    kept = node_records.parse_known({'d1': raw('d1', 3), 'd2': dict(raw('d2', 4), address='nonsense')},
                                    warnings.append, 'discovery')
    assert [r.name for r in kept] == ['d1']
    assert len(warnings) == 1 and 'd2' in warnings[0] and 'not an IPv6 address' in warnings[0]


def test_a_live_source_says_where_an_inventory_node_is_now():
    # the inventory's record is from the last Ansible run; the node's watcher keeps the live one current
    inventory = [node_records.parse_record(dict(raw('a1', 1), pod_cidrs=['203.0.113.16/28'])), node_records.parse_record(raw('a2', 2))]
    moved = dict(raw('a1', 1), node_ips=['198.51.100.7/24'], discovery_observed='203.0.113.9',
                 observed={key(2): '192.0.2.2:51820'}, address='200:1001::99', pod_cidrs=[], name='elsewhere')
    merged = source_merge.merge(inventory, parsed(moved, dict(raw('a2', 2), node_ips=[])), [].append)
    assert [str(i) for i in merged[0].node_ips] == ['198.51.100.7/24']
    assert str(merged[0].public_ip) == '203.0.113.9'
    assert merged[0].observed == {key(2): '192.0.2.2:51820'}
    # who the node is stays the inventory's
    assert (merged[0].name, str(merged[0].address), [str(n) for n in merged[0].pod_cidrs]) == \
        ('a1', '200:1001::1', ['203.0.113.16/28'])
    # a live record that says nothing of its location leaves the inventory's
    assert [str(i) for i in merged[1].node_ips] == ['192.0.2.2/24'] and merged[1].public_ip is None
    # the earlier list is not changed in place
    assert [str(i) for i in inventory[0].node_ips] == ['192.0.2.1/24']


def test_records_kept_from_an_unreachable_source_do_not_move_anyone():
    inventory = [node_records.parse_record(raw('a1', 1))]
    stale = dict(raw('a1', 1), node_ips=['198.51.100.7/24'], discovery_observed='203.0.113.9')
    merged = source_merge.merge(inventory, parsed(stale), [].append, live=False)
    assert [str(i) for i in merged[0].node_ips] == ['192.0.2.1/24'] and merged[0].public_ip is None


def test_selector_hub_and_spoke():
    records = [node_records.parse_record(raw(n, i)) for i, n in enumerate(['hub1', 'a1', 'a2', 'b1'], start=1)]
    expression = "self.name == 'hub1' && nodes || nodes[?name == 'hub1']"
    spoke = source_merge.select(records, records[1], expression)
    assert sorted(r.name for r in spoke) == ['a1', 'hub1']
    hub = source_merge.select(records, records[0], expression)
    assert sorted(r.name for r in hub) == ['a1', 'a2', 'b1', 'hub1']
    by_name = source_merge.select(records, records[1], "['b1']")
    assert sorted(r.name for r in by_name) == ['a1', 'b1']


@pytest.mark.parametrize('expression,fragment', [
    ('nodes[?', 'not a valid JMESPath'),
    ("self.name", 'must give a list'),
    ('[`1`]', 'expected node records or names'),
])
def test_selector_errors_are_clear(expression, fragment):
    records = [node_records.parse_record(raw('a1', 1))]
    with pytest.raises(WglanError) as err:
        source_merge.select(records, records[0], expression)
    assert fragment in str(err.value)


class DeadService:
    """A service that cannot be reached (the client's own error for it); the real services are the
    integration tests' (test_discovery_service.py)."""
    url = 'http://192.0.2.1:8443'

    def publish(self, record, ttl, seq=None):
        raise WglanError('discovery service at http://192.0.2.1:8443 is unreachable: refused')

    def listing(self, warn, seen=None):
        return self.publish(None, None)


def test_unreachable_service_keeps_last_records():
    warnings = []
    saved = {'d1': raw('d1', 3)}
    outcome = discovery.from_discovery([DeadService()], raw('a1', 1), 60, saved, warnings.append, check_mode=False)
    assert [r.as_dict() for r in outcome.records] == [r.as_dict() for r in parsed(saved['d1'])]
    assert outcome.published is None and outcome.reached is False
    assert outcome.services == [dict(url='http://192.0.2.1:8443', reached=False, records=0)]
    assert 'keeping the 1 records it gave last time' in warnings[0]


class Serving(discovery.DiscoveryClient):
    """A service that answers listings it was given (entries sealed and signed as a node makes them);
    the sockets are the integration tests'. publish() records what it was asked to store."""

    def __init__(self, url, listing):
        discovery.DiscoveryClient.__init__(self, url, TOKEN)
        self.answer, self.published = listing, []

    def _call(self, method, path, body=None, auth=False, timeout=None):
        if self.answer is None:
            raise WglanError('discovery service at %s is unreachable: refused' % self.url)
        if method == 'PUT':
            self.published.append(body['seq'])
            return {'observed': '192.0.2.1'}
        return dict(version=1, members=self.answer)


TOKEN = 'unit-token-' + 'x' * 40
SIGNING = dict((n, discovery.crypto.signing_key()) for n in range(1, 4))


def entry(n, seq, ttl=600, name=None, **extra):
    """Member n's record as the service lists it."""
    member = discovery.crypto.member_id(key(n))
    signing = SIGNING[n]
    sealed = dict(raw(name or 'd%d' % n, n), discovery_issued=int(time.time()), discovery_ttl=ttl,
                  discovery_signer=discovery.crypto.public_signer(signing), **extra)
    data = discovery.crypto.RecordBox(TOKEN).seal(member, seq, sealed)
    return dict(member=member, seq=seq, ttl=ttl, data=data, signer=discovery.crypto.public_signer(signing),
                sig=discovery.crypto.sign(signing, 'put', discovery.crypto.RecordBox(TOKEN).cluster, member, seq, ttl, data),
                observed='192.0.2.%d' % n)


def test_several_services_newest_wins_and_one_sequence_number_is_published_to_all():
    warnings = []
    one, two = Serving('https://one', [entry(1, 10), entry(2, 20)]), Serving('https://two', [entry(1, 12), entry(3, 5)])
    outcome = discovery.from_discovery([one, two], raw('a1', 9), 60, {}, warnings.append, False)
    assert sorted(r.name for r in outcome.records) == ['d1', 'd2', 'd3'] and warnings == []
    assert outcome.seen[discovery.crypto.member_id(key(1))][0] == 12, 'the newest of the two'
    assert one.published == two.published and len(one.published) == 1


def test_a_member_one_service_has_only_older_keeps_the_newer_record_taken_before():
    """Service two took d1's newer record, one missed it; then two restarted empty. The older record
    on one is not taken (no going back), and d1 is not dropped either: the saved, newer one stays."""
    warnings = []
    first = discovery.from_discovery([Serving('https://one', [entry(1, 10)]), Serving('https://two', [entry(1, 12)])],
                                     None, 60, {}, warnings.append, False)
    saved = dict((r.name, r.as_dict()) for r in first.records)
    later = discovery.from_discovery([Serving('https://one', [entry(1, 10)]), Serving('https://two', [])],
                                     None, 60, saved, warnings.append, False, seen=first.seen)
    assert [r.name for r in later.records] == ['d1'], warnings
    assert any('older than 12' in w and 'https://one' in w for w in warnings), warnings
    assert later.seen == first.seen


def test_while_a_service_is_down_the_saved_records_stand_in_for_what_the_other_lacks_until_they_expire():
    warnings = []
    both = [Serving('https://one', [entry(1, 10), entry(2, 10, ttl=1)]), Serving('https://two', [])]
    first = discovery.from_discovery(both, None, 60, {}, warnings.append, False)
    saved = dict((r.name, r.as_dict()) for r in first.records)
    down = [Serving('https://one', None), Serving('https://two', [])]  # one down, two restarted empty
    now = discovery.from_discovery(down, None, 60, saved, warnings.append, False, seen=first.seen)
    assert sorted(r.name for r in now.records) == ['d1', 'd2'] and now.reached
    time.sleep(1.1)
    later = discovery.from_discovery(down, None, 60, saved, warnings.append, False, seen=first.seen)
    assert [r.name for r in later.records] == ['d1'], 'd2 would have expired on the service that is down'


def test_a_node_that_comes_back_with_another_key_is_taken_by_its_newest_record():
    """A reinstalled node publishes under a new key; its old record stays on the service until its TTL.
    The newest record of a name is the one used (before: the first member in the listing, either one)."""
    for old, new in ((1, 2), (2, 1)):  # whichever member sorts first
        warnings = []
        service = Serving('https://one', [entry(old, 10, name='web'), entry(new, 20, name='web'), entry(3, 5)])
        outcome = discovery.from_discovery([service], None, 60, {}, warnings.append, False)
        assert sorted((r.name, r.public_key) for r in outcome.records) == [('d3', key(3)), ('web', key(new))]
        assert any('newer record with another key' in w and key(old) in w for w in warnings), warnings


def test_the_old_record_of_a_rotated_key_goes_without_a_warning():
    warnings = []
    service = Serving('https://one', [entry(1, 10, name='web', next_public_key=key(2), next_key_at=1800000000),
                                      entry(2, 20, name='web')])
    outcome = discovery.from_discovery([service], None, 60, {}, warnings.append, False)
    assert [(r.name, r.public_key) for r in outcome.records] == [('web', key(2))] and warnings == []
