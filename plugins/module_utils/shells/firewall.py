# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""wglan_firewall: the mesh's ports in the host's nftables chains that drop by default."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.wglan.mesh.plugins.module_utils.host import firewall
from ansible_collections.wglan.mesh.plugins.module_utils.host.links import validate_ifname
from ansible_collections.wglan.mesh.plugins.module_utils.module_support import run_or_fail

ARGUMENTS = dict(
    owner=dict(type='str', default='wglan0'),
    udp_ports=dict(type='list', elements='raw', default=[]),
    tcp_ports=dict(type='list', elements='int', default=[]),
    forward_interface=dict(type='str'),
    state=dict(type='str', choices=['present', 'absent'], default='present'),
    table=dict(type='str', default='wglan'),
)


def ensure(module):
    p = module.params
    if p['forward_interface']:
        validate_ifname(p['forward_interface'])
    holes = [] if p['state'] == 'absent' else firewall.wanted_holes(
        p['owner'], p['udp_ports'], p['tcp_ports'], p['forward_interface'])
    return firewall.ensure_holes(p['owner'], holes, module.check_mode, p['table'])


def run(module):
    if not module.params['owner'] or any(c.isspace() for c in module.params['owner']):
        module.fail_json(msg='owner must be one word (it names the rules in their comment)')
    changed, added, removed, skipped = run_or_fail(module, ensure, module)
    result = dict(changed=changed, manager=firewall.active_manager(), added=added, removed=removed,
                  skipped=['%s (%s)' % item for item in skipped])
    if module._diff:
        result['diff'] = dict(before={'removed': removed}, after={'added': added})
    return result
