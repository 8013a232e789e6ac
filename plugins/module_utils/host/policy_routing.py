# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The routing table and ip rules that carry marked packets into the tunnel."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import socket

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.host.links import Links, NetlinkError

from ansible_collections.wglan.mesh.plugins.module_utils.model.settings import ROUTE_TABLE as DEFAULT_TABLE, RULE_PRIORITY as DEFAULT_PRIORITY  # noqa: E402
FAMILIES = ((socket.AF_INET, 'ipv4', '0.0.0.0/0'), (socket.AF_INET6, 'ipv6', '::/0'))


def _rule_matches(msg, table, priority, mark, mask):
    attr = msg.get_attr
    rule_table = attr('FRA_TABLE') or msg['table']
    return (rule_table == table and attr('FRA_PRIORITY') == priority
            and attr('FRA_FWMARK') == mark and (attr('FRA_FWMASK') or 0xFFFFFFFF) == mask)


def _default_routes(links, family, table):
    """Default routes in table, as a list of output interface indexes."""
    out = []
    for msg in links.ipr.get_routes(family=family, table=table):
        if msg['dst_len'] == 0 and (msg.get_attr('RTA_TABLE') or msg['table']) == table:
            out.append(msg.get_attr('RTA_OIF'))
    return out


class RoutingState:
    def __init__(self):
        self.rules = {}
        self.routes = {}


def read_state(links, interface_index, table, priority, mark, mask):
    state = RoutingState()
    for family, name, _dst in FAMILIES:
        state.rules[name] = any(_rule_matches(m, table, priority, mark, mask)
                                for m in links.ipr.get_rules(family=family))
        oifs = _default_routes(links, family, table)
        state.routes[name] = interface_index is not None and interface_index in oifs
    return state


def ensure(interface, table=DEFAULT_TABLE, priority=DEFAULT_PRIORITY, mark=0x40, mask=0x60,
           present=True, check_mode=False):
    """Make the rules and default routes present or absent. Returns a list of changes made."""
    if not 1 <= table <= 0xFFFFFFFF or table in (253, 254, 255):
        raise WglanError('route_table must be a free table number (not 0, 253, 254 or 255)')
    if not 1 <= priority <= 32765:
        raise WglanError('rule_priority must be between 1 and 32765 (below the main table)')
    with Links() as links:
        index = links.index_of(interface)
        if present:
            link = links.get(interface, with_addresses=False) if index is not None else None
            # In check mode the interface may be one that wglan_peers would create
            # in the same run: report the rules it would get instead of failing.
            if link is None and not check_mode:
                raise WglanError('interface %s does not exist: create it (wglan_peers) before its rules' % interface)
            if link is not None and not link.up and not check_mode:
                raise WglanError('interface %s is down: routes through it cannot be added' % interface)
        state = read_state(links, index, table, priority, mark, mask)
        # Plan everything first. Routes go in before the rules that point at them
        # and come out after, so a failure never leaves a rule into an empty table.
        route_steps, rule_steps = [], []
        for family, name, dst in FAMILIES:
            if present != state.routes[name]:
                verb = 'add' if present else 'delete'
                route_steps.append(('%s %s default route dev %s table %d' % (verb, name, interface, table),
                                    _route, ('replace' if present else 'del', family, dst, index, table)))
            if present != state.rules[name]:
                verb = 'add' if present else 'delete'
                rule_steps.append(('%s %s rule fwmark 0x%x/0x%x lookup %d priority %d'
                                   % (verb, name, mark, mask, table, priority),
                                   _rule, ('add' if present else 'del', family, table, priority, mark, mask)))
        steps = route_steps + rule_steps if present else rule_steps + route_steps
        if not check_mode:
            for _text, func, args in steps:
                func(links, *args)
    return [step[0] for step in steps]


def _rule(links, action, family, table, priority, mark, mask):
    try:
        links.ipr.rule(action, family=family, table=table, priority=priority, fwmark=mark, fwmask=mask)
    except NetlinkError as exc:
        raise WglanError('cannot %s ip rule: %s' % (action, exc))


def _route(links, action, family, dst, index, table):
    try:
        links.ipr.route(action, family=family, dst=dst, oif=index, table=table)
    except NetlinkError as exc:
        raise WglanError('cannot %s route %s in table %d: %s' % (action, dst, table, exc))


def describe(interface, table=DEFAULT_TABLE, priority=DEFAULT_PRIORITY, mark=0x40, mask=0x60):
    with Links() as links:
        index = links.index_of(interface)
        state = read_state(links, index, table, priority, mark, mask)
    return {'rules': state.rules, 'routes': state.routes}
