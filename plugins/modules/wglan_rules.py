#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: wglan_rules
short_description: Ensure the nftables table, routing table and ip rules that send traffic into the mesh
version_added: 0.1.0
description:
  - Manages one nftables C(inet) table (O(table)), owned by wglan and always replaced in one
    transaction. Packets to any of O(targets) get O(route_mark); an ip rule (IPv4 and IPv6,
    priority O(rule_priority)) sends that mark to routing table O(route_table), which holds
    default routes (C(0.0.0.0/0) and C(::/0)) through O(interface).
  - WireGuard's own packets carry O(wg_mark) (the interface's fwmark) and are left alone, so the
    tunnel never routes into itself.
  - Replies leave the way the request came. A connection that arrives from outside O(interface) is
    marked in conntrack (O(wg_mark) in its conntrack mark, under O(mark_mask)), and its replies carry
    O(wg_mark), so they take the main table even when the other end is a target. A peer that reaches
    a service on this node over the underlay (a discovery service or API server on a mesh member) is
    answered there, also while its addresses are routed through a relay or before the two handshake.
  - IPv6 neighbour discovery this node sends (solicitations, advertisements, redirects) is never
    routed into the tunnel, so neighbours on an IPv6 underlay are found even when their addresses are
    targets.
  - Marks are matched and set under O(mark_mask) only. Mark bits outside the mask belong to
    others (CNIs such as Cilium and Calico, kube-proxy) and are kept as they are.
  - TCP MSS is clamped on packets leaving O(interface) to O(mtu) - 40 (IPv4) and O(mtu) - 60 (IPv6).
  - V(absent) removes exactly this table, these rules and the default routes via O(interface) in
    O(route_table), and the relay table the watcher may have made (the netdev table named after
    O(table) with C(_relay) appended); nothing else.
options:
  interface:
    description: The WireGuard interface. Must exist and be up for V(present).
    type: str
    default: wglan0
  targets:
    description:
      - Prefixes whose traffic goes through the mesh (normally every peer's allowed IPs).
      - When omitted, the target sets keep what they hold (the watcher service owns them; it routes
        the peers that are up), and a new table starts with empty sets.
    type: list
    elements: str
  state:
    description: Whether the rules should exist.
    type: str
    choices: [present, absent]
    default: present
  table:
    description: Name of the nftables table.
    type: str
    default: wglan
  route_table:
    description: Routing table number for marked packets.
    type: int
    default: 180
  rule_priority:
    description: Priority of the ip rules.
    type: int
    default: 32500
  wg_mark:
    description: Mark on WireGuard's own packets; equals the interface's fwmark.
    type: int
    default: 32
  route_mark:
    description: Mark for packets to be routed into the mesh.
    type: int
    default: 64
  mark_mask:
    description: The mark bits wglan owns. O(wg_mark) and O(route_mark) must lie inside it.
    type: int
    default: 96
  mtu:
    description: MTU of the interface, for MSS clamping.
    type: int
    default: 1420
attributes:
  check_mode:
    description: Reports what would change; changes nothing.
    support: full
  diff_mode:
    description: Shows the target sets and routing changes.
    support: full
requirements:
  - nftables (C(nft) 0.9.3 or newer)
  - pyroute2 (Debian package python3-pyroute2)
seealso:
  - module: wglan.mesh.wglan_peers
  - module: wglan.mesh.wglan_firewall
author:
  - wglan.mesh developers (@wglan-mesh)
'''

EXAMPLES = r'''
- name: Route two peers' addresses through the mesh
  wglan.mesh.wglan_rules:
    targets:
      - 200:1001::5054:ff:fe00:1/128
      - 203.0.113.10/32
      - 10.244.1.0/24

- name: Remove the rules
  wglan.mesh.wglan_rules:
    state: absent
'''

RETURN = r'''
targets4:
  description: IPv4 prefixes in the target set (merged).
  returned: when state is present
  type: list
  elements: str
targets6:
  description: IPv6 prefixes in the target set (merged).
  returned: when state is present
  type: list
  elements: str
nftables_changed:
  description: Whether the nftables table was (or would be) replaced or removed.
  returned: always
  type: bool
routing_changes:
  description: Routes and rules added or removed.
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.wglan.mesh.plugins.module_utils.shells import rules as shell


def main():
    module = AnsibleModule(argument_spec=shell.ARGUMENTS, supports_check_mode=True)
    module.exit_json(**shell.run(module))


if __name__ == '__main__':
    main()
