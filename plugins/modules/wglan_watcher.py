#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: wglan_watcher
short_description: Validate and write the options of the wglan watcher
version_added: "0.5.0"
description:
  - Checks the options of the watcher service (C(wglan-watcher)) at play time and writes them to
    O(path), which the watcher reads (and validates again with the same code) at its next reconcile.
    A bad value fails the task with a message naming it, so the service never restart-loops on it.
  - The node role calls it; options not given take the watcher's defaults (the same ones the watcher uses).
  - Writes only when the content differs; the file is replaced atomically.
options:
  path:
    description: The watcher's options file.
    type: path
    default: /etc/wglan/watcher.json
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
author:
  - wglan.mesh developers (@wglan-mesh)
'''

EXAMPLES = r'''
- name: Sweep faster, and serve metrics
  wglan.mesh.wglan_watcher:
    sweep_interval: 4
    metrics_port: 9586
'''

RETURN = r'''
options:
  description: The options written (every option, the defaults included).
  returned: always
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.host import state_files
from ansible_collections.wglan.mesh.plugins.module_utils.model import settings, watcher_options
from ansible_collections.wglan.mesh.plugins.module_utils.module_support import run_or_fail

KINDS = dict((name, 'float') for name in watcher_options.SECONDS)
KINDS.update((name, 'bool') for name in watcher_options.FLAGS)
KINDS.update((name, 'int') for name in watcher_options.INTEGERS)
KINDS.update(firewall_udp_ports='list', endpoint_exclude='list', metrics_address='str', table='str',
             status_path='path')


def options_given(params):
    return dict((name, params[name]) for name in watcher_options.DEFAULTS if params.get(name) is not None)


def main():
    spec = dict(path=dict(type='path', default=settings.WATCHER_CONFIG))
    for name, kind in KINDS.items():
        spec[name] = dict(type=kind, elements='str') if kind == 'list' else dict(type=kind)
    module = AnsibleModule(argument_spec=spec, supports_check_mode=True)
    options = run_or_fail(module, watcher_options.validate, options_given(module.params))
    path = module.params['path']
    before = None
    if module._diff:
        try:
            before = state_files.read_json(path)
        except WglanError:  # an unreadable file is replaced; the diff shows it as empty
            before = None
    changed = run_or_fail(module, state_files.write_json_if_changed, path, options, 0o644, module.check_mode)
    result = dict(changed=changed, options=options)
    if module._diff:
        result['diff'] = dict(before=before or {}, after=options)
    module.exit_json(**result)


if __name__ == '__main__':
    main()
