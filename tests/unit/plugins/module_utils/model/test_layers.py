"""The folder says the stage: model/ is pure (no I/O), so nothing in it may import host/, sources/,
daemon/ or a library that reaches the system. Read from the source, so a lazy import inside a
function counts too."""
import ast
import os

import pytest

from collection import ROOT

LIBRARY = os.path.join(ROOT, 'plugins', 'module_utils')
PREFIX = 'ansible_collections.wglan.mesh.plugins.module_utils.'
# I/O the model must not do: the system's packages, and the stdlib modules that reach outside the process.
FORBIDDEN = ('host', 'sources', 'daemon', 'module_support')
IO_MODULES = ('socket', 'subprocess', 'os', 'tempfile', 'shutil', 'http', 'ssl', 'urllib', 'threading',
              'pyroute2', 'kubernetes', 'sqlite3', 'select', 'fcntl', 'ansible')


def imports_of(path):
    with open(path) as handle:
        tree = ast.parse(handle.read(), path)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name
        elif isinstance(node, ast.ImportFrom) and node.module:
            if node.module == PREFIX.rstrip('.'):
                for alias in node.names:
                    yield PREFIX + alias.name
            else:
                yield node.module


def violations(path):
    bad = []
    for name in imports_of(path):
        if name.startswith(PREFIX):
            stage = name[len(PREFIX):].split('.')[0]
            if stage in FORBIDDEN:
                bad.append(name)
        elif name.split('.')[0] in IO_MODULES:
            bad.append(name)
    return bad


MODEL = sorted(f for f in os.listdir(os.path.join(LIBRARY, 'model')) if f.endswith('.py'))


@pytest.mark.parametrize('name', MODEL)
def test_model_modules_import_no_io(name):
    assert violations(os.path.join(LIBRARY, 'model', name)) == []


def test_the_check_sees_a_forbidden_import(tmp_path):
    # the check itself can fail: a model module that reaches for the host is caught
    sample = tmp_path / 'sample.py'
    sample.write_text('import json\nfrom %shost import links\nfrom %smodel.peers import Peer\n'
                      'def f():\n    import subprocess\n' % (PREFIX, PREFIX))
    assert violations(str(sample)) == [PREFIX + 'host', 'subprocess']


def test_the_model_folder_is_not_empty():
    assert {'peers.py', 'node_records.py', 'topology.py', 'relay.py', 'nft_objects.py'} <= set(MODEL)


def test_the_discovery_server_is_not_in_the_node_library():
    assert not any('discovery_server' in names or 'wglan_discovery.py' in names
                   for _folder, _dirs, names in os.walk(LIBRARY))
