"""A host without pyroute2 / cryptography gets a clear message, not a traceback."""
import os
import subprocess
import uuid

import pytest

from netns import Namespace, Playbook


@pytest.fixture(scope='module')
def bare_python(tmp_path_factory):
    """A venv without site packages: the managed host that lacks the libraries."""
    path = tmp_path_factory.mktemp('bare') / 'venv'
    subprocess.run(['/usr/bin/python3', '-m', 'venv', '--without-pip', str(path)], check=True)
    python = str(path / 'bin' / 'python3')
    probe = subprocess.run([python, '-c', 'import pyroute2'], stderr=subprocess.DEVNULL, check=False)
    assert probe.returncode != 0, 'the bare interpreter must not see pyroute2'
    return python


@pytest.fixture(scope='module')
def scratch_ns():
    ns = Namespace('wglan-bare-%s' % uuid.uuid4().hex[:6])
    try:
        yield ns
    finally:
        ns.destroy()


@pytest.mark.parametrize('module,args,library', [
    ('wglan.mesh.wglan_info', {}, 'pyroute2'),
    ('wglan.mesh.wglan_keys', {'path': '/nonexistent/wglan/private.key'}, 'cryptography'),
    ('wglan.mesh.wglan_rules', {'interface': 'wgnone'}, 'pyroute2'),
])
def test_missing_library_is_a_clear_failure(tmp_path, bare_python, scratch_ns, module, args, library):
    old = os.environ.get('WGLAN_TEST_PYTHON')
    os.environ['WGLAN_TEST_PYTHON'] = bare_python
    try:
        result = Playbook(scratch_ns, str(tmp_path)).one(module, args)
    finally:
        if old is None:
            del os.environ['WGLAN_TEST_PYTHON']
        else:
            os.environ['WGLAN_TEST_PYTHON'] = old
    assert result.get('failed') is True
    assert 'Failed to import the required Python library (%s)' % library in result['msg']
    assert 'Traceback' not in result['msg']
    assert not os.path.exists('/nonexistent/wglan')
