#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: wglan_keys
short_description: Ensure the node's WireGuard key pair
version_added: 0.1.0
description:
  - Makes sure an X25519 private key exists at O(path), readable by its owner only (mode C(0600)).
  - An existing key is never replaced unless O(rotate=true).
  - Returns the public key. The private key never leaves the file; it is not returned, logged or shown in a diff.
  - The key file is written atomically (temporary file, fsync, rename), so a reader never sees a truncated key.
options:
  path:
    description: Path of the private key file (base64, as C(wg genkey) writes it).
    type: path
    default: /etc/wglan/private.key
  rotate:
    description:
      - Replace an existing key with a new one. Every peer must then learn the new public key.
      - Not idempotent by design, each run with O(rotate=true) makes a new key.
    type: bool
    default: false
attributes:
  check_mode:
    description: Can run in check mode; reports what would change and writes nothing.
    support: full
  diff_mode:
    description: Shows the public key before and after.
    support: full
requirements:
  - cryptography (Debian package python3-cryptography)
seealso:
  - module: wglan.mesh.wglan_address
  - module: wglan.mesh.wglan_record
  - module: wglan.mesh.wglan_node
author:
  - wglan.mesh developers (@wglan-mesh)
'''

EXAMPLES = r'''
- name: Ensure this node has a WireGuard key pair
  wglan.mesh.wglan_keys:
  register: wglan_key

- name: Rotate the key
  wglan.mesh.wglan_keys:
    rotate: true
'''

RETURN = r'''
public_key:
  description: The public key (base64). Null in check mode when a key would be created.
  returned: always
  type: str
  sample: xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=
path:
  description: Path of the private key file.
  returned: always
  type: str
created:
  description: Whether a key file was created.
  returned: always
  type: bool
rotated:
  description: Whether an existing key was replaced.
  returned: always
  type: bool
previous_public_key:
  description: The public key before rotation.
  returned: when rotated
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.wglan.mesh.plugins.module_utils.shells import keys as shell


def main():
    module = AnsibleModule(argument_spec=shell.ARGUMENTS, supports_check_mode=True)
    module.exit_json(**shell.run(module))


if __name__ == '__main__':
    main()
