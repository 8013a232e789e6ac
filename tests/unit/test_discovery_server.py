"""The discovery service's tables (the program the discovery role installs), without the network:
bounds, expiry, database faults. The attacks over the network are tests/integration/test_discovery_attacks.py.
And the client's side: whatever a server answers, the client raises WglanError or gives records,
never anything else (property-based, bounded)."""
import importlib.util
import sqlite3
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from collection import DISCOVERY_SERVER
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.sources.discovery import DiscoveryClient

SPEC = importlib.util.spec_from_file_location('wglan_discovery_server', DISCOVERY_SERVER)
server = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(server)

M1, M2 = 'a' * 64, 'b' * 64


def store(tmp_path, **limits):
    return server.Store(str(tmp_path / 'records.db'), server.Limits(max_connections=100, **limits))


@pytest.mark.parametrize('ip, source', [
    ('192.0.2.7', '192.0.2.7'),
    ('::ffff:192.0.2.7', '192.0.2.7'),
    ('2001:db8:1:2:3:4:5:6', '2001:db8:1:2::/64'),
    ('fe80::1%eth0', 'fe80::/64'),
    ('not an address', 'not an address'),
])
def test_limits_count_an_ipv4_address_or_an_ipv6_slash_64(ip, source):
    assert server.source_of(ip) == source


def test_a_cluster_goes_with_its_last_member_and_its_history_ages_out(tmp_path):
    s = store(tmp_path, history_seconds=0)
    s.put('c', M1, 'key-1', 1, 'AAAA', 60, '192.0.2.1')
    s.put('c', M2, 'key-1', 1, 'AAAA', 60, '192.0.2.2')
    s.delete('c', M1, 'key-1')
    assert 'c' in s.clusters and len(s.clusters['c'].changes) == 3
    s.expire()
    assert len(s.clusters['c'].changes) == 0, 'history older than history_seconds is dropped'
    s.delete('c', M2, 'key-1')
    assert 'c' not in s.clusters
    assert s.db.execute('SELECT COUNT(*) FROM clusters').fetchone()[0] == 0
    # nobody owns the name any more: another key may make it again
    s.put('c', M1, 'key-2', 1, 'AAAA', 60, '192.0.2.1')


def test_expiry_drops_the_cluster_in_memory_and_in_the_database(tmp_path):
    s = store(tmp_path)
    s.put('c', M1, 'key', 1, 'AAAA', 1, '192.0.2.1')
    s.expire(now=s.clusters['c'].members[M1]['expires'] + 1)
    assert s.clusters == {}
    assert s.db.execute('SELECT COUNT(*) FROM members').fetchone()[0] == 0
    assert s.db.execute('SELECT COUNT(*) FROM clusters').fetchone()[0] == 0


def test_the_number_of_clusters_has_a_bound(tmp_path):
    s = store(tmp_path, max_clusters=2)
    s.put('c1', M1, 'key', 1, 'AAAA', 60, '192.0.2.1')
    s.put('c2', M1, 'key', 1, 'AAAA', 60, '192.0.2.1')
    with pytest.raises(server.HttpError) as raised:
        s.put('c3', M1, 'key', 1, 'AAAA', 60, '192.0.2.1')
    assert raised.value.status == 503 and 'c3' not in s.clusters
    s.put('c2', M2, 'key', 1, 'AAAA', 60, '192.0.2.1')  # an existing cluster still takes members


class FailingDatabase:
    """sqlite3's connection, failing every write after the first n statements (a full disk)."""

    def __init__(self, db, after):
        self.db, self.after = db, after

    def execute(self, sql, args=()):
        if sql.split()[0] in ('INSERT', 'DELETE'):
            if self.after <= 0:
                raise sqlite3.OperationalError('database or disk is full')
            self.after -= 1
        return self.db.execute(sql, args)

    def close(self):
        self.db.close()


def test_a_database_fault_is_a_503_that_changes_nothing_in_memory_or_on_disk(tmp_path):
    s = store(tmp_path)
    s.put('c', M1, 'key', 1, 'AAAA', 60, '192.0.2.1')
    s.db = FailingDatabase(s.db, after=0)
    with pytest.raises(server.HttpError) as raised:
        s.put('c', M2, 'key', 1, 'AAAA', 60, '192.0.2.1')
    assert raised.value.status == 503
    with pytest.raises(server.HttpError):
        s.put('new', M1, 'key', 1, 'AAAA', 60, '192.0.2.1')
    assert set(s.clusters) == {'c'} and set(s.clusters['c'].members) == {M1}
    assert s.db.execute('SELECT COUNT(*) FROM members').fetchone()[0] == 1
    assert s.db.execute('SELECT COUNT(*) FROM clusters').fetchone()[0] == 1
    assert s.faults == 2


def test_expiry_that_cannot_delete_hides_the_record_and_deletes_it_later(tmp_path):
    s = store(tmp_path)
    s.put('c', M1, 'key', 1, 'AAAA', 60, '192.0.2.1')
    s.put('c', M2, 'key', 1, 'AAAA', 600, '192.0.2.1')
    s.clusters['c'].members[M1]['expires'] = time.time() - 1  # (as the database has it: expired)
    real = s.db
    s.db = FailingDatabase(real, after=0)
    s.expire()
    assert M1 in s.clusters['c'].members, 'kept while the database still has it'
    assert [m['member'] for m in s.listing('c')['members']] == [M2]
    s.db = real
    s.expire()
    assert M1 not in s.clusters['c'].members
    assert s.db.execute('SELECT member FROM members').fetchall() == [(M2,)]


def test_the_rate_limiters_table_is_pruned_and_bounded():
    limiter = server.RateLimiter(rate=1.0, burst=2, max_buckets=3)
    assert all(limiter.allow(ip, now=0) for ip in ('192.0.2.1', '192.0.2.2', '192.0.2.3'))
    assert not limiter.allow('192.0.2.4', now=0.5), 'a full table refuses newcomers until it can prune'
    assert limiter.allow('192.0.2.4', now=1.5), 'buckets that filled up again are forgotten'
    assert len(limiter.buckets) == 1
    limiter.prune(now=10)
    assert limiter.buckets == {}


def test_a_source_that_keeps_coming_after_its_429s_goes_into_debt_and_out_of_it():
    limiter = server.RateLimiter(rate=10.0, burst=5)
    assert [limiter.allow('s', now=0) for _n in range(7)] == [True] * 5 + [False] * 2
    assert not limiter.in_debt('s', now=0), 'a couple of 429s: answered, not cut off'
    for _n in range(10):
        limiter.allow('s', now=0)
    assert limiter.in_debt('s', now=0) and limiter.tokens('s', now=0) == -10, 'the debt has a floor'
    assert limiter.in_debt('s', now=0.4) and not limiter.in_debt('s', now=0.6), 'quiet, it earns its way back'
    assert not limiter.allow('s', now=0.6) and limiter.allow('s', now=2.0)


# -- the client against a server that answers anything --------------------------------------------

JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=8),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=20)
ENTRY = st.fixed_dictionaries({}, optional={'member': st.text(max_size=70) | st.just('ab' * 32),
                                            'seq': JSON, 'data': JSON | st.text(max_size=40),
                                            'observed': JSON})


class Answering(DiscoveryClient):
    """The client's own parsing, fed an answer instead of a socket (the socket path is the
    integration tests'): what a lying or broken server could send."""

    def __init__(self, answer):
        DiscoveryClient.__init__(self, 'http://192.0.2.1:8443', 'token')
        self.answer = answer

    def _call(self, method, path, body=None, auth=False, timeout=None):
        if not isinstance(self.answer, dict):
            raise WglanError('not an object')  # (what _call itself does, tested below)
        return dict(self.answer)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(answer=st.dictionaries(st.sampled_from(['version', 'members', 'reset', 'deleted']),
                              JSON | st.lists(ENTRY, max_size=5), max_size=4))
def test_any_listing_a_server_sends_gives_records_or_a_wglan_error(answer):
    warnings = []
    client = Answering(answer)
    for call in (lambda: client.fetch(warnings.append), lambda: client.watch(0, warnings.append)):
        try:
            result = call()
        except WglanError:
            continue
        records = result[1] if isinstance(result, tuple) else result['records']
        assert isinstance(records, list)
