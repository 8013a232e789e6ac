#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: wglan_address
short_description: Compute the node's mesh address (EUI-64 in the mesh prefix)
version_added: 0.1.0
description:
  - Computes the node's WireGuard address, the mesh O(prefix) followed by the modified EUI-64
    identifier of a MAC address. Same inputs, same address, always.
  - The MAC is, in order of preference, O(mac); the MAC of O(source_interface); the first physical
    (bus-attached) Ethernet link by interface index; in containers and network namespaces that have
    no physical link, the first Ethernet link by index that is not a well-known virtual kind.
  - With O(assign_to), also adds the address (as a /64) to that interface. Other addresses stay.
options:
  prefix:
    description: The mesh prefix. IPv6, length at most 64, no host bits set.
    type: str
    default: 0200:1001::/64
  mac:
    description: The MAC address to derive the identifier from.
    type: str
  source_interface:
    description: Take the MAC of this interface.
    type: str
  assign_to:
    description: Add the address to this interface (for example C(wglan0)).
    type: str
attributes:
  check_mode:
    description: Computes the address; with O(assign_to) reports whether it would be added.
    support: full
  diff_mode:
    description: Shows the interface addresses before and after.
    support: full
requirements:
  - pyroute2 (Debian package python3-pyroute2), only with O(assign_to)
seealso:
  - module: wglan.mesh.wglan_keys
  - module: wglan.mesh.wglan_record
author:
  - wglan.mesh developers (@wglan-mesh)
'''

EXAMPLES = r'''
- name: Compute the address
  wglan.mesh.wglan_address:
  register: wglan_addr

- name: Compute from a given MAC in a private prefix and put it on wglan0
  wglan.mesh.wglan_address:
    prefix: fd7a:115c:a1e0::/64
    mac: "52:54:00:12:34:56"
    assign_to: wglan0
'''

RETURN = r'''
address:
  description: The node's address.
  returned: always
  type: str
  sample: "200:1001::5054:ff:fe12:3456"
cidr:
  description: The address with the /64 it keeps on the link.
  returned: always
  type: str
  sample: "200:1001::5054:ff:fe12:3456/64"
mac:
  description: The MAC address used.
  returned: always
  type: str
source:
  description: Where the MAC came from (V(mac), V(interface), V(physical) or V(first-ethernet)).
  returned: always
  type: str
source_interface:
  description: The interface the MAC was read from.
  returned: when the MAC was read from an interface
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.wglan.mesh.plugins.module_utils.shells import address as shell


def main():
    module = AnsibleModule(argument_spec=shell.ARGUMENTS, mutually_exclusive=shell.MUTUALLY_EXCLUSIVE,
                           supports_check_mode=True)
    module.exit_json(**shell.run(module))


if __name__ == '__main__':
    main()
