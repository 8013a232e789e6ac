# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""This node's key rotation, kept by the watcher: a next key is made and published beside the key with
the time the node switches to it (now + key_overlap); every peer stands the next key by, and at that
time the node takes it and every peer moves the node's addresses onto it (model.plan.rotated). The old
key is gone from the host once the node switched.

Files (the watcher alone writes them): <key>.next (the next private key, 0600) and <key>.next.json
(its public key and the switch time: no secret). A rotation is asked for with `wglan rotate-key` (a
request file in /run/wglan) or by key_lifetime (the key file older than that)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time

from ansible_collections.wglan.mesh.plugins.module_utils.daemon.common import log
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.host import key_files, state_files
from ansible_collections.wglan.mesh.plugins.module_utils.model import certificates
from ansible_collections.wglan.mesh.plugins.module_utils.model.node_records import SUCCESSION_MAX
from ansible_collections.wglan.mesh.plugins.module_utils.model.keys import generate_private_key, public_key_from_private

REQUEST = '/run/wglan/rotate-key'


def next_paths(key_path):
    return key_path + '.next', key_path + '.next.json'


class KeyRotation:
    def __init__(self, request_path=REQUEST):
        self.request_path = request_path
        self.pending = None     # (next public key, unix time of the switch)
        self.loaded = False

    def load(self, key_path):
        """A rotation a watcher began before it stopped goes on (also past its time: it switches at once)."""
        self.loaded = True
        key_path_next, info_path = next_paths(key_path)
        try:
            info = state_files.read_json(info_path)
            raw = key_files.read_private_key(key_path_next)
        except WglanError as exc:
            log('key rotation: %s; starting again' % exc)
            info, raw = None, None
        if isinstance(info, dict) and raw is not None and info.get('public_key') == public_key_from_private(raw) \
                and isinstance(info.get('at'), (int, float)):
            self.pending = (info['public_key'], int(info['at']))
            log('key rotation: switching to %s at %s' % (self.pending[0], _when(self.pending[1])))
        else:
            self.pending = None
            for path in (key_path_next, info_path):
                _remove(path)

    def requested(self, key_path, lifetime):
        """Whether a rotation is asked for now: a request file (taken), or a key older than lifetime."""
        if os.path.exists(self.request_path):
            _remove(self.request_path)
            return 'asked for'
        if lifetime and self.pending is None:
            try:
                age = time.time() - os.stat(key_path).st_mtime
            except OSError:
                return None
            if age > lifetime:
                return 'the key is %d days old' % (age // 86400)
        return None

    def begin(self, key_path, overlap, why):
        """Make the next key and choose when to switch. Returns True when a rotation began."""
        if self.pending is not None:
            return False
        key_path_next, info_path = next_paths(key_path)
        raw = generate_private_key()
        key_files.write_private_key(key_path_next, raw)
        at = int(time.time() + overlap)
        state_files.write_json_if_changed(info_path, dict(public_key=public_key_from_private(raw), at=at), 0o644)
        self.pending = (public_key_from_private(raw), at)
        log('key rotation (%s): next key %s, published now, switching at %s' % (why, self.pending[0], _when(at)))
        return True

    def due(self, now=None):
        return self.pending is not None and (now or time.time()) >= self.pending[1]

    def switch(self, key_path, name=None):
        """The next key becomes the key (the old one is gone from the host). Before it goes, the old key signs
        the next one (a succession step, model.certificates), for a mesh whose certificates name the old key."""
        key_path_next, info_path = next_paths(key_path)
        if name:
            try:
                remember_succession(key_path, name)
            except WglanError as exc:
                log('key rotation: %s' % exc)
        try:
            os.rename(key_path_next, key_path)
        except OSError as exc:
            # (tried again in a minute, not at every turn of the loop; the peers, which switched, wait)
            self.pending = (self.pending[0], int(time.time()) + 60)
            raise WglanError('key rotation: cannot take the next key: %s; trying again in 60 s' % (exc.strerror or exc))
        _remove(info_path)
        log('key rotation: switched to %s' % self.pending[0])
        self.pending = None

    def record_fields(self):
        """What this node's record says of its next key (nothing when none is pending)."""
        if self.pending is None:
            return {}
        return dict(next_public_key=self.pending[0], next_key_at=self.pending[1])


def remember_succession(key_path, name):
    """Add the step key -> next key (signed by the key) to the key's succession file (no secret; as many
    steps as a record may carry): a certificate for an earlier key still admits the node through them."""
    key_path_next, _info = next_paths(key_path)
    current, upcoming = key_files.read_private_key(key_path), key_files.read_private_key(key_path_next)
    if current is None or upcoming is None:
        return
    steps = key_files.read_succession(key_path)
    step = certificates.succession_step(name, current, upcoming)
    steps.append([public_key_from_private(current)] + step)
    state_files.write_json_if_changed(key_files.succession_path(key_path), dict(name=name, steps=steps[-SUCCESSION_MAX:]), 0o644)


def _when(at):
    return time.strftime('%H:%M:%S', time.localtime(at)) + ' (in %.0f s)' % max(0.0, at - time.time())


def _remove(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log('cannot remove %s: %s' % (path, exc.strerror or exc))
