#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: wglan_ca
short_description: The mesh's certificate authority and its revocation list, on the controller
version_added: 1.0.0
description:
  - Makes the fleet CA once, an Ed25519 signing key, in a file readable by its owner only (mode C(0600)), or reads
    it from O(key) (a variable, which can live in Ansible Vault). Returns its public key, the only part the nodes
    get (the node role's C(wglan_ca_public_key)).
  - Run it on the controller (C(delegate_to=localhost), C(run_once=true)). The CA key never crosses SSH and is
    never returned, logged or shown in a diff.
  - With O(revoke_keys) or O(revoke_names), returns a revocation list signed by the CA. It is kept beside the key
    file (C(<path>.revoked)); the same keys and names return the same list, a change makes a newer one. Every node
    drops a revoked peer as soon as the list reaches it, through any of its sources, and passes it on.
  - A key file that others can read, or that does not hold a CA key, fails the task naming the file, never its
    content.
options:
  path:
    description: The CA key file on the controller. Made when it does not exist (unless O(key) is given).
    type: path
  key:
    description: The CA key's text (C(wglan-ca-key-1:...)), for example from a vaulted variable. Wins over O(path)
      for signing; O(path) still keeps the revocation list.
    type: str
  mesh:
    description: The mesh the revocation list is for (the node role's C(wglan_mesh)).
    type: str
    default: wglan0
  revoke_keys:
    description:
      - WireGuard public keys no longer admitted to the mesh.
      - Without O(revoke_keys) and O(revoke_names) the list kept beside the key file is left as it is (and
        returned); an empty list for either is a list that revokes nothing.
    type: list
    elements: str
  revoke_names:
    description: Node names no longer admitted to the mesh (whatever key they hold).
    type: list
    elements: str
attributes:
  check_mode:
    description: Can run in check mode; writes no file and reports what would change.
    support: full
  diff_mode:
    description: Shows whether the CA was made and what the revocation list names.
    support: full
  platform:
    support: full
    description: Runs on the controller (any POSIX host with Python and cryptography).
    platforms: posix
requirements:
  - cryptography (Debian package python3-cryptography)
seealso:
  - module: wglan.mesh.wglan_certificate
author:
  - wglan.mesh developers (@wglan-mesh)
'''

EXAMPLES = r'''
- name: The fleet CA, made once on the controller
  wglan.mesh.wglan_ca:
    path: "{{ playbook_dir }}/wglan-ca.key"
  delegate_to: localhost
  run_once: true
  register: wglan_ca

- name: The CA key from Ansible Vault (a variable holding the key file's text)
  wglan.mesh.wglan_ca:
    key: "{{ vault_wglan_ca_key }}"
  delegate_to: localhost
  run_once: true

- name: Revoke a lost laptop by name and a leaked key
  wglan.mesh.wglan_ca:
    path: "{{ playbook_dir }}/wglan-ca.key"
    revoke_names: [laptop-7]
    revoke_keys: ["xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg="]
  delegate_to: localhost
  run_once: true
  register: wglan_revoked
'''

RETURN = r'''
public_key:
  description: The CA's public key (base64). The nodes hold it; it is no secret.
  returned: always
  type: str
created:
  description: Whether the CA key was made now.
  returned: always
  type: bool
mesh:
  description: The mesh the revocation list is for.
  returned: always
  type: str
path:
  description: The CA key file.
  returned: when path is given
  type: str
revocations:
  description: The revocation list (text signed by the CA), or null when nothing is revoked.
  returned: always
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.wglan.mesh.plugins.module_utils.shells import certificates as shell


def main():
    module = AnsibleModule(argument_spec=shell.CA_ARGUMENTS, supports_check_mode=True,
                           required_one_of=[('path', 'key')])
    module.exit_json(**shell.run_ca(module))


if __name__ == '__main__':
    main()
