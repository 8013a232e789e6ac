"""The ecosystem suite: the collection as the Ansible ecosystem's tools see it (the built artifact,
the documentation site, the execution environment, the dashboard, the README). `make ecosystem`
builds the artifact and the site first."""
import glob
import os

import pytest

from collection import ROOT, skip_without

TOOLS = os.path.join(ROOT, '.venv-tools', 'bin')
ARTIFACT_DIR = os.path.join(ROOT, 'build', 'galaxy')
INSTALLED = os.path.join(ARTIFACT_DIR, 'installed')
SITE = os.path.join(ROOT, 'build', 'docs-site', 'html')


def pytest_collection_modifyitems(config, items):
    skip_without(items, ('ip', 'chromium', os.path.join(TOOLS, 'ansible-builder')), 'ecosystem tests')


@pytest.fixture(scope='session')
def artifact():
    found = sorted(glob.glob(os.path.join(ARTIFACT_DIR, 'wglan-mesh-*.tar.gz')))
    assert found, 'no artifact in %s: make build-check' % ARTIFACT_DIR
    return found[-1]


def modules():
    return sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, 'plugins', 'modules', 'wglan_*.py')))


def roles():
    return sorted(os.path.basename(os.path.dirname(os.path.dirname(p)))
                  for p in glob.glob(os.path.join(ROOT, 'roles', '*', 'meta', 'argument_specs.yml')))


def filters():
    return sorted(os.path.basename(p)[:-3] for p in glob.glob(os.path.join(ROOT, 'plugins', 'filter', '*.py')))
