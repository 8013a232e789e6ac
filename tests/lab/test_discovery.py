"""The discovery service as the mesh's only source, on the lab.

hub1 runs the service (role wglan.mesh.discovery); every node has
wglan_use_inventory=false, so it learns its peers from the service only.
"""
import os
import uuid

import pytest

from lab import Lab, mesh_matrix, new_name, plan

TOKEN = 'lab-token-%s' % uuid.uuid4().hex


@pytest.fixture(scope='module')
def disc_lab():
    instance = Lab(new_name())
    try:
        instance.up(plan(public=1, sites=2, per_site=2))
        yield instance
    finally:
        instance.down()


def inventory(lab, name, hosts):
    with open(lab.inventory) as handle:
        lines = handle.read().split('\n')
    kept = [line for line in lines if not line or not line[0].isalnum() or line.split()[0] in hosts
            or line.startswith(('ansible_', '[')) or '=' in line.split()[0]]
    text = '\n'.join(kept)
    text += '\n[wglan_discovery]\nhub1\n\n[all:vars]\nwglan_use_inventory=false\nwglan_cluster_token=%s\n' % TOKEN
    if 'hub1' not in hosts:
        # hub1 stays known (its address is the service URL) but outside group wglan
        text += '\n[others]\n' + [line for line in lines if line.startswith('hub1 ')][0] + '\n'
    path = os.path.join(lab.dir, name)
    with open(path, 'w') as handle:
        handle.write(text)
    return path


def test_mesh_forms_from_the_discovery_service_alone(disc_lab):
    lab = disc_lab
    main = inventory(lab, 'main.ini', ['hub1', 'a1', 'a2', 'b1'])
    result = lab.playbook_with_inventory(main, 'playbooks/site.yml')
    assert result.returncode == 0, result.stdout[-3000:]
    assert TOKEN not in result.stdout
    assert lab.ssh('hub1', 'systemctl is-active wglan-discovery').stdout.strip() == 'active'
    names, reach, _age = mesh_matrix(lab, only=['hub1', 'a1', 'a2', 'b1'])
    # first run: everyone reaches the public node, and same-site nodes reach each other
    assert all(reach[s]['hub1'] and reach['hub1'][s] for s in names if s != 'hub1'), reach
    assert reach['a1']['a2'] and reach['a2']['a1'], reach
    # Across two NATs a node whose NAT changed its port is found through what the
    # public node observed, which it publishes on its next run (or the watcher, later).
    result = lab.playbook_with_inventory(main, 'playbooks/site.yml')
    assert result.returncode == 0, result.stdout[-3000:]
    names, reach, _age = mesh_matrix(lab, only=['hub1', 'a1', 'a2', 'b1'])
    assert all(reach[s][d] for s in names for d in names if s != d), reach
    assert lab.ssh('a1', 'wg show wglan0 preshared-keys').stdout.count('(none)') == 0


def test_a_node_known_only_to_the_service_is_learned_on_the_next_run(disc_lab):
    lab = disc_lab
    main = os.path.join(lab.dir, 'main.ini')
    alone = inventory(lab, 'b2.ini', ['b2'])
    result = lab.playbook_with_inventory(alone, 'playbooks/site.yml', '--limit', 'b2')
    assert result.returncode == 0, result.stdout[-3000:]
    result = lab.playbook_with_inventory(main, 'playbooks/site.yml')
    assert result.returncode == 0, result.stdout[-3000:]
    names, reach, _age = mesh_matrix(lab)
    assert all(reach[s][d] for s in names for d in names if s != d), reach


def test_service_restart_loses_no_record(disc_lab):
    lab = disc_lab
    main = os.path.join(lab.dir, 'main.ini')
    before = dict((h, lab.ssh(h, 'wg show wglan0 peers').stdout.split()) for h in ['hub1', 'a1', 'a2', 'b1'])
    lab.ssh('hub1', 'systemctl restart wglan-discovery')
    result = lab.playbook_with_inventory(main, 'playbooks/site.yml')
    assert result.returncode == 0, result.stdout[-3000:]
    assert 'is unreachable' not in result.stdout, 'the service answered after its restart'
    assert 'keeping the' not in result.stdout
    after = dict((h, lab.ssh(h, 'wg show wglan0 peers').stdout.split()) for h in before)
    assert dict((h, sorted(p)) for h, p in after.items()) == dict((h, sorted(p)) for h, p in before.items())
    assert all(len(p) == 4 for p in after.values()), 'b2, known only to the service, is still everyone\'s peer'
    names, reach, _age = mesh_matrix(lab)
    assert all(reach[s][d] for s in names for d in names if s != d), reach
