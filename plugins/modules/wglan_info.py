#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: wglan_info
short_description: Read the state of the WireGuard mesh interface
version_added: 0.1.0
description:
  - Read-only. Reports the interface, its public key and listen port, and per peer the endpoint,
    allowed IPs, latest handshake, transfer counters and whether the peer is up.
  - A peer is V(up) when its latest handshake is at most 275 seconds old (the point where KubeSpan
    marks a peer down; WireGuard re-keys every 120 seconds while traffic flows), V(down) when older,
    and V(unknown) when there has been no handshake.
  - Never returns the private key or preshared keys (only whether a preshared key is set).
options:
  interface:
    description: The WireGuard interface.
    type: str
    default: wglan0
  wait:
    description:
      - Wait up to this many seconds for every peer to be V(up) before reporting (0 does not wait).
        Never fails for peers that stay down; RV(peers_up) and RV(waited) say how it went.
      - A peer the watcher reaches through a relay that is up counts as settled (it has no direct
        handshake to wait for), so a run does not wait the whole time for it.
    type: int
    default: 0
  relays_path:
    description: Where the watcher keeps the relays it uses (see M(wglan.mesh.wglan_peers)).
    type: path
    default: /run/wglan/paths.json
  expect_reached:
    description:
      - The peers that must be reached (up, or through a relay that is up), each by its name in the watcher's
        status or by its public key, as M(wglan.mesh.wglan_node) returns them in RV(wglan.mesh.wglan_node#module:reached_before).
        Waits up to O(wait) seconds until each of them that is still a peer of the interface is reached, then
        fails naming those that are not (RV(not_reached)). A peer that left the mesh is not waited for.
      - The node role gives the peers a node reached when its run began, so that no run ends with a peer lost
        because of the run.
    type: list
    elements: str
  watcher_status:
    description:
      - The status file of the watcher service (C(wglan-watcher)). When it exists, RV(watcher) reports
        the watcher's view (per peer its state and path, direct or through which relay).
    type: path
    default: /run/wglan/status.json
attributes:
  check_mode:
    description: Read-only; runs the same in check mode.
    support: full
  diff_mode:
    description: Nothing changes, so there is no diff.
    support: none
requirements:
  - pyroute2 (Debian package python3-pyroute2)
seealso:
  - module: wglan.mesh.wglan_graph
  - module: wglan.mesh.wglan_peers
author:
  - wglan.mesh developers (@wglan-mesh)
'''

EXAMPLES = r'''
- name: Note whom the node reaches before a change
  wglan.mesh.wglan_node:
    mesh: "{{ mesh_options }}"
  register: node_before
- name: After the change, wait up to 60 s until it reaches them again (fails naming those it does not)
  wglan.mesh.wglan_info:
    expect_reached: "{{ node_before.reached_before }}"
    wait: 60
- name: Read the mesh state
  wglan.mesh.wglan_info:
  register: mesh

- name: Show peers that are not up
  ansible.builtin.debug:
    msg: "{{ mesh.peers | rejectattr('state', 'equalto', 'up') | map(attribute='public_key') }}"
'''

RETURN = r'''
exists:
  description: Whether the interface exists.
  returned: always
  type: bool
interface:
  description: The interface name.
  returned: always
  type: str
backend:
  description: V(kernel) or V(userspace).
  returned: when the interface exists
  type: str
public_key:
  description: The interface's public key.
  returned: when the interface exists
  type: str
listen_port:
  description: UDP listen port.
  returned: when the interface exists
  type: int
fwmark:
  description: Firewall mark of WireGuard's own packets.
  returned: when the interface exists
  type: int
mtu:
  description: Interface MTU.
  returned: when the interface exists
  type: int
up:
  description: Whether the link is up.
  returned: when the interface exists
  type: bool
addresses:
  description: Interface addresses (without IPv6 link-local).
  returned: when the interface exists
  type: list
  elements: str
peers:
  description: One entry per peer, sorted by public key.
  returned: when the interface exists
  type: list
  elements: dict
  contains:
    public_key:
      description: The peer's public key.
      type: str
    endpoint:
      description: Current endpoint, or null.
      type: str
    allowed_ips:
      description: Allowed IPs.
      type: list
      elements: str
    latest_handshake:
      description: Unix time of the latest handshake (0 = never).
      type: int
    handshake_age:
      description: Seconds since the latest handshake, or null if never.
      type: int
    rx_bytes:
      description: Bytes received.
      type: int
    tx_bytes:
      description: Bytes sent.
      type: int
    persistent_keepalive:
      description: Keepalive interval in seconds (0 = off).
      type: int
    preshared_key:
      description: Whether a preshared key is set.
      type: bool
    state:
      description: V(up), V(down) or V(unknown).
      type: str
peers_up:
  description: Number of peers that are up.
  returned: when the interface exists
  type: int
peers_relayed:
  description: Number of peers the watcher reaches through a relay that is up (not counted in RV(peers_up)).
  returned: when the interface exists
  type: int
waited:
  description: Seconds spent waiting for handshakes.
  returned: always
  type: float
not_reached:
  description: Of O(expect_reached), the peers still not reached when the wait ended (the module fails when any is).
  returned: when O(expect_reached) is given
  type: list
  elements: str
watcher:
  description:
    - The watcher's last status, null when there is none (no watcher, or it has not run yet).
      C(age) is the seconds since the watcher wrote it (it does so every second while something
      changes and at least on every reconcile); C(peers) lists per peer C(name), C(public_key),
      C(address), C(endpoint), C(state), C(handshake_age), C(rx_bytes), C(tx_bytes), C(via) (the relay's
      name, or null) and C(path) (V(direct) or V(via <relay>)).
  returned: always
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.wglan.mesh.plugins.module_utils.shells import info as shell


def main():
    module = AnsibleModule(argument_spec=shell.ARGUMENTS, supports_check_mode=True)
    module.exit_json(**shell.run(module))


if __name__ == '__main__':
    main()
