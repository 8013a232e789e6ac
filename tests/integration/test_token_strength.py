"""The node role refuses a weak cluster token, and a key rotation it cannot carry out without an outage,
before it does anything, and never prints the token.

The role runs for real (ansible-playbook, connection local) inside a network namespace made here
and in check mode, so that even a broken check could change nothing on this machine."""
import os
import subprocess
import uuid

import pytest
import yaml

from netns import COLLECTIONS, Namespace


@pytest.fixture
def space():
    ns = Namespace('wglan-tok-%s' % uuid.uuid4().hex[:6])
    try:
        yield ns
    finally:
        ns.destroy()


def run_role(ns, workdir, token, check=True, **extra):
    role_vars = {'wglan_cluster_token': token, 'wglan_key_path': os.path.join(workdir, 'key')}
    role_vars.update(extra)
    play = [{'hosts': 'localhost', 'gather_facts': False, 'roles': [{'role': 'wglan.mesh.node', 'vars': role_vars}]}]
    path = os.path.join(workdir, 'play.yml')
    with open(path, 'w') as handle:
        yaml.safe_dump(play, handle)
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR='1',
               ANSIBLE_LOCAL_TEMP=workdir, ANSIBLE_REMOTE_TEMP=workdir)
    return ns.cmd(['ansible-playbook', '-i', 'localhost,', '-c', 'local'] + (['--check'] if check else []) + [path],
                  check=False, timeout=120, env=env)


@pytest.mark.parametrize('token', ['hunter2', 'correct-horse-' * 1 + 'x', 'ab' * 40])
def test_a_weak_token_is_refused_before_anything_runs(space, tmp_path, token):
    proc = run_role(space, str(tmp_path), token)
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert 'bits of entropy, fewer than 128' in out and 'playbooks/token.yml' in out, out
    assert token not in out
    assert 'TASK [wglan.mesh.node : Make this host a node' not in out, 'nothing after the check ran'
    assert not os.path.exists(os.path.join(str(tmp_path), 'key'))


def test_the_token_playbook_makes_a_strong_token_once_and_keeps_it(tmp_path):
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR='1', ANSIBLE_LOCAL_TEMP=str(tmp_path))
    path = str(tmp_path / 'token')
    playbook = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                            'playbooks', 'token.yml')
    runs = [subprocess.run(['ansible-playbook', playbook, '-e', 'wglan_token_file=%s' % path], stdout=subprocess.PIPE,
                           stderr=subprocess.STDOUT, universal_newlines=True, timeout=120, check=False, env=env)
            for _n in range(2)]
    assert all(r.returncode == 0 for r in runs), runs[-1].stdout
    token = open(path).read().strip()
    assert oct(os.stat(path).st_mode & 0o777) == '0o600'
    assert 'changed=1' in runs[0].stdout and 'changed=0' in runs[1].stdout
    assert token not in runs[0].stdout + runs[1].stdout
    from ansible_collections.wglan.mesh.plugins.filter.token_bits import token_bits
    assert len(token) == 43 and token_bits(token) >= 250


def test_a_key_rotation_with_the_inventory_alone_is_refused_before_any_host_is_contacted(space, tmp_path):
    """The role's defaults (the inventory, the watcher) and wglan_rotate_keys, with no discovery service and no
    Kubernetes: the peers would learn the new keys only at the next run. Not in check mode: the refusal
    is what stops the run, before the first task that touches the host."""
    import time
    started = time.monotonic()
    proc = run_role(space, str(tmp_path), '', check=False, wglan_rotate_keys=True)
    took = time.monotonic() - started
    out = proc.stdout + proc.stderr
    assert proc.returncode != 0, out
    assert 'key rotation needs a live source' in out and 'nothing was changed' in out, out
    assert 'TASK [wglan.mesh.node : Make this host a node' not in out, 'nothing after the check ran'
    assert not os.path.exists(os.path.join(str(tmp_path), 'key'))
    print('\nrotation with the inventory alone: the role refused in %.1f s (the whole ansible-playbook run)' % took)
