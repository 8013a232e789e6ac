# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""wglan_watcher: the watcher's options (validated here, at play time), and the service itself."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

# The watcher's entry point: imported so that Ansible ships the whole watcher with the module,
# which then installs the library it runs from (host.watcher_service), and names it in the unit.
from ansible_collections.wglan.mesh.plugins.module_utils.daemon import cli
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.host import state_files, watcher_service
from ansible_collections.wglan.mesh.plugins.module_utils.model import meshes, watcher_options
from ansible_collections.wglan.mesh.plugins.module_utils.module_support import run_or_fail

KINDS = dict((name, 'float') for name in watcher_options.SECONDS)
KINDS.update((name, 'bool') for name in watcher_options.FLAGS)
KINDS.update((name, 'int') for name in watcher_options.INTEGERS)
KINDS.update(firewall_udp_ports='list', endpoint_exclude='list', metrics_address='str', table='str',
             status_path='path', key_lifetime='str', rotate_request='path')

ARGUMENTS = dict(
    mesh=dict(type='str', default=''),
    path=dict(type='path'),
    state=dict(type='str', choices=['present', 'absent'], default='present'),
    service=dict(type='bool', default=True),
    settings_path=dict(type='path'),
)
# (option: the key of model.meshes.paths that gives its default)
MESH_DEFAULTS = dict(path='watcher_config', settings_path='settings', status_path='status',
                     rotate_request='rotate_request', table='table')
for _name, _kind in KINDS.items():
    ARGUMENTS[_name] = dict(type=_kind, elements='str') if _kind == 'list' else dict(type=_kind)
for _name in ('key_lifetime', 'key_overlap'):
    ARGUMENTS[_name]['no_log'] = False  # (times, not keys)


def options_given(params):
    return dict((name, params[name]) for name in watcher_options.DEFAULTS if params.get(name) is not None)


def _with_mesh_defaults(module):
    """The options the call did not give, from its mesh (the default mesh: the paths every version used)."""
    params = module.params
    paths = run_or_fail(module, meshes.paths, params['mesh'])
    for name, key in MESH_DEFAULTS.items():
        if params.get(name) is None and (paths['name'] or name in ('path', 'settings_path')):
            params[name] = paths[key]
    return paths


def _remove(module, unit):
    params = module.params
    gone = run_or_fail(module, watcher_service.remove, module.check_mode, unit) if params['service'] else False
    if os.path.exists(params['path']):
        gone = True
        if not module.check_mode:
            os.unlink(params['path'])
    return dict(changed=gone)


def run(module):
    params = module.params
    unit = _with_mesh_defaults(module)['unit']
    if params['state'] == 'absent':
        return _remove(module, unit)
    options = run_or_fail(module, watcher_options.validate, options_given(params))
    path = params['path']
    before = None
    if module._diff:
        try:
            before = state_files.read_json(path)
        except WglanError:  # an unreadable file is replaced; the diff shows it as empty
            before = None
    changed = run_or_fail(module, state_files.write_json_if_changed, path, options, 0o644, module.check_mode)
    result = dict(changed=changed, options=options, service=[])
    if params['service']:
        result['service'] = run_or_fail(module, watcher_service.ensure, cli.__name__, params['settings_path'],
                                        path, module.check_mode, unit)
        result['changed'] = changed or bool(result['service'])
    if module._diff:
        result['diff'] = dict(before=dict(before or {}), after=dict(options))
        if result['service']:
            result['diff']['after']['service'] = result['service']
    return result
