# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The watcher's rules: the nftables table that marks traffic to the peers that are up, the policy
routing that sends it into the tunnel, and the holes in the host's own firewall."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.wglan.mesh.plugins.module_utils.daemon.common import log
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.host import firewall, nftables, policy_routing
from ansible_collections.wglan.mesh.plugins.module_utils.model import nft_objects


def apply_targets(config, routed, options, allow=None):
    """The table with routed as its targets (and the segment filter letting in allow, when not None), and
    the routing rule. Returns whether either changed."""
    if not options['manage_rules']:
        return False
    try:
        rules = nft_objects.RulesConfig(config.ifname, routed, options['table'], config.fwmark,
                                        options['route_mark'], options['mark_mask'], config.mtu, allow)
        changed, before, _after = nftables.ensure_table(rules, True, False)
        if changed and before is None:  # the table was gone: a flush takes the admin's holes too
            ensure_host_firewall(config, options)
        routing = policy_routing.ensure(config.ifname, table=options['route_table'],
                                        priority=options['rule_priority'], mark=options['route_mark'],
                                        mask=options['mark_mask'], present=True, check_mode=False)
    except WglanError as exc:
        log('rules not updated: %s' % exc)
        return False
    return bool(changed or routing)


def ensure_host_firewall(config, options):
    """The WireGuard port open in the admin's chains that drop by default (the role's wglan_firewall)."""
    if not options['host_firewall']:
        return
    # (no forwarding hole: a relay forwards at the link's ingress, before any firewall chain; one that
    # an older version made goes, as every rule of ours that is not wanted)
    holes = firewall.wanted_holes(config.ifname, options['firewall_udp_ports'] or [config.listen_port])
    try:
        changed, added = firewall.ensure_holes(config.ifname, holes, own_table=options['table'])[:2]
    except WglanError as exc:
        log('host firewall not updated: %s' % exc)
        return
    if changed:
        log('host firewall: put back %s' % ', '.join(added))
