"""Importing this makes the repository importable as ansible_collections.wglan.mesh.

Python and Ansible both want the collection under <dir>/ansible_collections/wglan/mesh;
a symlink tree in build/collections points there. Also the skip rule shared by
the suites that need root and real tools.
"""
import os
import shutil
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
COLLECTIONS = os.path.join(ROOT, 'build', 'collections')
LINK = os.path.join(COLLECTIONS, 'ansible_collections', 'wglan', 'mesh')
# The discovery service: a program of its own, shipped by the discovery role.
DISCOVERY_SERVER = os.path.join(ROOT, 'roles', 'discovery', 'files', 'wglan_discovery.py')


def _importable():
    """Whether the collection is importable already (under ansible-test, which puts it on the path)."""
    try:
        import ansible_collections.wglan.mesh.plugins.module_utils.errors  # noqa: F401 pylint: disable=unused-import
        return True
    except ImportError:
        return False


if not _importable():
    if not os.path.islink(LINK):
        os.makedirs(os.path.dirname(LINK), exist_ok=True)
        os.symlink(ROOT, LINK)
    if COLLECTIONS not in sys.path:
        sys.path.insert(0, COLLECTIONS)


def skip_without(items, tools, what):
    """Skip items when not root or a tool is missing, except in CI, where that must fail."""
    import pytest
    missing = [tool for tool in tools if shutil.which(tool) is None]
    reason = None
    if os.geteuid() != 0:
        reason = '%s need root' % what
    elif missing:
        reason = 'missing tools: %s' % ', '.join(missing)
    if reason and not os.environ.get('CI'):
        for item in items:
            item.add_marker(pytest.mark.skip(reason=reason))
