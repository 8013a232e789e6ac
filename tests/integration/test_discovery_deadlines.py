"""No discovery service can stall a client: every call has a deadline for the whole of it, and the
services are asked at once.

In a namespace of its own: the real discovery service, a service that answers a byte every 0.5 s (what a
slow or hostile server, or a man in the middle with a stolen server key, can do: a deadline per read never
fires), and one that accepts the connection and never answers. A client asks all three, with a 2 s
deadline, the way a run or a reconcile does (from_discovery: publish, then read). It returns within the
deadline with the healthy service's records, and names the other two. Before, the dripping service held the
call for as long as it dripped, and the services were asked one after another.
"""
import json
import subprocess
import sys
import time
import uuid

import pytest

from netns import COLLECTIONS, Namespace, wait_for
from watchlab import start_service

DEADLINE = 2
DRIP = '''
import socket, time
server = socket.socket(); server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
server.bind(('127.0.0.1', %(port)d)); server.listen(8)
end = time.monotonic() + 90
while time.monotonic() < end:
    conn, _ = server.accept()
    conn.settimeout(5)
    try:
        conn.recv(65536)
        if %(drip)s:
            for byte in b'HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\nContent-Length: 200\\r\\n\\r\\n' + b' ' * 200:
                conn.send(bytes([byte])); time.sleep(0.5)
                if time.monotonic() > end:
                    break
        else:
            time.sleep(60)
    except OSError:
        pass
    conn.close()
'''
CLIENT = '''
import json, sys, time
sys.path.insert(0, %(collections)r)
from ansible_collections.wglan.mesh.plugins.module_utils.model.keys import generate_private_key, public_key_from_private
from ansible_collections.wglan.mesh.plugins.module_utils.sources.discovery import DiscoveryClient, from_discovery
key = generate_private_key()
record = dict(version=1, name='n1', public_key=public_key_from_private(key), address='200:1001::1',
              node_ips=['192.0.2.1/24'], port=51820, extra_endpoints=[], pod_cidrs=[], observed={})
clients = [DiscoveryClient(url, %(token)r, timeout=%(deadline)d, signing=key) for url in %(urls)r]
warnings = []
started = time.monotonic()
outcome = from_discovery(clients, record, 600, {}, warnings.append, False)
print(json.dumps(dict(seconds=time.monotonic() - started, names=[r.name for r in outcome.records],
                      services=outcome.services, warnings=warnings)))
'''


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    work = str(tmp_path_factory.mktemp('deadlines'))
    ns = Namespace('wglan-%s-dl' % uuid.uuid4().hex[:6])
    procs = []
    try:
        procs.append(start_service(ns, '127.0.0.1', work))
        for port, drip in ((8444, True), (8445, False)):
            procs.append(subprocess.Popen(['ip', 'netns', 'exec', ns.name, sys.executable, '-c',
                                           DRIP % dict(port=port, drip=drip)],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        probe = ('python3 -c "import socket; [socket.create_connection((\'127.0.0.1\', p), 1).close() '
                 'for p in (8443,)]"')
        assert wait_for(lambda: ns.sh(probe, check=False).returncode == 0, timeout=15)
        yield ns
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
        ns.destroy()


def ask(ns, urls):
    script = CLIENT % dict(collections=COLLECTIONS, token='deadline-token-%s' % uuid.uuid4().hex, deadline=DEADLINE,
                           urls=urls)
    proc = ns.cmd([sys.executable, '-c', script], check=False, timeout=120)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_a_dripping_and_a_silent_service_cost_one_deadline_and_the_healthy_ones_records_are_used(world):
    urls = ['http://127.0.0.1:8444', 'http://127.0.0.1:8445', 'http://127.0.0.1:8443']
    started = time.monotonic()
    got = ask(world, urls)
    sys.stdout.write('\nthree services (dripping, silent, healthy), %d s deadline: answered in %.1f s\n'
                     % (DEADLINE, got['seconds']))
    assert got['names'] == ['n1'], got  # the healthy service took the record and listed it
    reached = dict((s['url'], s['reached']) for s in got['services'])
    assert reached == {urls[0]: False, urls[1]: False, urls[2]: True}, got
    # one deadline for a call (the publish), at once for all three; not a deadline per read, nor one per service
    assert got['seconds'] < DEADLINE + 1.5, got
    assert any('did not answer within %d s' % DEADLINE in w for w in got['warnings']), got['warnings']
    assert time.monotonic() - started < 60


def test_the_healthy_service_alone_answers_at_once(world):
    got = ask(world, ['http://127.0.0.1:8443'])
    assert got['names'] == ['n1'] and got['seconds'] < 1.0, got
