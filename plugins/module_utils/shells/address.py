# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""wglan_address: the node's mesh address (from a MAC), optionally on an interface."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.host import identity
from ansible_collections.wglan.mesh.plugins.module_utils.model import address as addr_address
from ansible_collections.wglan.mesh.plugins.module_utils.module_support import require_libs, run_or_fail

ARGUMENTS = dict(
    prefix=dict(type='str', default=addr_address.DEFAULT_PREFIX),
    mac=dict(type='str'),
    source_interface=dict(type='str'),
    assign_to=dict(type='str'),
)
MUTUALLY_EXCLUSIVE = [('mac', 'source_interface')]


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


def run(module):
    result = run_or_fail(module, compute, module.params)
    changed = False
    if module.params['assign_to']:
        require_libs(module, 'pyroute2')
        changed = run_or_fail(module, assign, module, result)
    return dict(result, changed=changed)
