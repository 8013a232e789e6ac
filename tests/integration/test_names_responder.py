"""The names responder (daemon.names_server) as a resolver and an attacker meet it, on a real socket in
namespaces made here: the responder's namespace has the node's mesh address on a WireGuard interface,
and a neighbour namespace (a veth away) routes the mesh address at it, as any host on the node's LAN can.

Each attack is a regression test: without the admission rule (this host's own addresses only), the
neighbour's flood is answered; without the token bucket, a local flood is answered in full; a datagram
longer than a query, a malformed one or a response never stops the responder answering the next query.
The responder runs on Debian 12's dnspython (.venv sees the system's) and on the newest release.
"""
import json
import os
import subprocess
import sys
import uuid

import pytest

from netns import COLLECTIONS, ROOT, Namespace, veth

# Alone, not beside other modules (make integration runs the serial ones after the others): it counts the
# host's answers during a flood, and another module's load on the same 2 cores cost one of 40 in a CI run.
pytestmark = pytest.mark.serial

MESH = 'fd42:99::b2'
MESH4 = '198.51.100.77'
NEIGHBOUR6, NEIGHBOUR4 = 'fd42:98::', '203.0.113.'
RATE = 200
PYTHONS = {'debian': sys.executable, 'latest': os.path.join(ROOT, '.venv-latest', 'bin', 'python')}

RESPONDER = r'''
import ipaddress, json, sys
sys.path.insert(0, %(collections)r)
from ansible_collections.wglan.mesh.plugins.module_utils.daemon.names_server import Responder
entries = [(ipaddress.ip_interface('%(mesh)s/128'), 'b2.wglan.internal'),
           (ipaddress.ip_interface('%(mesh4)s/32'), 'b2.wglan.internal'),
           (ipaddress.ip_interface('fd42:99::a1/128'), 'a1.wglan.internal')]
responder = Responder('%(mesh)s', 53, 'wglan.internal', entries, rate=%(rate)d)
print('ready', flush=True)
sys.stdin.read()
print(json.dumps(responder.counts), flush=True)
responder.close()
'''

CLIENT = r'''
import json, socket, sys, time
import dns.message, dns.query, dns.rcode, dns.exception
sys.path.insert(0, %(collections)r)

def query(name, rdtype='AAAA', source=%(mesh)r, timeout=1.0):
    """(rcode, [addresses]) of one query, or None without an answer in time."""
    try:
        reply = dns.query.udp(dns.message.make_query(name, rdtype), %(mesh)r, timeout=timeout, port=53, source=source)
    except dns.exception.Timeout:
        return None
    return dns.rcode.to_text(reply.rcode()), sorted(i.address for r in reply.answer for i in r)

def drain(sock):
    """How many replies wait on a non-blocking socket (read and dropped)."""
    count = 0
    try:
        while True:
            sock.recv(512)
            count += 1
    except OSError:
        return count

def raw(data, source=%(mesh)r, wait=0.5):
    """The reply to raw bytes, or None."""
    s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
    s.bind((source, 0))
    s.settimeout(wait)
    s.sendto(data, (%(mesh)r, 53))
    try:
        return s.recv(4096)
    except socket.timeout:
        return None
    finally:
        s.close()
'''


@pytest.fixture(scope='module', params=sorted(PYTHONS))
def lab(request):
    python = PYTHONS[request.param]
    if not os.path.exists(python):
        pytest.skip('no %s' % python)
    tag = uuid.uuid4().hex[:6]
    spaces = []
    proc = None
    try:
        node = Namespace('wglan-dns-%s' % tag)
        spaces.append(node)
        neighbour = Namespace('wglan-dnsn-%s' % tag)
        spaces.append(neighbour)
        # the node's mesh interface, as the mesh makes it (wireguard-go; no peer is needed here)
        node.interfaces.append('mesh0')
        node.sh('wireguard-go mesh0 && ip link set mesh0 up && ip -6 addr add %s/64 dev mesh0 nodad && '
                'ip addr add %s/24 dev mesh0' % (MESH, MESH4))
        veth(node, 'lan0', neighbour, 'lan0')
        node.sh('ip -6 addr add fd42:98::1/64 dev lan0 nodad && ip addr add 203.0.113.1/24 dev lan0')
        # the neighbour: 64 addresses of each family, and a route to the mesh address through the node
        for n in range(2, 66):
            neighbour.sh('ip -6 addr add %s%x/64 dev lan0 nodad && ip addr add %s%d/24 dev lan0'
                         % (NEIGHBOUR6, n, NEIGHBOUR4, n))
        neighbour.sh('ip -6 route add %s/128 via fd42:98::1 && ip route add %s/32 via 203.0.113.1' % (MESH, MESH4))
        proc = subprocess.Popen(['ip', 'netns', 'exec', node.name, python, '-c',
                                 RESPONDER % dict(collections=COLLECTIONS, mesh=MESH, mesh4=MESH4, rate=RATE)],
                                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                universal_newlines=True)
        assert proc.stdout.readline().strip() == 'ready', proc.stderr.read()
        yield dict(node=node, neighbour=neighbour, python=python, proc=proc)
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)
        for ns in reversed(spaces):
            ns.destroy()


def client(lab, where, code, timeout=60):
    """Run code (after CLIENT) with the lab's python in namespace where; its last line of output, as JSON."""
    script = CLIENT % dict(collections=COLLECTIONS, mesh=MESH) + code
    done = lab[where].cmd([lab['python'], '-c', script], timeout=timeout)
    return json.loads(done.stdout.strip().rsplit('\n', maxsplit=1)[-1])


def alive(lab):
    assert lab['proc'].poll() is None, lab['proc'].stderr.read()
    return client(lab, 'node', 'print(json.dumps(query("b2.wglan.internal")))')


def test_the_host_gets_every_answer_a_resolver_needs(lab):
    got = client(lab, 'node', '''
print(json.dumps([query('b2.wglan.internal'), query('b2.wglan.internal', 'A'), query('a1.wglan.internal', 'A'),
                  query('B2.Wglan.Internal'), query('ghost.wglan.internal'), query('example.org')]))
''')
    assert got == [['NOERROR', [MESH]], ['NOERROR', [MESH4]], ['NOERROR', []], ['NOERROR', [MESH]],
                   ['NXDOMAIN', []], ['REFUSED', []]]


def test_a_neighbour_flooding_from_many_addresses_gets_nothing_and_the_host_still_gets_every_answer(lab):
    flood = subprocess.Popen(['ip', 'netns', 'exec', lab['neighbour'].name, lab['python'], '-c', r'''
import socket, time, json
import dns.message
wire = dns.message.make_query('b2.wglan.internal', 'AAAA').to_wire()
socks = []
for n in range(2, 66):
    for family, src, dst in ((socket.AF_INET6, '%s%%x' %% n, %r), (socket.AF_INET, '%s%%d' %% n, %r)):
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.bind((src, 0))
        s.setblocking(False)
        socks.append((s, dst))
sent = replies = 0
deadline = time.monotonic() + 4
while time.monotonic() < deadline and sent < 40000:
    for s, dst in socks:
        try:
            s.sendto(wire, (dst, 53))
            sent += 1
        except OSError:
            pass
        try:
            s.recv(512)
            replies += 1
        except OSError:
            pass
time.sleep(0.5)
for s, _dst in socks:
    try:
        while True:
            s.recv(512)
            replies += 1
    except OSError:
        pass
print(json.dumps(dict(sent=sent, replies=replies)))
''' % (NEIGHBOUR6, MESH, NEIGHBOUR4, MESH4)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    try:
        during = client(lab, 'node', '''
import time
time.sleep(0.5)
got = [query('b2.wglan.internal', timeout=2.0) for _ in range(40)]
print(json.dumps(sum(1 for g in got if g == ('NOERROR', [%r]))))
''' % MESH)
        out, err = flood.communicate(timeout=60)
    finally:
        if flood.poll() is None:
            flood.kill()
    result = json.loads(out.strip().rsplit('\n', maxsplit=1)[-1])
    assert result['sent'] > 1000, (result, err)
    assert result['replies'] == 0, 'the responder answered a neighbour: %s' % result
    assert during == 40, 'the host lost answers during the flood: %d of 40' % during
    assert alive(lab) == ['NOERROR', [MESH]]


def test_a_local_flood_is_answered_at_the_rate_and_the_responder_recovers(lab):
    got = client(lab, 'node', r'''
import socket, time
import dns.message
s = socket.socket(socket.AF_INET6, socket.SOCK_DGRAM)
s.bind((%(mesh)r, 0))
s.setblocking(False)
wire = dns.message.make_query('b2.wglan.internal', 'AAAA').to_wire()
time.sleep(1.2)   # (a full bucket)
started = time.monotonic()
sent = replies = 0
while sent < 1500:
    s.sendto(wire, (%(mesh)r, 53))
    sent += 1
    time.sleep(0.0007)
    replies += drain(s)
elapsed = time.monotonic() - started
time.sleep(0.3)
replies += drain(s)
time.sleep(1.1)
print(json.dumps(dict(sent=sent, replies=replies, elapsed=elapsed, after=query('b2.wglan.internal'))))
''' % dict(mesh=MESH))
    allowed = RATE + RATE * (got['elapsed'] + 0.3) + 20
    assert got['replies'] <= allowed, 'answered past the rate: %s (at most %d)' % (got, allowed)
    assert got['replies'] >= RATE / 2, got
    assert got['after'] == ['NOERROR', [MESH]], got


@pytest.mark.parametrize('data', [
    "b'\\0' * 60000",                                   # far longer than any query
    "bytes.fromhex('123481800001000000000000') + b'\\x02b2\\x05wglan\\x08internal\\x00\\x00\\x1c\\x00\\x01'",
    "b'\\x12'",                                          # one byte
], ids=['60000 bytes', 'a response (answering it would let two responders loop)', 'one byte'])
def test_input_that_is_no_query_gets_no_reply_and_the_next_query_is_answered(lab, data):
    assert client(lab, 'node', 'print(json.dumps(raw(%s)))' % data) is None
    assert alive(lab) == ['NOERROR', [MESH]]


def test_malformed_queries_get_formerr_and_the_next_query_is_answered(lab):
    header = b'\xbe\xef\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00'
    bodies = [b'\x03ab', b'\xc0\x0c\x00\x01\x00\x01', b'\x40abc\x00\x00\x01\x00\x01', b'\x3f' + b'a' * 63 + b'\x00']
    got = client(lab, 'node', 'print(json.dumps([(raw(bytes.fromhex(h)) or b"").hex() for h in %r]))'
                 % [(header + body).hex() for body in bodies])
    for body, reply in zip(bodies, got):
        reply = bytes.fromhex(reply)
        assert reply[:2] == b'\xbe\xef' and reply[2] & 0x80 and reply[3] & 0x0f == 1, (body, reply)
    assert alive(lab) == ['NOERROR', [MESH]]


def test_the_counts_say_what_was_answered_and_what_was_kept_out(lab):
    alive(lab)
    proc = lab['proc']
    out, err = proc.communicate('', timeout=20)
    counts = json.loads(out.strip().rsplit('\n', maxsplit=1)[-1])
    assert counts['answered'] > 0 and counts['errors'] == 0, (counts, err)
    assert counts['not_local'] > 1000 and counts['over_rate'] > 0 and counts['dropped'] >= 3, counts
