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
