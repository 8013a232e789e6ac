"""The watcher's choice of where the names go (daemon.naming). systemd-resolved and a socket on the
mesh address cannot be had in a unit test (the names responder runs for real in
tests/integration/test_names_responder.py, and through systemd-resolved in the lab's
test_discovery.py); here host.resolved and the responder are replaced to drive each branch."""
import ipaddress

import pytest

from ansible_collections.wglan.mesh.plugins.module_utils.daemon import naming
from ansible_collections.wglan.mesh.plugins.module_utils.model.node_records import NodeRecord
from ansible_collections.wglan.mesh.plugins.module_utils.sources.gather import Gathered

KEY = 'A' * 43 + '='
HOSTS = '127.0.0.1\tlocalhost\n'


class Config:
    ifname = 'wglan0'
    addresses = [ipaddress.ip_interface('200:1001::9/64')]


def gathered(names=True):
    me = NodeRecord('a1', KEY, ipaddress.IPv6Address('200:1001::1'))
    found = Gathered(me=me, records=[me])
    found.names = [(ipaddress.IPv6Address('200:1001::1'), 'a1.wglan.internal')] if names else None
    return found


@pytest.fixture
def params(tmp_path):
    hosts = tmp_path / 'hosts'
    hosts.write_text(HOSTS)
    return dict(hosts_path=str(hosts), names_domain='wglan.internal', names_via='auto', names_port=53)


@pytest.fixture
def logged(monkeypatch):
    lines = []
    monkeypatch.setattr(naming, 'log', lines.append)
    return lines


def test_the_responder_s_address_is_the_node_s_own_else_the_interface_s():
    assert naming.mesh_address(Config(), gathered()) == ipaddress.IPv6Address('200:1001::1')
    assert naming.mesh_address(Config(), Gathered()) == ipaddress.IPv6Address('200:1001::9')


def test_without_systemd_resolved_the_names_go_into_the_hosts_file(monkeypatch, params, logged):
    monkeypatch.setattr(naming.resolved, 'in_use', lambda: False)
    names = naming.Names()
    names.ensure(params, Config(), gathered())
    text = open(params['hosts_path']).read()
    assert text.startswith(HOSTS) and '200:1001::1\ta1.wglan.internal' in text
    assert names.status() == dict(via='hosts')
    assert any('not through systemd-resolved' in line for line in logged)


def test_a_responder_that_cannot_listen_leaves_the_names_in_the_hosts_file(monkeypatch, params, logged):
    monkeypatch.setattr(naming.resolved, 'in_use', lambda: True)

    def refused(*_args, **_kw):
        raise OSError(98, 'Address already in use')
    monkeypatch.setattr(naming.names_server, 'Responder', refused)
    names = naming.Names()
    names.ensure(params, Config(), gathered())
    names.ensure(params, Config(), gathered())
    assert 'a1.wglan.internal' in open(params['hosts_path']).read()
    why = [line for line in logged if 'cannot listen on [200:1001::1]:53' in line]
    assert len(why) == 1, logged  # (once, not at each reconcile)


class FakeResponder:
    def __init__(self, address, port, domain, entries):
        self.address, self.port, self.entries, self.counts = str(address), port, entries, dict(answered=0)
        self.closed = False

    def update(self, entries, domain):
        self.entries = entries

    def close(self):
        self.closed = True


def test_through_systemd_resolved_the_hosts_file_block_goes_and_comes_back_when_it_stops(monkeypatch, params, logged):
    links = []
    monkeypatch.setattr(naming.resolved, 'in_use', lambda: True)
    monkeypatch.setattr(naming.resolved, 'ensure', lambda *args: links.append(args) or True)
    monkeypatch.setattr(naming.resolved, 'revert', lambda ifname: links.append(('revert', ifname)))
    monkeypatch.setattr(naming.names_server, 'Responder', FakeResponder)
    monkeypatch.setattr(naming.names_server, 'HAS_DNSPYTHON', True)
    names = naming.Names()
    names.ensure(dict(params, names_via='hosts'), Config(), gathered())
    assert 'a1.wglan.internal' in open(params['hosts_path']).read()
    names.ensure(params, Config(), gathered())
    assert open(params['hosts_path']).read() == HOSTS
    assert links == [('wglan0', ipaddress.IPv6Address('200:1001::1'), 53, 'wglan.internal')]
    assert names.status()['via'] == 'resolved' and names.status()['server'] == '[200:1001::1]:53'
    responder = names.responder
    names.ensure(params, Config(), gathered(names=False))
    assert responder.closed and links[-1] == ('revert', 'wglan0') and names.status() is None
    assert open(params['hosts_path']).read() == HOSTS


def test_names_via_resolved_without_systemd_resolved_says_so_and_uses_the_hosts_file(monkeypatch, params, logged):
    monkeypatch.setattr(naming.resolved, 'in_use', lambda: False)
    naming.Names().ensure(dict(params, names_via='resolved'), Config(), gathered())
    assert 'a1.wglan.internal' in open(params['hosts_path']).read()
    assert any('names_via resolved' in line for line in logged), logged


def test_a_failure_in_the_names_never_stops_the_watcher(monkeypatch, params, logged):
    def broken():
        raise RuntimeError('a bug')
    monkeypatch.setattr(naming.resolved, 'in_use', broken)
    naming.Names().ensure(params, Config(), gathered())
    assert logged == ['names: RuntimeError: a bug']
