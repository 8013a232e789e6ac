"""The discovery service for real: server and clients inside a network namespace.

Every client call runs inside the namespace (a short Python process), so no
traffic leaves the namespaces this test made.
"""
import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from netns import COLLECTIONS, DISCOVERY_SERVER, Namespace, wait_for

URL = 'http://127.0.0.1:8443'
CLIENT_PRELUDE = '''
import json, sys, base64, os, time
sys.path.insert(0, %r)
from ansible_collections.wglan.mesh.plugins.module_utils.model import keys
from ansible_collections.wglan.mesh.plugins.module_utils.sources.discovery import DiscoveryClient
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
warnings = []
def record(name, n):
    pub = base64.b64encode(bytes([n]) * 32).decode()
    return dict(version=1, name=name, public_key=pub, address='200:1001::%%x' %% n,
                node_ips=['192.0.2.%%d/24' %% n], port=51820, extra_endpoints=[], pod_cidrs=[], observed={})
''' % COLLECTIONS


class Service:
    def __init__(self, ns, db, *flags):
        self.ns, self.db, self.flags = ns, db, list(flags)
        self.proc = None

    def start(self):
        env = dict(os.environ, PYTHONPATH=COLLECTIONS)
        self.proc = subprocess.Popen(['ip', 'netns', 'exec', self.ns.name, sys.executable, DISCOVERY_SERVER,
                                      '--listen', '127.0.0.1:8443', '--db', self.db] + self.flags,
                                     env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        assert wait_for(lambda: self.client('print(DiscoveryClient(%r, "t").hello())' % URL, check=False)
                        .returncode == 0, timeout=15, interval=0.2), 'service did not start'

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=10)

    def client(self, code, check=True, timeout=60):
        proc = self.ns.cmd([sys.executable, '-c', CLIENT_PRELUDE + code], check=False, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError(proc.stdout + proc.stderr)
        return proc

    def run(self, code):
        out = self.client(code).stdout.strip().splitlines()
        return json.loads(out[-1])


@pytest.fixture
def service(tmp_path):
    ns = Namespace('wglan-disc-%s' % uuid.uuid4().hex[:6])
    svc = Service(ns, str(tmp_path / 'records.db'), '--members-per-cluster', '5', '--expire-every', '0.5')
    try:
        svc.start()
        yield svc
    finally:
        svc.stop()
        ns.destroy()


def test_publish_fetch_roundtrip_and_observed_address(service):
    out = service.run('''
c = DiscoveryClient(%r, "token-a")
first = c.publish(record("n1", 1)); c.publish(record("n2", 2))
version, recs = c.fetch(warnings.append)
print(json.dumps(dict(observed=first["observed"], names=sorted(r.name for r in recs),
                      seen=sorted(str(r.public_ip) for r in recs), warnings=warnings)))
''' % URL)
    assert out == dict(observed='127.0.0.1', names=['n1', 'n2'], seen=['127.0.0.1', '127.0.0.1'], warnings=[])


def test_tampered_replayed_wrong_cluster_and_foreign_writes_are_refused(service):
    out = service.run('''
from urllib.request import Request, urlopen
from urllib.error import HTTPError
from ansible_collections.wglan.mesh.plugins.module_utils.sources import discovery_crypto as crypto
c = DiscoveryClient(%(url)r, "token-a")
c.publish(record("n1", 1), seq=10)
result = {}
def attempt(name, fn):
    try:
        fn(); result[name] = "accepted"
    except WglanError as exc:
        result[name] = str(exc)
# replay of an older record
attempt("replay", lambda: c.publish(record("n1", 1), seq=5))
# a token holder writes garbage into a slot of its own: readers drop it, the rest still applies
member, data = "ee" * 32, base64.b64encode(b"x" * 40).decode()
own = crypto.signing_key()
req = Request(%(url)r + "/v1/clusters/%%s/members/%%s" %% (c.cluster, member), method="PUT",
              data=json.dumps(dict(seq=1, data=data, ttl=60, signer=crypto.public_signer(own),
                                   sig=crypto.sign(own, "put", c.cluster, member, 1, 60, data))).encode())
req.add_header("Authorization", "Bearer " + c.write_key); urlopen(req).read()
version, recs = c.fetch(warnings.append)
result["readable"] = sorted(r.name for r in recs)
result["dropped"] = warnings[:]
# a token holder with another signing key (a compromised member) cannot take n1's slot
thief = DiscoveryClient(%(url)r, "token-a")
attempt("member_overwrite", lambda: thief.publish(record("n1", 1), seq=99))
attempt("member_delete", lambda: thief.delete(record("n1", 1)["public_key"]))
# someone who knows only the cluster id writes into a cluster of its own, which no token holder reads
intruder = DiscoveryClient(%(url)r, "not-the-token", cluster=c.cluster)
attempt("overwrite", lambda: intruder.publish(record("n9", 9)))
attempt("delete", lambda: intruder.delete(record("n1", 1)["public_key"]))
result["intruder_reads"] = sorted(r.name for r in intruder.fetch(warnings.append)[1])
version, recs = c.fetch(warnings.append)
result["after"] = sorted((r.name, str(r.address)) for r in recs)
# another cluster sees nothing of this one
result["other_cluster"] = len(DiscoveryClient(%(url)r, "token-b").fetch(warnings.append)[1])
print(json.dumps(result))
''' % dict(url=URL))
    assert 'stale sequence number 5' in out['replay'] and '409' in out['replay']
    assert out['readable'] == ['n1'] and len(out['dropped']) == 1 and 'does not authenticate' in out['dropped'][0]
    assert '403' in out['member_overwrite'] and "another key's" in out['member_overwrite']
    assert '403' in out['member_delete']
    assert out['overwrite'] == 'accepted', 'a write with another key makes a cluster of its own'
    assert '404' in out['delete']
    assert out['intruder_reads'] == ['n9'], 'the intruder reads only what it wrote itself'
    assert out['after'] == [['n1', '200:1001::1']], 'the cluster is as its members left it'
    assert out['other_cluster'] == 0


def test_a_cluster_name_cannot_be_squatted(service):
    """Someone who learned the cluster id (from another service, a proxy's log) writes to it before the
    cluster does, as on a service that restarted empty: the cluster is not refused and sees nothing of it."""
    out = service.run('''
c = DiscoveryClient(%(url)r, "token-a")
squatter = DiscoveryClient(%(url)r, "guess", cluster=c.cluster)
squatter.publish(record("sq", 7))
c.publish(record("n1", 1))
version, recs = c.fetch(warnings.append)
print(json.dumps(dict(names=sorted(r.name for r in recs), warnings=warnings)))
''' % dict(url=URL))
    assert out == dict(names=['n1'], warnings=[])


def test_limits_answer_with_clear_errors(service):
    out = service.run('''
c = DiscoveryClient(%(url)r, "token-a")
result = {}
big = record("big", 1); big["pod_cidrs"] = ["10.%%d.%%d.0/24" %% (i // 256, i %% 256) for i in range(150)]
for name, fn in (("oversize", lambda: c.publish(big)),
                 ("endpoints", lambda: c.publish(dict(record("e", 2), extra_endpoints=["192.0.2.1:%%d" %% p for p in range(1, 70)]))),
                 ("full", lambda: [c.publish(record("n%%d" %% i, i)) for i in range(10, 17)])):
    try:
        fn(); result[name] = "accepted"
    except WglanError as exc:
        result[name] = str(exc)
print(json.dumps(result))
''' % dict(url=URL))
    assert '413' in out['oversize'] and 'limit is 2048' in out['oversize']
    assert 'at most 64 endpoints' in out['endpoints']
    assert '403' in out['full'] and 'cluster is full (5 members)' in out['full']


def test_rate_limit_per_client(service):
    out = service.run('''
c = DiscoveryClient(%r, "token-a")
codes = []
for i in range(80):
    try:
        c.hello(); codes.append(200)
    except WglanError as exc:
        codes.append(429 if "429" in str(exc) else str(exc))
print(json.dumps(dict(ok=codes.count(200), limited=codes.count(429), other=[x for x in codes if x not in (200, 429)])))
''' % URL)
    assert out['other'] == [] and out['limited'] > 0 and 55 <= out['ok'] <= 75


def test_restart_keeps_records_and_expiry_forgets_them(service):
    service.run('''
c = DiscoveryClient(%r, "token-a")
c.publish(record("keep", 1)); c.publish(record("brief", 2), ttl=1)
print("{}")
''' % URL)
    before = service.run('''
c = DiscoveryClient(%r, "token-a")
print(json.dumps(c.fetch(warnings.append)[0]))
''' % URL)
    service.stop()
    service.start()
    time.sleep(2)
    out = service.run('''
print(json.dumps(sorted(r.name for r in DiscoveryClient(%r, "token-a").fetch(warnings.append)[1])))
''' % URL)
    assert out == ['keep']
    # A watcher that still holds a version from before the restart is answered at once (a fresh
    # listing), not left waiting for this run's versions to catch up with it.
    out = service.run('''
c = DiscoveryClient(%r, "token-a")
started = time.monotonic()
answer = c.watch(%d + 1000, warnings.append, timeout=10)
print(json.dumps(dict(seconds=time.monotonic() - started, reset=answer["reset"], version=answer["version"],
                      names=sorted(r.name for r in answer["records"]))))
''' % (URL, before))
    assert out['seconds'] < 2 and out['reset'] is True and out['names'] == ['keep'], out
    assert out['version'] > before, 'versions keep rising across a restart'


def test_watch_sees_a_change_within_a_second(service):
    code = '''
import threading
c = DiscoveryClient(%r, "token-a")
c.publish(record("first", 1))
version, _recs = c.fetch(warnings.append)
got = {}
def watcher():
    answer = c.watch(version, warnings.append, timeout=20)
    got["returned"] = time.monotonic()
    got["names"] = [r.name for r in answer["records"]]
t = threading.Thread(target=watcher); t.start()
time.sleep(1.0)  # the watch is waiting on the server by now
sent = time.monotonic()
c.publish(record("second", 2))
t.join(30)
print(json.dumps(dict(names=got["names"], latency=got["returned"] - sent)))
''' % URL
    out = service.run(code)
    assert out['names'] == ['second']
    assert out['latency'] < 1.0, out
