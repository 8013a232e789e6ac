"""Kubernetes Node annotations as the mesh's only source, on the lab (its own machines).

The API server is the test double (tests/kube_apiserver.py; its fidelity to the
real one is tested with kubectl in tests/integration/test_kube_apiserver_double.py),
over TLS with a bearer token, in the lab's controller namespace on the public
switch, where a cloud's API endpoint would be. Nodes are registered the way a
kubelet does (name = the machine's host name, InternalIP in status.addresses);
each machine gets a kubeconfig and wglan_use_inventory=false, so it learns its
peers from the annotations only, and runs the watcher (Node watch, sweeping, relay).
"""
import base64
import json
import os
import subprocess
import sys
import time
import uuid

import pytest

from lab import Lab, ROOT, all_pairs, full_mesh, new_name, peer_gone, peer_latency, plan, recap_changed, rotate_under_pings, \
    wg_report

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
import kube_apiserver  # noqa: E402  (tests/ is not a package)

API_IP = '203.0.113.2'  # the controller's address on the public switch
TOKEN = 'kube-lab-token-%s' % uuid.uuid4().hex
KUBECTL = os.path.join(ROOT, 'build', 'kubectl-debian', 'kubectl')
HOSTS = ['a1', 'a2', 'b1', 'hub1']


class Cluster:
    def __init__(self, lab):
        self.lab = lab
        paths = kube_apiserver.write_certificates(lab.dir, API_IP)
        self.kubeconfig = os.path.join(lab.dir, 'kubeconfig')
        with open(self.kubeconfig, 'w') as handle:
            json.dump(kube_apiserver.kubeconfig('https://%s:6443' % API_IP, paths['ca.crt'], TOKEN, embed=True),
                      handle)
        self.proc = subprocess.Popen(['ip', 'netns', 'exec', lab.controller, sys.executable,
                                      os.path.join(ROOT, 'tests', 'kube_apiserver.py'), '--listen', '%s:6443' % API_IP,
                                      '--token', TOKEN, '--cert', paths['server.crt'], '--key', paths['server.key']],
                                     stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def kubectl(self, *args, check=True):
        proc = subprocess.run(['ip', 'netns', 'exec', self.lab.controller, KUBECTL, '--kubeconfig', self.kubeconfig,
                               '--request-timeout=10s'] + list(args), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=60, check=False)
        if check and proc.returncode != 0:
            raise AssertionError('kubectl %s: %s' % (' '.join(args), proc.stderr))
        return proc

    def register(self, name, ip):
        path = os.path.join(self.lab.dir, 'node-%s.json' % name)
        with open(path, 'w') as handle:
            json.dump({'apiVersion': 'v1', 'kind': 'Node', 'metadata': {'name': name},
                       'status': {'addresses': [{'type': 'InternalIP', 'address': ip}]}}, handle)
        self.kubectl('create', '--validate=false', '-f', path)

    def annotations(self, name):
        return json.loads(self.kubectl('get', 'node', name, '-o', 'json').stdout)['metadata'].get('annotations', {})

    def stop(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


@pytest.fixture(scope='module')
def kube():
    """hub1 public; a1, a2 behind NAT A; b1 behind NAT B; the API double on the public switch."""
    lab = Lab(new_name())
    cluster = None
    try:
        lab.up(plan(public=1, sites=2, per_site=[2, 1]))
        cluster = Cluster(lab)
        encoded = base64.b64encode(open(cluster.kubeconfig, 'rb').read()).decode()
        for host in HOSTS:
            lab.ssh(host, 'mkdir -p /etc/wglan && echo %s | base64 -d > /etc/wglan/kubeconfig && '
                          'chmod 600 /etc/wglan/kubeconfig' % encoded)
            # As a kubelet registers it: its host name, its address.
            hostname = lab.ssh(host, 'hostname').stdout.strip().lower()
            cluster.register(hostname, lab.state['layout']['machines'][host]['ip'])
        inventory = lab.inventory + '.kube'
        with open(lab.inventory) as handle:
            text = handle.read()
        with open(inventory, 'w') as handle:
            handle.write(text + '\n[all:vars]\nwglan_use_inventory=false\nwglan_kubeconfig=/etc/wglan/kubeconfig\n'
                         'wglan_watcher=true\n')
        yield dict(lab=lab, cluster=cluster, inventory=inventory)
    finally:
        if cluster is not None:
            cluster.stop()
        lab.down()


def peers(lab, host):
    return sorted(lab.ssh(host, 'wg show wglan0 peers').stdout.split())


def keys_of(lab):
    return dict((h, lab.ssh(h, 'wg show wglan0 public-key').stdout.strip()) for h in HOSTS)


def changed_tasks(output):
    """The TASK headers and changed: lines of a run, for a failure message."""
    lines, task = [], None
    for line in output.splitlines():
        if line.startswith('TASK ['):
            task = line
        elif line.startswith('changed:') or line.startswith(('---', '+++', '-  ', '+  ', '@@')):
            lines += [task, line[:2000]]
    return '\n'.join(lines)


def test_mesh_forms_from_node_annotations_alone(kube):
    lab, cluster = kube['lab'], kube['cluster']
    first = lab.playbook_with_inventory(kube['inventory'], 'playbooks/site.yml')
    assert first.returncode == 0, first.stdout[-3000:]
    keys = keys_of(lab)
    for host in HOSTS:
        assert peers(lab, host) == sorted(k for h, k in keys.items() if h != host), host
        hostname = lab.ssh(host, 'hostname').stdout.strip().lower()
        assert cluster.annotations(hostname)['wglan.mesh/public-key'] == keys[host]
    # The watchers share observations and sweep; a pair with no direct path goes through a relay.
    names, reach, status = full_mesh(lab)
    assert all(reach[s][d] for s, d in all_pairs(names)), (reach, status, wg_report(lab, names))
    second = lab.playbook_with_inventory(kube['inventory'], 'playbooks/site.yml', '--diff')
    assert second.returncode == 0, second.stdout[-3000:]
    assert recap_changed(second.stdout) == dict((h, 0) for h in HOSTS), changed_tasks(second.stdout)
    assert TOKEN not in first.stdout + second.stdout
    sys.stdout.write('\n' + '\n'.join(status.values()))


def test_adhoc_refresh_with_no_arguments(kube):
    lab = kube['lab']
    result = lab.adhoc('wglan', 'wglan.mesh.wglan_peers')
    lines = [line for line in result.stdout.splitlines() if ' | ' in line]
    assert len(lines) == len(HOSTS) and all('SUCCESS' in line for line in lines), result.stdout[-3000:]
    assert all('"reached": true' in line for line in lines), 'the saved settings named the Kubernetes source'
    assert TOKEN not in result.stdout


def test_a_node_annotated_in_the_cluster_is_everyones_peer_within_2_s(kube):
    lab, cluster = kube['lab'], kube['cluster']
    ghost = lab.ssh('hub1', 'wg genkey | wg pubkey').stdout.strip()
    cluster.register('ghost', '198.51.100.99')  # a Node without wglan annotations is not a member yet
    cluster.kubectl('annotate', 'node', 'ghost', 'wglan.mesh/public-key=%s' % ghost,
                    'wglan.mesh/address=200:1001::99', 'wglan.mesh/node-ips=198.51.100.99/24')
    annotated = time.time()  # the machines share this clock (containers)
    latency = peer_latency(lab, HOSTS, ghost, annotated)
    assert max(latency.values()) < 2.0, 'seconds from annotation to peer: %s' % latency
    sys.stdout.write('\nKubernetes Node to peer on every machine: %s\n' % latency)
    cluster.kubectl('delete', 'node', 'ghost')
    assert peer_gone(lab, HOSTS, ghost), 'a deleted Node is dropped too'


def test_malformed_annotations_on_one_node_do_not_stop_the_others(kube):
    lab, cluster = kube['lab'], kube['cluster']
    before = dict((h, peers(lab, h)) for h in HOSTS)
    b1 = lab.ssh('b1', 'hostname').stdout.strip().lower()
    cluster.kubectl('annotate', 'node', b1, '--overwrite', 'wglan.mesh/observed={garbage')
    fresh = lab.ssh('hub1', 'wg genkey | wg pubkey').stdout.strip()
    for name, values in (('bad-key', ['wglan.mesh/public-key=not-a-key']),
                         ('bad-cidr', ['wglan.mesh/public-key=%s' % fresh, 'wglan.mesh/assigned-prefixes=10.1.1.1/8'])):
        cluster.register(name, '198.51.100.9')
        cluster.kubectl('annotate', 'node', name, *values)
    # b1 is not in this run, so its broken annotation stays broken while the others read it.
    result = lab.playbook_with_inventory(kube['inventory'], 'playbooks/site.yml', '--limit', 'hub1,a1,a2')
    assert result.returncode == 0, result.stdout[-3000:]
    for name in ('bad-key', 'bad-cidr', b1):
        assert 'node %s' % name in result.stdout, name
    after = dict((h, peers(lab, h)) for h in HOSTS)
    assert after == before, 'b1 keeps its last good record; the bad Nodes add nothing'
    names, reach, status = full_mesh(lab)
    assert all(reach[s][d] for s, d in all_pairs(names)), (reach, status, wg_report(lab, names))
    # b1's own refresh (the ad-hoc call, from its saved settings) writes its annotations back.
    result = lab.adhoc('b1', 'wglan.mesh.wglan_peers')
    assert 'SUCCESS' in result.stdout, result.stdout[-3000:]
    json.loads(cluster.annotations(b1)['wglan.mesh/observed'])


def test_every_key_rotated_through_the_role_with_the_inventory_beside_kubernetes(kube):
    """site.yml with wglan_rotate_keys=true and the role's defaults apart from the Kubernetes source (the
    inventory is on: wglan_use_inventory's default, unlike the tests above, which prove the annotations
    alone): each node in turn publishes its next key in its Node's annotations and switches with every
    peer at the announced time, while every machine pings every other over the mesh, 5 a second."""
    lab = kube['lab']
    everyone = lab.inventory + '.kube-defaults'
    with open(lab.inventory) as handle:
        text = handle.read()
    with open(everyone, 'w') as handle:
        handle.write(text + '\n[all:vars]\nwglan_kubeconfig=/etc/wglan/kubeconfig\n')
    settle = lab.playbook_with_inventory(everyone, 'playbooks/site.yml')
    assert settle.returncode == 0, settle.stdout[-3000:]
    names, reach, status = full_mesh(lab)
    assert all(reach[s][d] for s, d in all_pairs(names)), (reach, status, wg_report(lab, names))
    before = keys_of(lab)
    rotation = rotate_under_pings(lab, everyone, HOSTS, 'inventory + Kubernetes')
    after = keys_of(lab)
    assert all(after[h] != before[h] for h in HOSTS), (before, after)
    for host in HOSTS:
        assert peers(lab, host) == sorted(after[h] for h in HOSTS if h != host), host
    assert rotation['down_after'] == [] and not rotation['bad'], rotation
