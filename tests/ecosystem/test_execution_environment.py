"""The execution environment: ansible-builder reads the collection's meta/execution-environment.yml
from the installed artifact (introspect: what an EE build would add for it), and validates and
expands the example definition (deploy/execution-environment) into a build context. Building the
image needs a container engine, which this machine does not have: that step is left out."""
import os
import shutil
import subprocess

import yaml

from conftest import INSTALLED, ROOT, TOOLS

BUILDER = os.path.join(TOOLS, 'ansible-builder')
DEFINITION = os.path.join(ROOT, 'deploy', 'execution-environment', 'execution-environment.yml')


def builder(*args, cwd=None):
    return subprocess.run([BUILDER] + list(args), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=cwd,
                          universal_newlines=True, timeout=300, check=False)


def test_ansible_builder_finds_what_the_collection_needs_on_the_controller(artifact):
    done = builder('introspect', '--sanitize', INSTALLED)
    assert done.returncode == 0, done.stdout
    found = yaml.safe_load(done.stdout.split('\n', 1)[1])
    with open(os.path.join(ROOT, 'requirements.txt')) as handle:
        python = [line.strip() for line in handle if line.strip() and not line.startswith('#')]
    with open(os.path.join(ROOT, 'bindep.txt')) as handle:
        system = [line.strip() for line in handle if line.strip() and not line.startswith('#')]
    assert python and system
    assert ['%s  # from collection wglan.mesh' % line for line in python] == \
        [line for line in found['python'] if 'wglan.mesh' in line]
    assert ['%s  # from collection wglan.mesh' % line for line in system] == \
        [line for line in found['system'] if 'wglan.mesh' in line]


def test_the_example_definition_is_valid_and_makes_a_build_context(tmp_path):
    context = tmp_path / 'context'
    done = builder('create', '-f', DEFINITION, '-c', str(context), '--output-filename', 'Containerfile')
    assert done.returncode == 0, done.stdout
    containerfile = (context / 'Containerfile').read_text()
    assert 'ansible-galaxy collection install' in containerfile or 'install-from-bindep' in containerfile
    assert (context / '_build' / 'requirements.yml').exists()


def test_ansible_builder_refuses_a_broken_definition(tmp_path):
    # (the validation is ansible-builder's own: a definition it would build from is not just YAML)
    with open(DEFINITION) as handle:
        definition = yaml.safe_load(handle)
    definition['dependencies']['galaxy_requirements'] = definition['dependencies'].pop('galaxy')
    broken = tmp_path / 'execution-environment.yml'
    broken.write_text(yaml.safe_dump(definition))
    shutil.copy(os.path.join(os.path.dirname(DEFINITION), 'requirements.yml'), str(tmp_path))
    done = builder('create', '-f', str(broken), '-c', str(tmp_path / 'context'))
    assert done.returncode != 0 and 'galaxy_requirements' in done.stdout, done.stdout


LOCAL = os.path.join(ROOT, 'deploy', 'execution-environment', 'execution-environment-local.yml')


def test_the_local_definition_builds_from_this_artifact_and_the_tarball_in_its_context_installs(artifact, tmp_path):
    """`make ee-context`: the definition that takes wglan.mesh from the artifact (not Galaxy) makes a context
    whose galaxy stage copies the tarball in and installs it from there. The install is run here as that
    stage runs it (ansible-galaxy collection install -r the context's requirements), against the context's
    copy (--no-deps: the dependencies come from Galaxy, which this machine does not reach)."""
    with open(os.path.join(ROOT, 'galaxy.yml')) as handle:
        version = yaml.safe_load(handle)['version']
    shutil.copy(artifact, os.path.join(os.path.dirname(artifact), 'wglan-mesh.tar.gz'))
    context = tmp_path / 'context'
    done = builder('create', '-f', LOCAL, '-c', str(context), '--output-filename', 'Containerfile')
    assert done.returncode == 0, done.stdout
    containerfile = (context / 'Containerfile').read_text()
    assert 'COPY _build/collections/ /tmp/wglan-collections/' in containerfile
    assert containerfile.index('/tmp/wglan-collections/') < containerfile.index('ansible-galaxy collection install')
    with open(str(context / '_build' / 'requirements.yml')) as handle:
        wanted = yaml.safe_load(handle)['collections']
    assert wanted == [{'name': '/tmp/wglan-collections/wglan-mesh.tar.gz', 'type': 'file'}]
    copied = context / '_build' / 'collections' / 'wglan-mesh.tar.gz'
    assert copied.exists()
    requirements = tmp_path / 'requirements.yml'
    requirements.write_text(yaml.safe_dump(dict(collections=[dict(name=str(copied), type='file')])))
    done = subprocess.run([os.path.join(ROOT, '.venv', 'bin', 'ansible-galaxy'), 'collection', 'install', '--no-deps',
                           '-r', str(requirements), '-p', str(tmp_path / 'installed')], stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, universal_newlines=True, timeout=300, check=False,
                          env=dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(tmp_path / 'installed')))
    assert done.returncode == 0 and 'wglan.mesh:%s was installed successfully' % version in done.stdout, done.stdout
    assert (tmp_path / 'installed' / 'ansible_collections' / 'wglan' / 'mesh' / 'plugins' / 'modules'
            / 'wglan_peers.py').exists()


def test_the_base_image_is_one_with_years_of_support_left():
    # (Fedora 41, the base image before, reached its end of life in 2025)
    for path in (DEFINITION, LOCAL):
        with open(path) as handle:
            assert yaml.safe_load(handle)['images']['base_image']['name'] == 'quay.io/centos/centos:stream10', path
