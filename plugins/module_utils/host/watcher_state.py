# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The watcher's state file (relays, what its record asks of peers, the port it moved to)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.wglan.mesh.plugins.module_utils.host import state_files
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError


PATHS = '/run/wglan/paths.json'


def _read_paths(path, name):
    """The entry name of the paths file; None when the file is missing, unreadable or odd."""
    try:
        data = state_files.read_json(path)
    except WglanError:
        return None
    return data.get(name) if isinstance(data, dict) else None


def _key_map(value):
    if not isinstance(value, dict):
        return None
    return dict((k, v) for k, v in value.items() if isinstance(k, str) and isinstance(v, str))


def read_relays(path=PATHS):
    """{peer key: relay key} the watcher last wrote; {} when there is none or it is unreadable."""
    return _key_map(_read_paths(path, 'relays')) or {}


def read_published(path=PATHS):
    """{peer key: relay key} the watcher last published in this node's record; None when unknown."""
    return _key_map(_read_paths(path, 'published'))


def read_port(path=PATHS):
    """The listen port the watcher moved to behind a shared NAT; None when it chose none."""
    port = _read_paths(path, 'port')
    return port if isinstance(port, int) and not isinstance(port, bool) and 0 < port < 65536 else None


def write_relays(relays, path=PATHS, published=None, port=None):
    data = dict(version=1, relays=dict(sorted(relays.items())))
    if published is not None:
        data['published'] = dict(sorted(published.items()))
    if port is not None:
        data['port'] = port
    state_files.write_json_if_changed(path, data, 0o644)
