"""The control plane's connections carry WireGuard's fwmark, on the wire: a discovery service in a
namespace, the discovery and Kubernetes clients connecting to it, and an nftables counter of the
SYNs by mark (the mesh's own rules leave packets with that mark on the underlay)."""
import os
import subprocess
import sys
import uuid

import pytest

from netns import COLLECTIONS, DISCOVERY_SERVER, Namespace, wait_for

COUNT = '''
table inet marktest {
  counter marked { }
  counter plain { }
  chain out { type filter hook output priority 0; policy accept;
    tcp dport 8443 tcp flags syn meta mark 0x20 counter name marked
    tcp dport 8443 tcp flags syn meta mark 0 counter name plain
  }
}
'''
CLIENTS = '''
import sys
sys.path.insert(0, %r)
from ansible_collections.wglan.mesh.plugins.module_utils.sources.discovery import DiscoveryClient
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.sources.kubernetes_api import KubeClient
mark = int(sys.argv[1]) or None
DiscoveryClient('http://127.0.0.1:8443', 'token', mark=mark).hello()
class Configuration:
    host, verify_ssl, cert_file, ssl_ca_cert = 'http://127.0.0.1:8443', True, None, None
    def auth_settings(self):
        return {}
try:
    KubeClient(Configuration(), mark=mark).list_nodes()  # the service answers 404: the connection is what counts
except WglanError:
    pass
''' % COLLECTIONS


@pytest.fixture(scope='module')
def ns(tmp_path_factory):
    space = Namespace('wglan-%s-mark' % uuid.uuid4().hex[:6])
    server = None
    try:
        space.cmd(['nft', '-f', '-'], input=COUNT)
        db = str(tmp_path_factory.mktemp('mark') / 'db')
        server = subprocess.Popen(['ip', 'netns', 'exec', space.name, sys.executable, DISCOVERY_SERVER,
                                   '--listen', '127.0.0.1:8443', '--db', db],
                                  env=dict(os.environ, PYTHONPATH=COLLECTIONS), stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        probe = 'python3 -c "import socket; socket.create_connection((\'127.0.0.1\', 8443), 1)"'
        assert wait_for(lambda: space.sh(probe, check=False).returncode == 0, timeout=15)
        space.sh('nft reset counters table inet marktest >/dev/null')
        yield space
    finally:
        if server is not None and server.poll() is None:
            server.kill()
        space.destroy()


def counters(ns):
    out = {}
    for name in ('marked', 'plain'):
        text = ns.sh('nft list counter inet marktest %s' % name).stdout
        out[name] = int(text.split('packets')[1].split()[0])
    return out


def test_both_clients_mark_their_connections(ns):
    before = counters(ns)
    ns.cmd([sys.executable, '-c', CLIENTS, str(0x20)])
    after = counters(ns)
    assert after['marked'] - before['marked'] == 2, (before, after)  # one SYN each
    assert after['plain'] == before['plain']


def test_without_a_mark_they_do_not(ns):
    before = counters(ns)
    ns.cmd([sys.executable, '-c', CLIENTS, '0'])
    after = counters(ns)
    assert after['plain'] - before['plain'] == 2 and after['marked'] == before['marked'], (before, after)
