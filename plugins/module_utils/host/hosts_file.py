# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The mesh's block of names in the hosts file (model.peer_names makes it): written only when it changes,
atomically, keeping the file's mode; the lines around the block are never touched."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.host import state_files
from ansible_collections.wglan.mesh.plugins.module_utils.model import peer_names

HOSTS_PATH = '/etc/hosts'


def ensure(path, entries, tag, check_mode=False):
    """The block of tag in the hosts file at path holds entries (None: no block). Returns (changed,
    before, after) of the file's text."""
    try:
        with open(path) as handle:
            before = handle.read()
        mode = os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        before, mode = '', 0o644
    except OSError as exc:
        raise WglanError('cannot read %s: %s' % (path, exc.strerror or exc))
    after = peer_names.with_block(before, entries, tag)
    if after == before:
        return False, before, after
    if not check_mode:
        try:
            state_files.replace(path, after.encode('utf-8'), mode)
        except WglanError:
            # a hosts file that is a mount point (a container runtime's) cannot be renamed over
            _write_in_place(path, after)
    return True, before, after


def _write_in_place(path, text):
    try:
        with open(path, 'w') as handle:
            handle.write(text)
    except OSError as exc:
        raise WglanError('cannot write %s: %s' % (path, exc.strerror or errno.errorcode.get(exc.errno, exc)))
