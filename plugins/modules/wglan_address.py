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

from ansible_collections.wglan.mesh.plugins.module_utils.model import address as addr_address
from ansible_collections.wglan.mesh.plugins.module_utils.host import identity
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.module_support import require_libs, run_or_fail


def compute(params):
    result = {}
    if params['mac']:
        mac = params['mac']
        result['source'] = 'mac'
    elif params['source_interface']:
        mac = identity.mac_of_interface(params['source_interface'])
        result.update(source='interface', source_interface=params['source_interface'])
    else:
        exclude = (params['assign_to'],) if params['assign_to'] else ()
        link, how = addr_address.choose_identity_link(identity.list_links(), exclude=exclude)
        mac = link['mac']
        result.update(source=how, source_interface=link['name'])
    address = addr_address.node_address(params['prefix'], mac)
    result.update(address=str(address), cidr=addr_address.node_cidr(params['prefix'], mac), mac=mac.lower())
    return result


def assign(module, result):
    from ansible_collections.wglan.mesh.plugins.module_utils.host.links import Links, parse_interface_address
    iface = parse_interface_address(result['cidr'])
    with Links() as links:
        link = links.get(module.params['assign_to'])
        if link is None:
            raise WglanError('interface %s does not exist' % module.params['assign_to'])
        present = iface in link.addresses
        if module._diff:
            before = sorted(str(a) for a in link.addresses)
            after = before if present else sorted(before + [str(iface)])
            result['diff'] = dict(before={'addresses': before}, after={'addresses': after})
        if not present and not module.check_mode:
            links.add_address(link.index, iface)
    return not present


def main():
    module = AnsibleModule(
        argument_spec=dict(
            prefix=dict(type='str', default=addr_address.DEFAULT_PREFIX),
            mac=dict(type='str'),
            source_interface=dict(type='str'),
            assign_to=dict(type='str'),
        ),
        mutually_exclusive=[('mac', 'source_interface')],
        supports_check_mode=True,
    )
    result = run_or_fail(module, compute, module.params)
    changed = False
    if module.params['assign_to']:
        require_libs(module, 'pyroute2')
        changed = run_or_fail(module, assign, module, result)
    module.exit_json(changed=changed, **result)


if __name__ == '__main__':
    main()
