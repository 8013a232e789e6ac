# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every wglan module does the same way: library checks and error mapping."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import traceback

from ansible.module_utils.basic import missing_required_lib

from ansible_collections.wglan.mesh.plugins.module_utils.model import keys
from ansible_collections.wglan.mesh.plugins.module_utils.sources import kubernetes_api
from ansible_collections.wglan.mesh.plugins.module_utils.host import links
from ansible_collections.wglan.mesh.plugins.module_utils.model import source_merge
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError

_LIBS = {
    'cryptography': (lambda: keys.HAS_CRYPTOGRAPHY, lambda: keys.CRYPTOGRAPHY_IMPORT_ERROR, 'python3-cryptography'),
    'pyroute2': (lambda: links.HAS_PYROUTE2, lambda: links.PYROUTE2_IMPORT_ERROR, 'python3-pyroute2'),
    'jmespath': (lambda: source_merge.HAS_JMESPATH, lambda: ImportError('jmespath'), 'python3-jmespath'),
    'kubernetes': (lambda: kubernetes_api.HAS_KUBERNETES, lambda: ImportError('kubernetes'), 'python3-kubernetes'),
}


def require_libs(module, *names):
    """fail_json with missing_required_lib for the first library that is not importable."""
    for name in names:
        present, error, package = _LIBS[name]
        if not present():
            module.fail_json(msg=missing_required_lib(name, reason='(Debian package %s)' % package),
                             exception=''.join(traceback.format_exception_only(type(error()), error())))


def run_or_fail(module, func, *args, **kwargs):
    """Call func; a WglanError becomes fail_json with its (secret-free) message."""
    try:
        return func(*args, **kwargs)
    except WglanError as exc:
        module.fail_json(msg=str(exc))
