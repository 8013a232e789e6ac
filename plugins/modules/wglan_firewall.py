#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: wglan_firewall
short_description: Open the mesh's ports in the host's own nftables firewall, and tell which firewall runs
version_added: 0.2.0
description:
  - An accept rule in wglan's own table cannot override a drop in another base chain. So for every
    nftables base chain on the C(input) hook whose policy is C(drop) (the admin's own tables), this
    inserts one accept rule per port at the top of that chain; with O(forward_interface), also one
    rule in every C(forward) chain whose policy drops, for traffic that arrives on that interface and
    leaves on it again (a relay).
  - Each rule carries the comment C(wglan.mesh:<owner> <what>). Only rules with that comment are ever
    added or removed; the admin's other rules are never flushed, moved or rewritten.
  - Tables that iptables-nft owns (ufw, Docker, plain iptables) are left alone and reported in
    RV(skipped). Hosts where ufw or firewalld runs the firewall are opened with their own modules
    (C(community.general.ufw), C(ansible.posix.firewalld)); RV(manager) says which one is active, so a
    role can call it.
  - Rules added this way live in the running ruleset. An admin's C(nft flush ruleset), or a restart of
    C(nftables.service) (Debian's C(/etc/nftables.conf) starts with C(flush ruleset)), removes them;
    the watcher service puts them back, and the next run of this module reports a change and repairs it.
    To keep them across a reboot without the watcher, add the same rules to C(/etc/nftables.conf).
options:
  owner:
    description: Whose rules these are, in the comment (the WireGuard interface, or C(discovery)).
    type: str
    default: wglan0
  udp_ports:
    description:
      - UDP ports to accept on input (the WireGuard listen port). Each a port number or a range of
        ports, V(51820-51851) (the ports a node may move to behind a NAT it shares with other members).
    type: list
    elements: raw
    default: []
  tcp_ports:
    description: TCP ports to accept on input (the discovery service).
    type: list
    elements: int
    default: []
  forward_interface:
    description: Accept forwarding from this interface back out of it (this node relays for the mesh).
    type: str
  state:
    description: V(absent) removes every rule of O(owner).
    type: str
    choices: [present, absent]
    default: present
  table:
    description: wglan's own nftables table, never treated as the admin's.
    type: str
    default: wglan
attributes:
  check_mode:
    description: Reports the rules it would add and remove; changes nothing.
    support: full
  diff_mode:
    description: Shows the rules removed (before) and added (after).
    support: full
  platform:
    description: Linux hosts with nftables.
    support: full
    platforms: posix
requirements:
  - nftables (C(nft))
seealso:
  - module: wglan.mesh.wglan_rules
  - module: wglan.mesh.wglan_watcher
author:
  - wglan.mesh developers (@wglan-mesh)
'''

EXAMPLES = r'''
- name: Let WireGuard in through the host's firewall
  wglan.mesh.wglan_firewall:
    owner: wglan0
    udp_ports: [51820]
    forward_interface: wglan0
  register: fw

- name: Open the port in ufw instead, where ufw runs the firewall
  community.general.ufw:
    rule: allow
    port: "51820"
    proto: udp
  when: fw.manager == 'ufw'
'''

RETURN = r'''
manager:
  description: The firewall that runs this host, V(ufw), V(firewalld) or V(nftables) (plain nftables, or none).
  returned: always
  type: str
added:
  description: Rules added (or that would be), as C(family table chain) and comment.
  returned: always
  type: list
  elements: str
removed:
  description: Rules of O(owner) removed (or that would be), as C(family table chain) and comment.
  returned: always
  type: list
  elements: str
skipped:
  description: Chains with a drop policy left alone, with why.
  returned: always
  type: list
  elements: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.wglan.mesh.plugins.module_utils.shells import firewall as shell


def main():
    module = AnsibleModule(argument_spec=shell.ARGUMENTS, supports_check_mode=True)
    module.exit_json(**shell.run(module))


if __name__ == '__main__':
    main()
