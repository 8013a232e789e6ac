# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The private key file: created once, 0600, read back; never logged."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import os
import stat
import tempfile
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.host import state_files
from ansible_collections.wglan.mesh.plugins.module_utils.model.keys import decode_key
from ansible_collections.wglan.mesh.plugins.module_utils.model.keys import generate_private_key
from ansible_collections.wglan.mesh.plugins.module_utils.model.keys import public_key_from_private


DEFAULT_KEY_PATH = '/etc/wglan/private.key'


def read_private_key(path):
    """Read a key file. Returns raw bytes, or None when the file does not exist."""
    try:
        with open(path, 'rb') as handle:
            content = handle.read(4096)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise WglanError('cannot read private key file %s: %s' % (path, exc.strerror))
    try:
        text = content.decode('ascii').strip()
    except UnicodeDecodeError:
        raise WglanError('private key file %s does not hold a base64 WireGuard key' % path)
    try:
        return decode_key(text, 'private key in %s' % path)
    except WglanError:
        raise WglanError('private key file %s does not hold a valid WireGuard key' % path)


def write_private_key(path, private_raw):
    """Write the key atomically: a 0600 temp file in the same directory, fsync, rename.

    A reader sees the old key or the new one, never a truncated file.
    """
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, mode=0o700, exist_ok=True)
    except OSError as exc:
        raise WglanError('cannot create key directory %s: %s' % (directory, exc.strerror))
    fd = None
    tmp_path = None
    try:
        fd, tmp_path = tempfile.mkstemp(prefix='.wglan-key-', dir=directory)
        os.fchmod(fd, stat.S_IRUSR | stat.S_IWUSR)
        os.write(fd, base64.b64encode(private_raw) + b'\n')
        os.fsync(fd)
        os.close(fd)
        fd = None
        os.rename(tmp_path, path)
        tmp_path = None
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as exc:
        raise WglanError('cannot write private key file %s: %s' % (path, exc.strerror))
    finally:
        if fd is not None:
            os.close(fd)
        if tmp_path is not None and os.path.exists(tmp_path):
            os.unlink(tmp_path)


def key_file_mode_ok(path):
    """True when the key file is a regular file readable by its owner only."""
    st = os.stat(path)
    return stat.S_ISREG(st.st_mode) and (st.st_mode & 0o077) == 0


class KeyPairResult:
    """What ensure_key_pair did. Holds the public key only; the private key stays on disk."""

    def __init__(self, public_key, changed, created, rotated, mode_fixed, previous_public_key):
        self.public_key = public_key
        self.changed = changed
        self.created = created
        self.rotated = rotated
        self.mode_fixed = mode_fixed
        self.previous_public_key = previous_public_key


def ensure_key_pair(path, rotate=False, check_mode=False):
    """Make sure a private key exists at path (0600). Never replaces one unless rotate.

    In check mode nothing is written; public_key is None when a key would be made.
    """
    existing = read_private_key(path)
    if existing is not None and not rotate:
        mode_fixed = False
        if not key_file_mode_ok(path):
            mode_fixed = True
            if not check_mode:
                try:
                    os.chmod(path, 0o600)
                except OSError as exc:
                    raise WglanError('cannot set mode 0600 on %s: %s' % (path, exc.strerror))
        return KeyPairResult(public_key_from_private(existing), mode_fixed, False, False, mode_fixed, None)

    previous = public_key_from_private(existing) if existing is not None else None
    if check_mode:
        return KeyPairResult(None, True, existing is None, existing is not None, False, previous)
    new_key = generate_private_key()
    write_private_key(path, new_key)
    return KeyPairResult(public_key_from_private(new_key), True, existing is None, existing is not None, False, previous)


def load_or_create_private_key(path, check_mode=False):
    """Private key bytes for a device. Creates the file if missing (not in check mode).

    Returns (raw_or_None, created). raw is None only in check mode for a missing key.
    """
    existing = read_private_key(path)
    if existing is not None:
        return existing, False
    if check_mode:
        return None, True
    new_key = generate_private_key()
    write_private_key(path, new_key)
    return new_key, True


def succession_path(key_path):
    """The key's succession file: the key rotations since an earlier key, each signed by the key before it
    (model.certificates; no secret)."""
    return key_path + '.succession.json'


def read_succession(key_path):
    """[[from key, next key, next signer, signature], ...] of the key's succession file ([] when none)."""
    try:
        data = state_files.read_json(succession_path(key_path))
    except WglanError:
        return []
    steps = data.get('steps') if isinstance(data, dict) else None
    return [s for s in steps if isinstance(s, list) and len(s) == 4] if isinstance(steps, list) else []
