"""The discovery and Kubernetes clients mark their sockets with WireGuard's fwmark before connecting (the mesh's rules
leave such packets on the underlay). A recording socket stands in for the kernel here: what the mark
does to routing is shown on real nftables and policy routing by the lab (a machine that moves to
the public side reaches the service on a mesh member)."""
import socket

import pytest

from ansible_collections.wglan.mesh.plugins.module_utils import discovery_client, kubernetes_api, underlay


class Recorder:
    made = []

    def __init__(self, family, kind, proto):
        self.calls = []
        Recorder.made.append(self)

    def setsockopt(self, level, name, value):
        self.calls.append(('setsockopt', level, name, value))

    def settimeout(self, value):
        self.calls.append(('settimeout', value))

    def connect(self, target):
        self.calls.append(('connect', target))

    def close(self):
        self.calls.append(('close',))


@pytest.fixture
def recorded(monkeypatch):
    Recorder.made = []
    monkeypatch.setattr(underlay.socket, 'socket', Recorder)
    monkeypatch.setattr(underlay.socket, 'getaddrinfo',
                        lambda host, port, *a: [(socket.AF_INET, socket.SOCK_STREAM, 6, '', ('198.51.100.100', port))])
    return Recorder


def test_the_mark_is_set_before_the_connect(recorded):
    underlay.marked_connection(0x20)(('198.51.100.100', 8443), 5)
    calls = recorded.made[0].calls
    assert calls[0] == ('setsockopt', socket.SOL_SOCKET, underlay.SO_MARK, 0x20)
    assert calls[-1] == ('connect', ('198.51.100.100', 8443))


def test_a_client_with_a_mark_uses_it_and_one_without_does_not(recorded):
    marked = discovery_client.DiscoveryClient('http://198.51.100.100:8443', 'token', mark=0x20)._connection(5)
    plain = discovery_client.DiscoveryClient('http://198.51.100.100:8443', 'token')._connection(5)
    marked.connect()
    assert recorded.made[0].calls[0][0] == 'setsockopt'
    assert plain._create_connection is socket.create_connection


def test_no_privilege_to_mark_still_connects(recorded, monkeypatch):
    def refuse(self, *args):
        raise PermissionError(1, 'Operation not permitted')
    monkeypatch.setattr(Recorder, 'setsockopt', refuse)
    underlay.marked_connection(0x20)(('198.51.100.100', 8443), 5)
    assert recorded.made[0].calls[-1] == ('connect', ('198.51.100.100', 8443))


def test_the_kubernetes_client_marks_too(recorded):
    class Configuration:
        host = 'https://198.51.100.100:6443'
        verify_ssl = False
        cert_file = None
        ssl_ca_cert = None
    client = kubernetes_api.KubeClient(Configuration(), mark=0x20)
    client._connect(5)._create_connection(('198.51.100.100', 6443), 5)
    assert recorded.made[0].calls[0] == ('setsockopt', socket.SOL_SOCKET, underlay.SO_MARK, 0x20)
