"""The discovery service's tables (the program the discovery role installs), without the network:
bounds, expiry, database faults. The attacks over the network are tests/integration/test_discovery_attacks.py.
And the client's side: whatever a server answers, the client raises WglanError or gives records,
never anything else (property-based, bounded)."""
import hashlib
import importlib.util
import sqlite3
import time

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from collection import DISCOVERY_SERVER
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.model import certificates
from ansible_collections.wglan.mesh.plugins.module_utils.model import keys as keys_model
from ansible_collections.wglan.mesh.plugins.module_utils.sources import discovery_crypto as crypto
from ansible_collections.wglan.mesh.plugins.module_utils.sources.discovery import DiscoveryClient

SPEC = importlib.util.spec_from_file_location('wglan_discovery_server', DISCOVERY_SERVER)
server = importlib.util.module_from_spec(SPEC)
SPEC.loader.exec_module(server)

M1, M2 = 'a' * 64, 'b' * 64
KEYS = dict((m, crypto.signing_key()) for m in (M1, M2))  # each member's signing key


def store(tmp_path, **limits):
    return server.Store(str(tmp_path / 'records.db'), server.Limits(max_connections=100, **limits))


def put(s, cluster, member, write_key, seq, data='AAAA', ttl=60, observed='192.0.2.1', signing=None):
    """A write as a member makes it: signed with its key."""
    signing = signing or KEYS[member]
    return s.put(cluster, member, write_key, seq, data, ttl, observed, crypto.public_signer(signing),
                 crypto.sign(signing, 'put', cluster, member, seq, ttl, data))


def delete(s, cluster, member, write_key, seq, signing=None):
    signing = signing or KEYS[member]
    return s.delete(cluster, member, write_key, seq, crypto.public_signer(signing),
                    crypto.sign(signing, 'delete', cluster, member, seq, 0))


def key(cluster, write_key):
    """Where the service files a cluster: its name and the SHA-256 of its write key."""
    return (cluster, hashlib.sha256(write_key.encode('utf-8')).hexdigest())


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
    put(s, 'c', M1, 'key-1', 1, observed='192.0.2.1')
    put(s, 'c', M2, 'key-1', 1, observed='192.0.2.2')
    delete(s, 'c', M1, 'key-1', 9)
    c = key('c', 'key-1')
    assert c in s.clusters and len(s.clusters[c].changes) == 3
    s.expire()
    assert len(s.clusters[c].changes) == 0, 'history older than history_seconds is dropped'
    delete(s, 'c', M2, 'key-1', 9)
    assert c not in s.clusters
    assert s.db.execute('SELECT COUNT(*) FROM records').fetchone()[0] == 0


def test_expiry_drops_the_cluster_in_memory_and_in_the_database(tmp_path):
    s = store(tmp_path)
    put(s, 'c', M1, 'key', 1, ttl=1)
    s.expire(now=s.clusters[key('c', 'key')].members[M1]['expires'] + 1)
    assert s.clusters == {}
    assert s.db.execute('SELECT COUNT(*) FROM records').fetchone()[0] == 0


def test_the_number_of_clusters_has_a_bound(tmp_path):
    s = store(tmp_path, max_clusters=2)
    put(s, 'c1', M1, 'key', 1)
    put(s, 'c2', M1, 'key', 1)
    with pytest.raises(server.HttpError) as raised:
        put(s, 'c3', M1, 'key', 1)
    assert raised.value.status == 503 and key('c3', 'key') not in s.clusters
    put(s, 'c2', M2, 'key', 1)  # an existing cluster still takes members


def test_a_name_cannot_be_squatted_a_write_with_another_key_makes_another_cluster(tmp_path):
    s = store(tmp_path)
    put(s, 'c', M1, 'squatter', 1)               # first, with a key not derived from the token
    put(s, 'c', M2, 'key', 1)                    # the real cluster is not refused
    assert s.listing(key('c', 'key'))['members'][0]['member'] == M2
    assert [m['member'] for m in s.listing(key('c', 'squatter'))['members']] == [M1]
    assert s.listing(s.readable('c', key('c', 'key')[1]))['members'][0]['member'] == M2
    with pytest.raises(server.HttpError) as raised:
        s.readable('c', '')
    assert raised.value.status == 401


def test_a_member_slot_takes_only_writes_signed_by_the_key_of_its_first_write(tmp_path):
    s = store(tmp_path)
    put(s, 'c', M1, 'key', 1)
    other = crypto.signing_key()  # another token holder (a compromised member)
    for attempt in (lambda: put(s, 'c', M1, 'key', 2, signing=other),
                    lambda: delete(s, 'c', M1, 'key', 2, signing=other)):
        with pytest.raises(server.HttpError) as raised:
            attempt()
        assert raised.value.status == 403
    # the right signer, but a signature over something else (the data changed on the way)
    signer, sig = crypto.public_signer(KEYS[M1]), crypto.sign(KEYS[M1], 'put', 'c', M1, 3, 60, 'AAAA')
    with pytest.raises(server.HttpError) as raised:
        s.put('c', M1, 'key', 3, 'BBBB', 60, '192.0.2.1', signer, sig)
    assert raised.value.status == 403
    with pytest.raises(server.HttpError) as raised:  # a delete older than the record (a replay)
        delete(s, 'c', M1, 'key', 1)
    assert raised.value.status == 409
    assert s.clusters[key('c', 'key')].members[M1]['seq'] == 1
    delete(s, 'c', M1, 'key', 2)
    assert key('c', 'key') not in s.clusters


@pytest.mark.parametrize('signer, sig', [(None, None), ('', ''), ('AAAA', 'AAAA'), ('A' * 44, 'B' * 88), (1, [])])
def test_a_write_without_a_good_signature_is_refused(tmp_path, signer, sig):
    s = store(tmp_path)
    with pytest.raises(server.HttpError) as raised:
        s.put('c', M1, 'key', 1, 'AAAA', 60, '192.0.2.1', signer, sig)
    assert raised.value.status in (400, 403)
    assert s.clusters == {}


def test_a_watch_of_a_cluster_the_service_lost_is_told_at_once(tmp_path):
    s = store(tmp_path)
    answer, wait_on = s.changes_since(key('c', 'key'), 12345)
    assert answer == dict(version=0, reset=True, members=[], deleted=[]) and wait_on is None
    assert s.changes_since(key('c', 'key'), 0) == (None, None), 'a watch from the start waits'


def test_records_of_an_earlier_version_are_dropped_at_start(tmp_path):
    path = str(tmp_path / 'records.db')
    db = sqlite3.connect(path)
    db.execute('CREATE TABLE clusters (cluster TEXT PRIMARY KEY, verifier TEXT NOT NULL)')
    db.execute('CREATE TABLE members (cluster TEXT, member TEXT, seq INTEGER, data TEXT, observed TEXT, expires REAL)')
    db.execute("INSERT INTO clusters VALUES ('c', 'v')")
    db.execute("INSERT INTO members VALUES ('c', ?, 1, 'AAAA', '192.0.2.1', ?)", (M1, time.time() + 600))
    db.commit()
    db.close()
    s = server.Store(path, server.Limits(max_connections=100))
    assert s.clusters == {}
    put(s, 'c', M1, 'key', 1)
    s.db.close()
    again = server.Store(path, server.Limits(max_connections=100))
    assert list(again.clusters[key('c', 'key')].members) == [M1], 'a restart keeps what the service has'


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

    @property
    def in_transaction(self):
        return self.db.in_transaction

    def close(self):
        self.db.close()


def test_a_database_fault_is_a_503_that_changes_nothing_in_memory_or_on_disk(tmp_path):
    s = store(tmp_path)
    put(s, 'c', M1, 'key', 1)
    s.db = FailingDatabase(s.db, after=0)
    with pytest.raises(server.HttpError) as raised:
        put(s, 'c', M2, 'key', 1)
    assert raised.value.status == 503
    with pytest.raises(server.HttpError):
        put(s, 'new', M1, 'key', 1)
    assert set(s.clusters) == {key('c', 'key')} and set(s.clusters[key('c', 'key')].members) == {M1}
    assert s.db.execute('SELECT COUNT(*) FROM records').fetchone()[0] == 1
    assert s.faults == 2


def test_expiry_goes_on_in_memory_on_a_full_disk_and_reaches_the_database_when_space_returns(tmp_path):
    """A full disk once stopped expiry for good (records stayed, the write-ahead log was never folded
    back). Now expiry goes on in memory, the deletes wait, and the next sweep with space writes them."""
    s = store(tmp_path)
    c = key('c', 'key')
    put(s, 'c', M1, 'key', 1)
    put(s, 'c', M2, 'key', 1, ttl=600)
    held = s.bytes
    s.clusters[c].members[M1]['expires'] = time.time() - 1  # (as the database has it: expired)
    real = s.db
    s.db = FailingDatabase(real, after=0)
    s.expire()
    assert M1 not in s.clusters[c].members and [m['member'] for m in s.listing(c)['members']] == [M2]
    assert s.bytes < held and s.unwritten == {c + (M1,)}
    assert sorted(real.execute('SELECT member FROM records').fetchall()) == [(M1,), (M2,)]
    s.db = real
    s.expire()
    assert s.unwritten == set() and s.db.execute('SELECT member FROM records').fetchall() == [(M2,)]


def test_a_restart_on_a_database_over_the_budget_loads_the_newest_up_to_it(tmp_path):
    """55 000 records of 2 KB once brought a restarted service to 261 MB before its first request (killed at
    every start under MemoryMax=256M). Now it loads the newest records up to the records' share of its
    budget; the rest go from the database at the first sweep."""
    s = store(tmp_path)
    data = 'A' * 2732  # (2 KiB sealed, in base64)
    for n in range(60):
        put(s, 'c%d' % (n % 3), 'a' * 62 + '%02d' % n, 'key', 1, data=data, ttl=100 + n,
            signing=KEYS[M1])
    s.db.close()
    each = server.record_cost(dict(data=data, signer='x' * 44, sig='y' * 88, observed='192.0.2.1'))
    limits = server.Limits(max_connections=100, memory_budget=int(each * 20.5 / server.RECORDS_SHARE))
    again = server.Store(str(tmp_path / 'records.db'), limits)
    kept = sorted(m for c in again.clusters.values() for m in c.members)
    assert len(kept) == 20 and kept == ['a' * 62 + '%02d' % n for n in range(40, 60)]  # the newest
    assert again.bytes <= limits.record_bytes
    again.expire()
    assert again.db.execute('SELECT COUNT(*) FROM records').fetchone()[0] == 20
    # and no new record while the budget is full; a record held is still refreshed
    with pytest.raises(server.HttpError) as raised:
        put(again, 'c0', M2, 'key', 1, data=data)
    assert raised.value.status == 503
    put(again, 'c2', 'a' * 62 + '59', 'key', 2, data=data, ttl=100, signing=KEYS[M1])


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


def cgroups(tmp_path, line, files):
    """A /proc/self/cgroup of one line and a cgroup tree with the given files (path -> text)."""
    tmp_path.mkdir(parents=True, exist_ok=True)
    (tmp_path / 'proc').write_text(line + '\n')
    for path, text in files.items():
        (tmp_path / 'cg' / path).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / 'cg' / path).write_text(text + '\n')
    return server.cgroup_memory_limit(str(tmp_path / 'proc'), str(tmp_path / 'cg'))


def test_the_budget_is_the_smallest_memory_limit_of_the_cgroup_and_those_above_it(tmp_path):
    unit = 'system.slice/wglan-discovery.service'
    # cgroup v2: the unit's MemoryMax, under a slice without one
    assert cgroups(tmp_path / 'a', '0::/' + unit, {unit + '/memory.max': '268435456',
                                                   'system.slice/memory.max': 'max'}) == 256 << 20
    # a slice above with less wins
    assert cgroups(tmp_path / 'b', '0::/' + unit, {unit + '/memory.max': '268435456',
                                                   'system.slice/memory.max': '104857600'}) == 100 << 20
    # cgroup v1: "no limit" is a number near 2**63
    assert cgroups(tmp_path / 'c', '9:name=systemd:/x\n4:memory:/' + unit,
                   {'memory/' + unit + '/memory.limit_in_bytes': '9223372036854771712',
                    'memory/system.slice/memory.limit_in_bytes': '1073741824'}) == 1 << 30
    # none anywhere, or nothing to read
    assert cgroups(tmp_path / 'd', '0::/' + unit, {unit + '/memory.max': 'max'}) is None
    assert server.cgroup_memory_limit(str(tmp_path / 'missing'), str(tmp_path)) is None


class Conn:
    def __init__(self, source):
        self.source, self.transport, self.served, self.handshaking = source, object(), 0, False


def test_a_bare_connection_is_counted_before_its_handshake_and_refused_when_memory_is_tight():
    used = [10 << 20]
    clock = [0.0]
    limits = server.Limits(max_connections=100, connections_per_source=3, max_handshakes=2, memory_budget=100 << 20)
    connections = server.Connections(limits, server.RateLimiter(0, 10),
                                     server.Memory(limits.memory_budget, lambda: used[0], lambda: clock[0]))
    first = [Conn('192.0.2.1') for _n in range(4)]
    got = [connections.admit(c, tls=True) for c in first]
    # two handshakes at once at most, whatever the source
    assert got[:2] == [server.SERVE, server.SERVE] and got[2:] == [None, None]
    assert connections.refused == {'handshakes': 2} and connections.handshakes == 2
    first[0].handshaking = True
    connections.release(first[0])  # a handshake that failed frees its place
    assert connections.handshakes == 1 and connections.total == 1
    connections.secured(first[1], first[1].transport, object())  # one that succeeded too
    assert connections.handshakes == 0 and connections.total == 1
    # the source's share is counted for bare connections: 3 in all
    more = [Conn('192.0.2.1') for _n in range(3)]
    assert [connections.admit(c, tls=True) for c in more] == [server.SERVE, server.SERVE, None]
    assert connections.refused['per source'] == 1
    # past 80 % of the budget nothing new comes in (read again after 50 ms)
    used[0] = 81 << 20
    assert connections.admit(Conn('192.0.2.9')) == server.SERVE  # (the last reading still stands)
    clock[0] += 0.1
    assert connections.admit(Conn('192.0.2.10')) is None and connections.refused['memory'] == 1
    assert connections.memory.peak == 81 << 20


def test_the_connections_held_fit_the_memory_budget_and_the_file_limit():
    fds = server.fd_budget()
    assert server.connection_budget(None) == fds
    assert server.connection_budget(256 << 20) == min(fds, int((256 << 20) * 0.8 - (64 << 20)) // server.CONNECTION_COST)
    assert server.connection_budget(1 << 20) == 16
    limits = server.Limits(memory_budget=256 << 20)
    assert 16 <= limits.max_handshakes <= 1024 and limits.max_handshakes == max(16, min(1024, limits.max_connections // 8))


def test_the_budget_the_role_gives_is_read_as_systemd_reads_memory_max():
    assert server.memory_size('256M') == 256 << 20 and server.memory_size('1G') == 1 << 30
    assert server.memory_size('1.5g') == 3 << 29 and server.memory_size('268435456') == 256 << 20
    assert server.memory_size('infinity') is None and server.memory_size('') is None
    assert 0 < server.memory_size('10%') < server.memory_size('20%')
    for bad in ('256X', '-1M', '1K', 'M', '0%', '150%', 'lots'):
        with pytest.raises(ValueError):
            server.memory_size(bad)


def test_an_address_and_its_network_may_make_only_so_many_clusters_that_live(tmp_path):
    s = store(tmp_path, clusters_per_source=2, clusters_per_network=3)
    put(s, 'a', M1, 'k1', 1, observed='192.0.2.1')
    put(s, 'b', M1, 'k2', 1, observed='192.0.2.1')
    with pytest.raises(server.HttpError) as raised:
        put(s, 'c', M1, 'k3', 1, observed='192.0.2.1')
    assert raised.value.status == 429 and '192.0.2.1 made 2 clusters' in str(raised.value)
    put(s, 'a', M2, 'k1', 1, observed='192.0.2.1')  # (joining a cluster is not making one)
    put(s, 'c', M1, 'k3', 1, observed='192.0.2.2')  # another address of the /24: its third
    with pytest.raises(server.HttpError) as raised:
        put(s, 'd', M1, 'k4', 1, observed='192.0.2.3')
    assert '192.0.2.0/24 made 3' in str(raised.value)
    put(s, 'd', M1, 'k4', 1, observed='198.51.100.1')  # another network
    # IPv6: a /64 is one address, a /48 one network
    put(s, 'e', M1, 'k5', 1, observed='2001:db8:1:1::1')
    put(s, 'f', M1, 'k6', 1, observed='2001:db8:1:1::2')
    with pytest.raises(server.HttpError):
        put(s, 'g', M1, 'k7', 1, observed='2001:db8:1:1::3')
    # a cluster that goes gives its maker a place back
    delete(s, 'c', M1, 'k3', 2)
    put(s, 'h', M1, 'k8', 1, observed='192.0.2.3')
    assert s.made_by['192.0.2.0/24'] == 3 and s.made_by['192.0.2.2'] == 0


@pytest.mark.parametrize('argv, message', [
    (['--listen', '0.0.0.0'], 'give address:port'),
    (['--listen', '192.0.2.1:70000'], 'a port from 1 to 65535'),
    (['--listen', 'fe80::1:8443'], 'an IPv6 address goes in brackets'),
    (['--listen', '[nope]:8443'], 'is not an IPv6 address'),
    (['--memory-budget', '256Q'], 'a memory budget'),
    (['--rate', '-1'], '--rate must be 0 or more'),
    (['--header-timeout', 'nan'], '--header-timeout must be more than 0'),
    (['--slot-ca', 'not-a-key'], 'is not an Ed25519 public key in base64'),
    (['--slot-ca', 'AAAA'], 'is not an Ed25519 public key in base64'),
])
def test_the_options_the_role_checks_before_it_changes_the_unit(capsys, argv, message):
    """What the discovery role runs (--check) before it changes the unit: the service's own parsing."""
    with pytest.raises(SystemExit) as raised:
        server.main(['--check'] + argv)
    assert raised.value.code == 2 and message in capsys.readouterr().err


def test_good_options_pass_the_check(capsys):
    for listen, shown in (('0.0.0.0:8443', '0.0.0.0:8443'), ('[::]:8443', ':::8443'), (':8443', '*:8443'),
                          ('discovery.example:443', 'discovery.example:443')):
        server.main(['--check', '--listen', listen, '--memory-budget', '256M'])
        assert capsys.readouterr().out.strip() == 'options ok: listen on %s, memory budget 256 MiB' % shown


# -- slots pinned to certificates (--slot-ca) --------------------------------------

def certified_node(ca, now, lifetime=certificates.DAY * 365):
    """A node's WireGuard key, signing key and certificate (with its slot grant), signed by the CA key ca."""
    private = keys_model.generate_private_key()
    public = keys_model.public_key_from_private(private)
    signing = crypto.signing_key(private)
    cert = certificates.issue(ca, 'wglan0', 'c', public, crypto.public_signer(signing), ['200:1001::c'], now=now,
                              lifetime=lifetime)
    return public, signing, cert


def grant_doc(cert, public):
    return certificates.slot_grant(cert, public)


def test_a_certificate_grants_its_own_slot_and_key_only(tmp_path):
    now = int(time.time())
    ca, other_ca = certificates.new_ca_key(), certificates.new_ca_key()
    cas = server.parse_slot_cas([certificates.ca_public_key(ca)])
    public, signing, cert = certified_node(ca, now)
    member, signer = crypto.member_id(public), crypto.public_signer(signing)
    doc = grant_doc(cert, public)
    assert set(doc) == {'slot_sig', 'slot_until'}
    server.check_grant(cas, member, signer, doc, now)
    _public2, _signing2, foreign = certified_node(other_ca, now)
    refusals = [
        (member, signer, {}, 'carries no slot grant'),                                   # a token holder's write
        ('f' * 64, signer, doc, 'not for this member and key'),                            # another node's slot
        (member, crypto.public_signer(crypto.signing_key()), doc, 'not for this member and key'),  # another key
        (member, signer, dict(doc, slot_until=doc['slot_until'] + 1), 'not for this member and key'),  # longer
        (member, signer, grant_doc(foreign, _public2), 'not for this member and key'),     # another mesh's CA
        (member, signer, dict(doc, slot_sig='AAAA'), 'slot_sig must be 64 bytes'),
        (member, signer, dict(doc, slot_until='soon'), 'slot_until must be a positive integer'),
    ]
    for where, who, given, message in refusals:
        with pytest.raises(server.HttpError) as raised:
            server.check_grant(cas, where, who, given, now)
        assert message in str(raised.value), (given, str(raised.value))
    _public3, _signing3, ended = certified_node(ca, now - 2 * certificates.DAY * 365, lifetime=certificates.DAY * 365)
    with pytest.raises(server.HttpError) as raised:
        server.check_grant(cas, crypto.member_id(_public3), crypto.public_signer(_signing3), grant_doc(ended, _public3), now)
    assert 'expired' in str(raised.value)


def test_a_squatted_slot_is_freed_by_the_write_with_the_certificate_and_the_squatter_kept_out(tmp_path):
    """A token holder wrote node c's slot first with its own key and a sequence number of 2^62: c got 403
    on every write while the squatter renewed. With slots pinned to certificates the squatter's write is
    refused at the door (no grant; Server._put), and a slot a key holds without a grant (written before
    the service pinned slots) goes to the write that carries one, whatever its sequence number."""
    s = store(tmp_path)
    squatter = crypto.signing_key()
    put(s, 'c', M1, 'key', 2 ** 62, signing=squatter)
    seq, ttl, data = 5, 60, 'AAAA'
    real = KEYS[M1]
    with pytest.raises(server.HttpError):  # (without the grant, as before)
        put(s, 'c', M1, 'key', seq)
    s.put('c', M1, 'key', seq, data, ttl, '192.0.2.3', crypto.public_signer(real),
          crypto.sign(real, 'put', 'c', M1, seq, ttl, data), granted=True)
    held = s.clusters[key('c', 'key')].members[M1]
    assert (held['signer'], held['seq']) == (crypto.public_signer(real), seq)
    for attempt in (lambda: put(s, 'c', M1, 'key', 2 ** 62 + 1, signing=squatter),
                    lambda: delete(s, 'c', M1, 'key', 2 ** 62 + 1, signing=squatter)):
        with pytest.raises(server.HttpError) as raised:
            attempt()
        assert raised.value.status == 403
    put(s, 'c', M1, 'key', seq + 1)  # the slot's own key goes on


def test_a_service_with_a_slot_ca_says_so_at_its_check(capsys):
    ca = certificates.ca_public_key(certificates.new_ca_key())
    server.main(['--check', '--memory-budget', '256M', '--slot-ca', ca])
    assert capsys.readouterr().out.strip().endswith('slots pinned to 1 CA(s)')
