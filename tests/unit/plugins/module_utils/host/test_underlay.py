"""underlay.marked_connection without the privilege to mark (no CAP_NET_ADMIN): it still connects,
unmarked. The tests run as root, where marking always works, so a recording socket stands in for
the kernel's refusal here; the marks themselves are counted on the wire by
tests/integration/test_underlay_mark.py."""
import socket

from ansible_collections.wglan.mesh.plugins.module_utils.host import underlay


class Refusing:
    made = []

    def __init__(self, family, kind, proto):
        self.calls = []
        Refusing.made.append(self)

    def setsockopt(self, level, name, value):
        raise PermissionError(1, 'Operation not permitted')

    def settimeout(self, value):
        self.calls.append(('settimeout', value))

    def connect(self, target):
        self.calls.append(('connect', target))

    def close(self):
        self.calls.append(('close',))


def test_no_privilege_to_mark_still_connects(monkeypatch):
    Refusing.made = []
    monkeypatch.setattr(underlay.socket, 'socket', Refusing)
    monkeypatch.setattr(underlay.socket, 'getaddrinfo',
                        lambda host, port, *a: [(socket.AF_INET, socket.SOCK_STREAM, 6, '', ('198.51.100.100', port))])
    sock = underlay.marked_connection(0x20)(('198.51.100.100', 8443), 5)
    assert sock is Refusing.made[0]
    assert sock.calls == [('settimeout', 5), ('connect', ('198.51.100.100', 8443))]
