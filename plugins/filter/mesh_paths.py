# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: mesh_paths
short_description: The files, watcher unit, nftables table and fact of one mesh on a host in several
version_added: 0.8.0
description:
  - The default mesh (an empty name) keeps the paths of every earlier version (C(/etc/wglan/settings.json) and so
    on). A named mesh keeps its files under C(/etc/wglan/<name>) and C(/run/wglan/<name>); its watcher is
    C(wglan-watcher@<name>.service), its nftables table C(wglan_<name>), its record fact C(wglan_record_<name>)
    (written to C(/etc/ansible/facts.d/wglan_<name>.fact)) and its names C(<host>.<name>.wglan.internal).
  - A name is 1 to 10 lower case letters and digits, a letter first; another name fails the task.
positional: _input
options:
  _input:
    description: The mesh's name (empty for the default mesh).
    type: str
    required: true
author:
  - wglan.mesh developers (@wglan-mesh)
'''

EXAMPLES = r'''
- name: Where the mgmt mesh keeps its settings
  ansible.builtin.debug:
    msg: "{{ ('mgmt' | wglan.mesh.mesh_paths).settings }}"
'''

RETURN = r'''
_value:
  description:
    - Keys C(name), C(config_dir), C(key), C(settings), C(state), C(watcher_records), C(watcher_config), C(claims), C(run_dir), C(relays),
      C(status), C(rotate_request), C(fact_path), C(fact_name), C(unit), C(table), C(names_domain), C(certificate).
  type: dict
'''

from ansible.errors import AnsibleFilterError

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.model.meshes import paths


def mesh_paths(name):
    try:
        return paths(name)
    except WglanError as exc:
        raise AnsibleFilterError(str(exc))


class FilterModule:
    def filters(self):
        return {'mesh_paths': mesh_paths}
