# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""JSON state files: read, and written atomically only when they change."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import tempfile
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError


def write_json_if_changed(path, data, mode=0o644, check_mode=False, significant=None):
    """Atomically write data as JSON when it differs from what is there.

    Returns whether it changed in a way that matters: by default any change;
    with significant (a function of the data), only when significant(old) and
    significant(new) differ. The file is rewritten either way.
    """
    text = json.dumps(data, indent=2, sort_keys=True) + '\n'
    old_text = None
    try:
        with open(path) as handle:
            old_text = handle.read()
    except OSError:
        pass
    if old_text == text:
        return False
    matters = True
    if significant is not None and old_text is not None:
        try:
            matters = significant(json.loads(old_text)) != significant(data)
        except ValueError:
            matters = True
    if check_mode:
        return matters
    replace(path, text.encode('utf-8'), mode)
    return matters


def replace(path, content, mode):
    """Write content (bytes) to path atomically: a temporary file beside it, fsync, rename."""
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix='.wglan-', dir=directory)
        try:
            os.fchmod(fd, mode)
            view = memoryview(content)
            while view:
                view = view[os.write(fd, view):]
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except OSError as exc:
        raise WglanError('cannot write %s: %s' % (path, exc.strerror or exc))


def write_bytes_if_changed(path, content, mode=0o644, check_mode=False):
    """Atomically write content (bytes) when it differs from the file or its mode does; returns whether."""
    try:
        with open(path, 'rb') as handle:
            if handle.read() == content and (os.fstat(handle.fileno()).st_mode & 0o7777) == mode:
                return False
    except OSError:
        pass
    if not check_mode:
        replace(path, content, mode)
    return True


def read_json(path):
    """The JSON at path, None if missing; an unreadable file is an error naming the path."""
    try:
        with open(path) as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise WglanError('cannot read %s: %s' % (path, exc))


def read_text(path, limit=65536):
    """The text at path (stripped), None if missing; an unreadable or oversized file is an error naming the path."""
    try:
        with open(path, 'rb') as handle:
            data = handle.read(limit + 1)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise WglanError('cannot read %s: %s' % (path, exc.strerror or exc))
    if len(data) > limit:
        raise WglanError('%s is larger than %d bytes' % (path, limit))
    try:
        return data.decode('utf-8').strip() or None
    except UnicodeDecodeError:
        raise WglanError('%s is not text' % path)
