#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: wglan_discovery_tls
short_description: A private CA and a server certificate for the discovery service
version_added: 0.7.0
description:
  - Makes, in O(path), a private certificate authority (C(ca.key), C(ca.pem)) and the discovery service's
    certificate (C(server.key), C(server.pem)), signed by it, for every name and address in O(names).
    The keys are ECDSA P-256. Key files are mode 0600 and are never returned or logged.
  - The CA is made once, and again only when it is gone, unreadable or expired. The server certificate is made
    again when a name was added or removed, when it is not the CA's or not its key's, or when it expires
    within O(renew_days). A run with nothing due changes nothing.
  - The discovery role (P(wglan.mesh.discovery#role)) calls it. The node role gives each node the CA
    certificate (RV(ca_pem)), and nodes then check the service's certificate against it alone.
options:
  path:
    description: The directory of the four files.
    type: path
    default: /etc/wglan-discovery/tls
  names:
    description:
      - Host names and IP addresses the nodes use to reach the service (the host of each node's
        discovery URL). Each becomes a subject alternative name.
    type: list
    elements: str
    required: true
  days:
    description: Days a new server certificate is valid (never past the CA's end).
    type: int
    default: 825
  renew_days:
    description: Make the server certificate again when it runs out within this many days.
    type: int
    default: 60
  ca_days:
    description: Days a new CA is valid.
    type: int
    default: 3650
attributes:
  check_mode:
    description: Nothing is written; RV(ca_pem) is then the CA that would be made when there is none yet.
    support: full
  diff_mode:
    description: Reports no diff (the files are keys and certificates).
    support: none
  platform:
    description: Any POSIX host with Python and cryptography (the discovery service's host).
    support: full
    platforms: posix
requirements:
  - cryptography (python3-cryptography) on the host
seealso:
  - module: wglan.mesh.wglan_peers
  - module: wglan.mesh.wglan_ca
author:
  - wglan.mesh developers (@wglan-mesh)
'''

EXAMPLES = r'''
- name: Certificate for the discovery service
  wglan.mesh.wglan_discovery_tls:
    names: [discovery.example.net, 203.0.113.10]
  register: tls

- name: The CA the nodes check the service with (a certificate, no secret)
  ansible.builtin.debug:
    var: tls.ca_pem

- name: A certificate for a year, made again a month before it runs out, kept elsewhere
  wglan.mesh.wglan_discovery_tls:
    path: /srv/wglan-discovery/tls
    names: [discovery.example.net]
    days: 365
    renew_days: 30
'''

RETURN = r'''
ca_pem:
  description: The CA certificate (public), for the nodes.
  returned: always
  type: str
made:
  description: What was made, and why (for example C(server certificate (names changed))).
  returned: always
  type: list
  elements: str
names:
  description: The names and addresses the server certificate is for.
  returned: always
  type: list
  elements: str
not_after:
  description: When the server certificate expires (UTC, ISO 8601).
  returned: always
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.host import discovery_tls
from ansible_collections.wglan.mesh.plugins.module_utils.module_support import require_libs


def main():
    module = AnsibleModule(argument_spec=dict(
        path=dict(type='path', default='/etc/wglan-discovery/tls'),
        names=dict(type='list', elements='str', required=True),
        days=dict(type='int', default=825),
        renew_days=dict(type='int', default=60),
        ca_days=dict(type='int', default=3650),
    ), supports_check_mode=True)
    require_libs(module, 'cryptography')
    params = module.params
    for name in ('days', 'renew_days', 'ca_days'):
        if not 1 <= params[name] <= 36500:
            module.fail_json(msg='%s must be 1-36500 days' % name)
    if params['renew_days'] >= params['days']:
        module.fail_json(msg='renew_days must be fewer than days')
    try:
        result = discovery_tls.ensure(params['path'], params['names'], params['days'], params['renew_days'],
                                      params['ca_days'], module.check_mode)
    except WglanError as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == '__main__':
    main()
