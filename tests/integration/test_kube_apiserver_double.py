"""The Kubernetes API test double (tests/kube_apiserver.py) behaves like the real API server.

The real API server cannot be installed here, so the Kubernetes source is tested
against a double. These tests hold the double to the real thing: the real
kubectl (Debian's kubernetes-client, and any other kubectl the machine has)
gets, annotates, patches (strategic, merge, JSON) and watches Nodes through it,
and a stale resourceVersion is a conflict. Then the collection's own client
(kubernetes_api) runs against it with the kubernetes library Debian 12 ships
(22.6, in .venv) and the current release (.venv-latest), and the verbs it used
are checked against the shipped RBAC manifest.
"""
import json
import os
import subprocess
import time
import uuid

import pytest
import yaml

from kubelab import DEBIAN_KUBECTL, Api, create, kubectls
from netns import ROOT


@pytest.fixture(scope='module')
def api(tmp_path_factory):
    server = Api(str(tmp_path_factory.mktemp('kube')), uuid.uuid4().hex[:6])
    try:
        yield server
    finally:
        server.destroy()


@pytest.mark.parametrize('binary', kubectls())
def test_kubectl_get_annotate_patch(api, binary):
    name = 'k%s' % uuid.uuid4().hex[:6]
    assert 'created' in create(api, binary, name, '198.51.100.7').stdout
    table = api.kubectl(binary, 'get', 'nodes').stdout.splitlines()
    assert table[0].split()[:2] == ['NAME', 'STATUS'] and any(line.split()[0] == name for line in table[1:])
    with pytest.raises(AssertionError, match='AlreadyExists|already exists'):
        create(api, binary, name, '198.51.100.7')

    api.kubectl(binary, 'annotate', 'node', name, 'wglan.mesh/public-key=abc')
    api.kubectl(binary, 'annotate', 'node', name, 'wglan.mesh/public-key=def', '--overwrite')
    refused = api.kubectl(binary, 'annotate', 'node', name, 'wglan.mesh/public-key=ghi', check=False)
    assert refused.returncode != 0 and 'overwrite' in refused.stderr  # kubectl's own guard, from the GET
    api.kubectl(binary, 'patch', 'node', name, '-p', '{"metadata":{"labels":{"zone":"a"}}}')  # strategic
    api.kubectl(binary, 'patch', 'node', name, '--type', 'merge', '-p', '{"metadata":{"labels":{"role":null}}}')
    api.kubectl(binary, 'patch', 'node', name, '--type', 'json',
                '-p', '[{"op":"add","path":"/metadata/annotations/wglan.mesh~1port","value":"51820"}]')
    node = json.loads(api.kubectl(binary, 'get', 'node', name, '-o', 'json').stdout)
    assert node['metadata']['annotations'] == {'wglan.mesh/public-key': 'def', 'wglan.mesh/port': '51820'}
    assert node['metadata']['labels'] == {'zone': 'a'}
    assert node['spec']['podCIDRs'] == ['10.244.7.0/24']
    jsonpath = api.kubectl(binary, 'get', 'node', name, '-o', "jsonpath={.metadata.annotations.wglan\\.mesh/port}")
    assert jsonpath.stdout == '51820'
    bad = api.kubectl(binary, 'patch', 'node', name, '--type', 'json',
                      '-p', '[{"op":"replace","path":"/metadata/nothere/x","value":"1"}]', check=False)
    assert bad.returncode != 0
    missing = api.kubectl(binary, 'get', 'node', 'no-such-node', check=False)
    assert missing.returncode != 0 and 'NotFound' in missing.stderr


@pytest.mark.parametrize('binary', kubectls())
def test_kubectl_stale_resource_version_is_a_conflict(api, binary):
    name = 'c%s' % uuid.uuid4().hex[:6]
    create(api, binary, name, '198.51.100.8')
    version = json.loads(api.kubectl(binary, 'get', 'node', name, '-o', 'json').stdout)['metadata']['resourceVersion']
    api.kubectl(binary, 'annotate', 'node', name, 'a=1', '--resource-version', version)
    stale = api.kubectl(binary, 'annotate', 'node', name, 'b=2', '--resource-version', version, check=False)
    assert stale.returncode != 0 and ('Conflict' in stale.stderr or 'modified' in stale.stderr), stale.stderr
    annotations = json.loads(api.kubectl(binary, 'get', 'node', name, '-o', 'json').stdout)['metadata']['annotations']
    assert annotations == {'a': '1'}


@pytest.mark.parametrize('binary', kubectls())
def test_kubectl_watch_sees_changes(api, binary):
    name = 'w%s' % uuid.uuid4().hex[:6]
    create(api, binary, name, '198.51.100.9')
    watch = subprocess.Popen(['ip', 'netns', 'exec', api.ns.name, binary, '--kubeconfig', api.kubeconfig, 'get',
                              'nodes', '--watch', '--output-watch-events', '-o', 'json',
                              '--field-selector', 'metadata.name=%s' % name],
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True)
    try:
        time.sleep(1.5)
        api.kubectl(binary, 'annotate', 'node', name, 'seen=yes')
        api.kubectl(binary, 'delete', 'node', name)
        time.sleep(1.5)
    finally:
        watch.kill()
        out, err = watch.communicate(timeout=10)
    decoder, events, text = json.JSONDecoder(), [], out.strip()
    while text:
        event, end = decoder.raw_decode(text)
        events.append(event)
        text = text[end:].strip()
    assert [e['type'] for e in events] == ['ADDED', 'MODIFIED', 'DELETED'], (out, err)
    assert events[1]['object']['metadata']['annotations'] == {'seen': 'yes'}
    assert all(e['object']['metadata']['name'] == name for e in events)


CLIENT_SCRIPT = r'''
import json, sys, threading, time
sys.path.insert(0, %(collections)r)
import kubernetes
from ansible_collections.wglan.mesh.plugins.module_utils.sources import kubernetes_api as k
out = {'library': kubernetes.__version__}
c = k.connect(%(kubeconfig)r)
nodes, version = c.list_nodes()
out['listed'] = sorted(n['metadata']['name'] for n in nodes)
out['missing'] = c.get_node('no-such-node')
c.patch_node(%(name)r, {'metadata': {'annotations': {'wglan.mesh/port': '51821'}}})
patched = c.get_node(%(name)r)
out['patched'] = patched['metadata']['annotations']
version = patched['metadata']['resourceVersion']  # watch from here: only the next change comes
def later():
    time.sleep(0.5)
    c.patch_node(%(name)r, {'metadata': {'annotations': {'wglan.mesh/port': '51822'}}})
threading.Thread(target=later).start()
started, seen = time.monotonic(), []
for kind, obj in c.watch_nodes(version, timeout_seconds=3):
    seen.append(kind)
    if kind == 'MODIFIED':
        out['modified_after'] = time.monotonic() - started
        out['modified_port'] = obj['metadata']['annotations']['wglan.mesh/port']
    if kind == 'BOOKMARK' and 'MODIFIED' in seen:
        break
out['seen'] = seen
try:
    for event in c.watch_nodes('1', timeout_seconds=2):
        pass
    out['gone'] = False
except k.Gone:
    out['gone'] = True
print(json.dumps(out))
'''


@pytest.mark.parametrize('python', ['.venv', '.venv-latest'])
def test_collection_client_with_both_library_versions(api, python):
    name = 'p%s' % uuid.uuid4().hex[:6]
    create(api, DEBIAN_KUBECTL, name, '198.51.100.10')
    # Everything before this moment is compacted away: a watch from resourceVersion 1 must get 410 Gone.
    api.test_call('/_test/compact', 'POST')
    script = CLIENT_SCRIPT % dict(collections=os.path.join(ROOT, 'build', 'collections'),
                                  kubeconfig=api.kubeconfig, name=name)
    proc = api.ns.cmd([os.path.join(ROOT, python, 'bin', 'python'), '-c', script], timeout=60)
    out = json.loads(proc.stdout)
    if python == '.venv':
        assert out['library'].startswith('22.'), 'Debian 12 ships 22.6: %s' % out['library']
    else:
        assert int(out['library'].split('.')[0]) > 22, out['library']
    assert name in out['listed'] and out['missing'] is None
    assert out['patched'] == {'wglan.mesh/port': '51821'}
    assert out['modified_port'] == '51822' and out['modified_after'] < 1.5
    assert 'BOOKMARK' in out['seen']
    assert out['gone'] is True


def test_rbac_manifest_covers_every_verb_the_collection_used(api):
    used = set(entry['verb'] for entry in api.test_call('/_test/audit') if entry['userAgent'] == 'wglan.mesh')
    with open(os.path.join(ROOT, 'deploy', 'kubernetes', 'rbac.yaml')) as handle:
        manifest = yaml.safe_load(handle)
    assert manifest['kind'] == 'List'  # one document, so `kubectl apply -f` and linters take it whole
    documents = manifest['items']
    role = [d for d in documents if d['kind'] == 'ClusterRole'][0]
    granted = set(verb for rule in role['rules'] if 'nodes' in rule['resources'] for verb in rule['verbs'])
    assert used, 'the client tests above ran no request'
    assert used <= granted, 'the client used %s, the manifest grants %s' % (sorted(used), sorted(granted))
    assert granted == set(['get', 'list', 'watch', 'patch']), 'least privilege: nothing beyond what is used'
    binding = [d for d in documents if d['kind'] == 'ClusterRoleBinding'][0]
    assert binding['roleRef']['name'] == role['metadata']['name']


WATCHES_SCRIPT = r'''
import json, sys, threading, time
sys.path.insert(0, %(collections)r)
from ansible_collections.wglan.mesh.plugins.module_utils.daemon.watches import Watches
from ansible_collections.wglan.mesh.plugins.module_utils.sources import kubernetes_api as k
c = k.connect(%(kubeconfig)r)
events, stop = [], threading.Event()
watches = Watches(lambda why: events.append((round(time.monotonic() - started, 2), why)), stop)
started = time.monotonic()
# The watcher's reconcile read the Nodes; this Node changes before its watch lists them.
c.patch_node(%(name)r, {'metadata': {'annotations': {'wglan.mesh/port': '51823'}}})
watches.start({'kubernetes': True, 'kubeconfig': %(kubeconfig)r, 'kube_context': None}, [])
deadline = time.monotonic() + 5
while not events and time.monotonic() < deadline:
    time.sleep(0.05)
before = list(events)
c.patch_node(%(name)r, {'metadata': {'annotations': {'wglan.mesh/port': '51824'}}})
deadline = time.monotonic() + 5
while len(events) == len(before) and time.monotonic() < deadline:
    time.sleep(0.05)
stop.set()
print(json.dumps({'before': before, 'all': events}))
'''


def test_the_watcher_reconciles_for_a_change_made_before_its_node_watch_started(api):
    """The watcher reads the Nodes, then starts its watch: a Node changed in between comes as no
    event of the watch (it lists after the change). The watch's start asks for a reconcile."""
    name = 'w%s' % uuid.uuid4().hex[:6]
    create(api, DEBIAN_KUBECTL, name, '198.51.100.11')
    script = WATCHES_SCRIPT % dict(collections=os.path.join(ROOT, 'build', 'collections'),
                                   kubeconfig=api.kubeconfig, name=name)
    proc = api.ns.cmd([os.path.join(ROOT, '.venv', 'bin', 'python'), '-c', script], timeout=60)
    out = json.loads(proc.stdout)
    assert [why for _at, why in out['before']] == ['kubernetes watch started'], out
    # and a change after the watch's start comes as its event
    assert out['all'][len(out['before']):] and out['all'][-1][1] == 'kubernetes node modified', out
