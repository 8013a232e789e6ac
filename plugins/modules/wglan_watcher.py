#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: wglan_watcher
short_description: The wglan watcher service and its options
version_added: "0.5.0"
description:
  - Checks the options of the watcher service (C(wglan-watcher)) at play time and writes them to
    O(path), which the watcher reads (and validates again with the same code) at its next reconcile.
    A bad value fails the task with a message naming it, so the service never restart-loops on it.
  - With O(service=true) (the default) it also installs the watcher and keeps it running, in the same call -
    its program (C(/usr/local/lib/wglan/wglan-library.zip), this collection's library, taken from the module
    itself, as Ansible ships the watcher's code with it), the C(wglan) command (C(/usr/local/sbin/wglan)) and
    the systemd unit (C(wglan-watcher.service)), enabled and started; restarted when its program or unit changed.
  - The node role calls it (through M(wglan.mesh.wglan_node)); options not given take the watcher's defaults
    (the same ones the watcher uses).
  - Writes only what differs; every file is replaced atomically.
options:
  mesh:
    description:
      - The mesh this watcher is of, when the host is in several (empty - the default mesh). A named mesh's
        watcher is the unit C(wglan-watcher@<mesh>.service), and O(path), O(settings_path), O(status_path),
        O(rotate_request) and O(table) default to that mesh's (C(/etc/wglan/<mesh>/watcher.json),
        C(/etc/wglan/<mesh>/settings.json), C(/run/wglan/<mesh>/status.json), C(/run/wglan/<mesh>/rotate-key),
        C(wglan_<mesh>)).
      - The program and the C(wglan) command are shared by every mesh's watcher; V(absent) removes them with
        the last watcher.
    type: str
    default: ''
  path:
    description: The watcher's options file. Default C(/etc/wglan/watcher.json) (see O(mesh)).
    type: path
  state:
    description: V(absent) stops and disables the service and removes its files and O(path).
    type: str
    choices: [present, absent]
    default: present
  service:
    description:
      - Also install the watcher's program, command and unit, and keep the unit enabled and running.
      - V(false) writes the options only.
    type: bool
    default: true
  settings_path:
    description:
      - The settings the watcher reads (those M(wglan.mesh.wglan_peers) saves with O(wglan.mesh.wglan_peers#module:save_settings=true)).
      - Default C(/etc/wglan/settings.json) (see O(mesh)).
    type: path
  resync:
    description: Seconds between safety-net reconciles (the sources are watched as well). Default V(60).
    type: float
  sweep_interval:
    description: Seconds on one endpoint candidate of a peer that is down before the next. Default V(6).
    type: float
  publish_every:
    description: Re-publish this node's record at least this often, in seconds (TTL refresh). Default V(600).
    type: float
  address_check:
    description: Seconds between looks at the host's addresses. Default V(2).
    type: float
  key_overlap:
    description:
      - Key rotation, the seconds between publishing the next key and switching to it (every peer stands the
        next key by meanwhile, and switches at that time too). Default V(30).
    type: float
  key_lifetime:
    description:
      - Key rotation, on a schedule. Rotate the key when its file is older than this many seconds (V(0), the default, only
        when asked with C(wglan rotate-key)). A number, or one with C(s), C(m), C(h) or C(d) (V(90d)). At least
        twice I(key_overlap).
      - Needs a live source (the discovery service or Kubernetes), which tells the peers the next key.
    type: str
  rotate_request:
    description: The file C(wglan rotate-key) writes to ask for a rotation. Default C(/run/wglan/rotate-key).
    type: path
  force_routing:
    description: Route every peer's addresses, up or not. Default V(false).
    type: bool
  relay:
    description: Offer to relay for peers that cannot reach each other. Default V(false).
    type: bool
  relay_ipv6:
    description: No longer used (a relay forwards without the host's forwarding switches). Default V(false).
    type: bool
  refresh_node_ips:
    description: Publish the host's addresses as they are now. Default V(true).
    type: bool
  manage_rules:
    description: Keep the nftables table and the policy routing current. Default V(true).
    type: bool
  host_firewall:
    description: Keep the WireGuard port open in the host's own firewall chains. Default V(false).
    type: bool
  firewall_udp_ports:
    description: The UDP ports or ranges (V(51820-51851)) the firewall role opened. Default, the listen port.
    type: list
    elements: str
  endpoint_exclude:
    description: Prefixes whose addresses are not published as this node's. Default none.
    type: list
    elements: str
  metrics_port:
    description: Serve Prometheus metrics on this port (V(0), the default, serves none).
    type: int
  metrics_address:
    description: The address the metrics are served on. Default V(127.0.0.1).
    type: str
  table:
    description: The nftables table wglan owns. Default V(wglan).
    type: str
  route_mark:
    description: The packet mark that sends a packet into the tunnel. Default V(0x40).
    type: int
  mark_mask:
    description: The bits of the mark wglan reads and writes. Default V(0x60).
    type: int
  route_table:
    description: The routing table of the marked packets. Default V(180).
    type: int
  rule_priority:
    description: The priority of the ip rule. Default V(32500).
    type: int
  status_path:
    description: Where the watcher writes its status. Default C(/run/wglan/status.json).
    type: path
attributes:
  check_mode:
    description: Reports whether the file would change.
    support: full
  diff_mode:
    description: Shows the options before and after.
    support: full
seealso:
  - module: wglan.mesh.wglan_peers
  - module: wglan.mesh.wglan_info
  - module: wglan.mesh.wglan_node
author:
  - wglan.mesh developers (@wglan-mesh)
'''

EXAMPLES = r'''
- name: Sweep faster, and serve metrics to a Prometheus on the host
  wglan.mesh.wglan_watcher:
    sweep_interval: 4
    metrics_port: 9586

- name: Rotate the key every 90 days, the peers standing the next key by for a minute
  wglan.mesh.wglan_watcher:
    key_lifetime: 90d
    key_overlap: 60

- name: Relay for peers that cannot reach each other, and keep the port open in the host's firewall
  wglan.mesh.wglan_watcher:
    relay: true
    host_firewall: true
    firewall_udp_ports: ['51820-51851']

- name: On a host where routing table 180 and rule priority 32500 are taken, use others
  wglan.mesh.wglan_watcher:
    route_table: 1180
    rule_priority: 32400

- name: Never publish the addresses of the container bridges as this node's
  wglan.mesh.wglan_watcher:
    endpoint_exclude: ['172.17.0.0/16', 'fd00:dead::/64']

- name: The watcher of a second mesh on the same host (unit wglan-watcher@storage.service)
  wglan.mesh.wglan_watcher:
    mesh: storage

- name: Write the options only (the service is managed some other way)
  wglan.mesh.wglan_watcher:
    service: false
    resync: 120

- name: Stop and remove the watcher
  wglan.mesh.wglan_watcher:
    state: absent
'''

RETURN = r'''
options:
  description: The options written (every option, the defaults included).
  returned: when state is present
  type: dict
  sample: {"resync": 60, "sweep_interval": 6, "key_overlap": 30, "key_lifetime": 0, "relay": false,
           "metrics_port": 0, "table": "wglan", "route_mark": 64, "mark_mask": 96, "route_table": 180}
service:
  description: What changed of the service, among V(library), V(command), V(unit), V(enabled), V(started), V(restarted).
  returned: when state is present
  type: list
  elements: str
  sample: [library, unit, restarted]
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.wglan.mesh.plugins.module_utils.shells import watcher as shell


def main():
    module = AnsibleModule(argument_spec=shell.ARGUMENTS, supports_check_mode=True)
    module.exit_json(**shell.run(module))


if __name__ == '__main__':
    main()
