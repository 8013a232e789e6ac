# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: discovery_ca
short_description: The CA certificates of the discovery services whose certificate the discovery role made
version_added: 0.7.0
description:
  - The discovery role (M(wglan.mesh.wglan_discovery_tls)) gives each discovery host a private CA. A node
    must trust each such CA, and only those.
  - For each host of the list that uses TLS (C(wglan_discovery_tls), true by default) with the role's own
    certificate (no C(wglan_discovery_tls_cert)), the CA certificate is taken from what the discovery role
    registered in this run (C(wglan_discovery_tls_result)), or else from O(read) (the results of an
    C(ansible.builtin.slurp) of its C(ca.pem)).
  - Returns C(pem), every CA found in one PEM bundle, and C(missing), the hosts whose CA was found nowhere.
positional: _input, hostvars, read
options:
  _input:
    description: The discovery hosts' inventory names.
    type: list
    elements: str
    required: true
  hostvars:
    description: Ansible's C(hostvars).
    type: dict
    required: true
  read:
    description: The registered result of a looped C(ansible.builtin.slurp) of the CA files, one item per host.
    type: dict
    default: {}
author:
  - wglan.mesh developers (@wglan-mesh)
'''

EXAMPLES = r'''
- name: The CA bundle of the inventory's discovery services
  ansible.builtin.debug:
    msg: "{{ (groups['wglan_discovery'] | wglan.mesh.discovery_ca(hostvars)).pem }}"
'''

RETURN = r'''
_value:
  description: C(pem) (str) and C(missing) (list of host names).
  type: dict
'''

import base64

from ansible_collections.wglan.mesh.plugins.module_utils.model.discovery_hosts import role_certificate


def _read(results, host):
    for item in (results or {}).get('results') or []:
        if item.get('item') == host and item.get('content'):
            try:
                return base64.b64decode(item['content']).decode('ascii')
            except (ValueError, TypeError, UnicodeDecodeError):
                return None
    return None


def discovery_ca(hosts, hostvars, read=None):
    pems, missing = [], []
    for host in hosts or []:
        facts = hostvars.get(host) or {}
        if not role_certificate(facts):
            continue
        registered = facts.get('wglan_discovery_tls_result') or {}
        pem = registered.get('ca_pem') if isinstance(registered, dict) else None
        pem = pem or _read(read, host)
        if pem and '-----BEGIN CERTIFICATE-----' in pem:
            if pem not in pems:
                pems.append(pem if pem.endswith('\n') else pem + '\n')
        else:
            missing.append(host)
    return dict(pem=''.join(pems), missing=missing)


class FilterModule(object):
    def filters(self):
        return {'discovery_ca': discovery_ca}
