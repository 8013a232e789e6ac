"""The Kubernetes API test double (tests/kube_apiserver.py) in a namespace, and kubectl against it."""
import json
import os
import subprocess
import sys
import uuid

from netns import ROOT, Namespace, wait_for

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import kube_apiserver  # noqa: E402  (tests/ is not a package)

API_IP = '198.51.100.200'
TOKEN = 'double-token-%s' % uuid.uuid4().hex
DEBIAN_KUBECTL = os.path.join(ROOT, 'build', 'kubectl-debian', 'kubectl')


def kubectls():
    found = [DEBIAN_KUBECTL]
    other = '/usr/bin/kubectl'
    if os.path.exists(other) and os.path.realpath(other) != os.path.realpath(DEBIAN_KUBECTL):
        found.append(other)
    return found


class Api:
    """The double in its own namespace, TLS and a bearer token, as a real cluster would have."""

    def __init__(self, workdir, tag, ns=None, ip=API_IP):
        """In its own namespace (address on lo), or in ns, which already has ip."""
        self.own_namespace = ns is None
        self.ns = ns or Namespace('wglan-%s-api' % tag)
        if ns is None:
            self.ns.sh('ip addr add %s/32 dev lo' % ip)
        self.ip = ip
        self.workdir = workdir
        paths = kube_apiserver.write_certificates(workdir, ip)
        self.kubeconfig = os.path.join(workdir, 'kubeconfig')
        with open(self.kubeconfig, 'w') as handle:
            json.dump(kube_apiserver.kubeconfig('https://%s:6443' % ip, paths['ca.crt'], TOKEN), handle)
        self.ca = paths['ca.crt']
        self.args = ['--listen', '%s:6443' % ip, '--token', TOKEN, '--cert', paths['server.crt'],
                     '--key', paths['server.key'], '--bookmark-every', '0.3']
        self.proc = None
        self.start()

    def start(self):
        self.proc = subprocess.Popen(['ip', 'netns', 'exec', self.ns.name, sys.executable,
                                      os.path.join(ROOT, 'tests', 'kube_apiserver.py')] + self.args,
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        probe = 'python3 -c "import socket; socket.create_connection((\'%s\', 6443), 1)"' % self.ip
        assert wait_for(lambda: self.ns.sh(probe, check=False).returncode == 0, timeout=15)

    def stop(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def kubectl(self, binary, *args, check=True, timeout=30):
        proc = self.ns.cmd([binary, '--kubeconfig', self.kubeconfig, '--request-timeout=10s'] + list(args),
                           check=False, timeout=timeout)
        if check and proc.returncode != 0:
            raise AssertionError('kubectl %s failed: %s %s' % (' '.join(args), proc.stdout, proc.stderr))
        return proc

    def test_call(self, path, method='GET'):
        """The double's test-only endpoints (audit, compact), over TLS with its CA."""
        script = ('import http.client, json, ssl, sys\n'
                  'c = http.client.HTTPSConnection(%r, 6443, context=ssl.create_default_context(cafile=%r))\n'
                  'c.request(%r, %r)\n'
                  'print(c.getresponse().read().decode())\n') % (self.ip, self.ca, method, path)
        return json.loads(self.ns.cmd(['python3', '-c', script]).stdout)

    def destroy(self):
        self.stop()
        if self.own_namespace:
            self.ns.destroy()


def node_object(name, ip):
    return {'apiVersion': 'v1', 'kind': 'Node', 'metadata': {'name': name, 'labels': {'role': 'worker'}},
            'spec': {'podCIDRs': ['10.244.%d.0/24' % int(ip.rsplit('.', 1)[1])]},
            'status': {'addresses': [{'type': 'InternalIP', 'address': ip}]}}


def create(api, binary, name, ip):
    path = os.path.join(api.workdir, '%s.json' % name)
    with open(path, 'w') as handle:
        json.dump(node_object(name, ip), handle)
    # Client-side schema validation needs the OpenAPI document, which the double does not serve.
    return api.kubectl(binary, 'create', '--validate=false', '-f', path)
