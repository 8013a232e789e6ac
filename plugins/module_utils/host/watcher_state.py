# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The watcher's state file (/run/wglan/paths.json): written by the watcher only, read by wglan_peers
and wglan_info, so that a run builds what the watcher decided instead of undoing it: the relays in
use, the relays this node's record asks for, the port it moved to behind a shared NAT, and this
host's addresses as it last saw them (the record's node IPs after a move), the next key of a rotation it
began, and the IPv4 overlay address it moved to (a smaller key claimed the one the role recorded)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.host import state_files
from ansible_collections.wglan.mesh.plugins.module_utils.model.settings import WATCHER_STATE

PATHS = WATCHER_STATE


class WatcherState:
    __slots__ = ('relays', 'published', 'port', 'node_ips', 'next_key', 'address4')

    def __init__(self, relays=None, published=None, port=None, node_ips=None, next_key=None, address4=None):
        self.relays = dict(relays or {})    # {peer key: relay key} in use
        self.published = None if published is None else dict(published)  # what the record asks for
        self.port = port                    # None: the configured port
        self.node_ips = None if node_ips is None else list(node_ips)  # None: as the role saw them
        self.next_key = dict(next_key) if next_key else None  # the record's next key fields (a key rotation)
        self.address4 = address4            # None: the role's record's IPv4 overlay address stands

    def as_dict(self):
        data = dict(version=1, relays=dict(sorted(self.relays.items())))
        if self.published is not None:
            data['published'] = dict(sorted(self.published.items()))
        if self.port is not None:
            data['port'] = self.port
        if self.node_ips is not None:
            data['node_ips'] = list(self.node_ips)
        if self.next_key:
            data['next_key'] = dict(self.next_key)
        if self.address4 is not None:
            data['address4'] = self.address4
        return data

    def __eq__(self, other):
        return isinstance(other, WatcherState) and self.as_dict() == other.as_dict()

    def __ne__(self, other):
        return not self == other


def _key_map(value):
    if not isinstance(value, dict):
        return None
    return dict((k, v) for k, v in value.items() if isinstance(k, str) and isinstance(v, str))


def _port(value):
    return value if isinstance(value, int) and not isinstance(value, bool) and 0 < value < 65536 else None


def _node_ips(value):
    if not isinstance(value, list):
        return None
    try:
        return [str(ipaddress.ip_interface(str(v))) for v in value]
    except ValueError:
        return None


def _ipv4(value):
    try:
        return str(ipaddress.IPv4Address(value)) if isinstance(value, str) else None
    except ValueError:
        return None


def read(path=PATHS):
    """The state the watcher last wrote; an empty one when the file is missing, unreadable or odd
    (each odd entry is left out on its own)."""
    try:
        data = state_files.read_json(path)
    except WglanError:
        data = None
    if not isinstance(data, dict):
        return WatcherState()
    next_key = data.get('next_key')
    if not (isinstance(next_key, dict) and isinstance(next_key.get('next_public_key'), str)
            and isinstance(next_key.get('next_key_at'), int)):
        next_key = None
    return WatcherState(_key_map(data.get('relays')), _key_map(data.get('published')), _port(data.get('port')),
                        _node_ips(data.get('node_ips')), next_key, _ipv4(data.get('address4')))


def read_relays(path=PATHS):
    """{peer key: relay key} the watcher last wrote; {} when there is none or it is unreadable."""
    return read(path).relays


def write(state, path=PATHS):
    return state_files.write_json_if_changed(path, state.as_dict(), 0o644)
