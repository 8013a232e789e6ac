# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The settings file (/etc/wglan/settings.json): written by wglan_peers with save_settings (the node
role's run) and by nothing else; read by ad-hoc wglan_peers calls and by the watcher."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.host import state_files
from ansible_collections.wglan.mesh.plugins.module_utils.model import settings


def read(path, required=False):
    """The saved settings ({} when there are none, unless required)."""
    saved = state_files.read_json(path)
    if saved is None and not required:
        return {}
    if saved is None:
        raise WglanError('%s is missing or not settings the role wrote' % path)
    if not isinstance(saved, dict) or saved.get('version') != 1:
        raise WglanError('%s is not a settings file this module wrote; run the role again or remove it' % path)
    return saved


def apply_settings(params):
    """Fill the options not given from the saved settings (for a call that names no source), then the
    defaults. Returns whether saved settings were used."""
    saved = {}
    if all(params.get(name) is None for name in settings.SOURCE_OPTIONS):
        saved = read(params['settings_path'])
    settings.complete(params, saved)
    return bool(saved)


def load(path):
    """The settings as the watcher runs with them: the saved ones, completed with the defaults."""
    return settings.complete(dict(records=None, settings_path=path), read(path, required=True))


def save(params, check_mode=False):
    # Holds the cluster token: root only, like the private key.
    return state_files.write_json_if_changed(params['settings_path'], settings.saved(params), 0o600, check_mode)
