# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""wglan_keys: the node's key pair."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.wglan.mesh.plugins.module_utils.host import key_files
from ansible_collections.wglan.mesh.plugins.module_utils.module_support import require_libs, run_or_fail

ARGUMENTS = dict(
    path=dict(type='path', default=key_files.DEFAULT_KEY_PATH),
    rotate=dict(type='bool', default=False),
)


def run(module):
    require_libs(module, 'cryptography')
    path = module.params['path']
    outcome = run_or_fail(module, key_files.ensure_key_pair, path, rotate=module.params['rotate'],
                          check_mode=module.check_mode)
    result = dict(changed=outcome.changed, path=path, public_key=outcome.public_key,
                  created=outcome.created, rotated=outcome.rotated)
    if outcome.rotated:
        result['previous_public_key'] = outcome.previous_public_key
    if module._diff:
        before = outcome.previous_public_key if outcome.rotated else (None if outcome.created else outcome.public_key)
        result['diff'] = dict(before={'public_key': before}, after={'public_key': outcome.public_key or '(new key)'})
    return result
