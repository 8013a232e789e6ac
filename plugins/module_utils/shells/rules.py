# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""wglan_rules: the nftables table, the routing table and the rule into it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.wglan.mesh.plugins.module_utils.host import nftables, policy_routing
from ansible_collections.wglan.mesh.plugins.module_utils.host.links import validate_ifname
from ansible_collections.wglan.mesh.plugins.module_utils.model import nft_objects
from ansible_collections.wglan.mesh.plugins.module_utils.module_support import require_libs, run_or_fail

ARGUMENTS = dict(
    interface=dict(type='str', default='wglan0'),
    targets=dict(type='list', elements='str'),
    state=dict(type='str', choices=['present', 'absent'], default='present'),
    table=dict(type='str', default=nft_objects.DEFAULT_TABLE),
    route_table=dict(type='int', default=policy_routing.DEFAULT_TABLE),
    rule_priority=dict(type='int', default=policy_routing.DEFAULT_PRIORITY),
    wg_mark=dict(type='int', default=nft_objects.DEFAULT_WG_MARK),
    route_mark=dict(type='int', default=nft_objects.DEFAULT_ROUTE_MARK),
    mark_mask=dict(type='int', default=nft_objects.DEFAULT_MARK_MASK),
    mtu=dict(type='int', default=1420),
)


def ensure(module):
    p = module.params
    present = p['state'] == 'present'
    validate_ifname(p['interface'])
    config = nft_objects.RulesConfig(p['interface'], p['targets'], p['table'], p['wg_mark'], p['route_mark'],
                                     p['mark_mask'], p['mtu'])
    routing_args = dict(table=p['route_table'], priority=p['rule_priority'], mark=p['route_mark'],
                        mask=p['mark_mask'])
    if present:
        # Fill the table first, then the rules that lead into it: no moment where
        # marked traffic meets a rule into an empty table. Removal runs backwards.
        nft_changed, before, after = nftables.ensure_table(config, True, module.check_mode)
        routing = policy_routing.ensure(p['interface'], present=True, check_mode=module.check_mode, **routing_args)
    else:
        routing = policy_routing.ensure(p['interface'], present=False, check_mode=module.check_mode, **routing_args)
        nft_changed, before, after = nftables.ensure_table(config, False, module.check_mode)
        # the relay table the watcher made on a relay (nftables.ensure_relay_table) goes too
        if not module.check_mode:
            nft_changed = nftables.ensure_relay_table(p['interface'], [], False,
                                                      nft_objects.relay_table_name(config.table)) or nft_changed
    return nft_changed, before, after, routing


def run(module):
    require_libs(module, 'pyroute2')
    nft_changed, before, after, routing = run_or_fail(module, ensure, module)
    result = dict(changed=bool(nft_changed or routing), nftables_changed=nft_changed, routing_changes=routing)
    if after is not None:
        result.update(targets4=after['targets4'], targets6=after['targets6'])
    if module._diff:
        result['diff'] = dict(before={'nftables': before}, after={'nftables': after, 'routing_changes': routing})
    return result
