# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The meshes this host is in: each mesh's claims file (model.meshes), written by wglan_node for its
own mesh only (one writer per file), read by every mesh's calls and watchers."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.host import state_files
from ansible_collections.wglan.mesh.plugins.module_utils.model import meshes

ROOT = '/etc/wglan'


def claims_paths(root=ROOT):
    """The claims file of the default mesh and of every named one under root that has one."""
    out = [os.path.join(root, 'claims.json')]
    try:
        names = sorted(os.listdir(root))
    except OSError:
        names = []
    out.extend(os.path.join(root, name, 'claims.json') for name in names
               if meshes.NAME.match(name) and os.path.isdir(os.path.join(root, name)))
    return [path for path in out if os.path.exists(path)]


def read_all(root=ROOT):
    """[Claims] of every mesh on this host (a file that cannot be read is left out: it claims nothing)."""
    out = []
    for path in claims_paths(root):
        try:
            out.append(meshes.Claims.from_dict(state_files.read_json(path)))
        except (WglanError, TypeError):
            continue
    return out


def others(mesh, root=ROOT):
    mesh = meshes.parse_name(mesh)
    return [c for c in read_all(root) if c.mesh != mesh]


def mesh_interfaces(root=ROOT):
    """The interfaces of every mesh on this host (none of their addresses is where a node is)."""
    return set(c.interface for c in read_all(root) if c.interface)


def claims_path(mesh, root=ROOT):
    mesh = meshes.parse_name(mesh)
    return os.path.join(root, mesh, 'claims.json') if mesh else os.path.join(root, 'claims.json')


def write(claims, path, check_mode=False):
    return state_files.write_json_if_changed(path, claims.as_dict(), 0o644, check_mode)
