# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: discovery_urls
short_description: The URL of each discovery service host
version_added: 0.7.0
description:
  - For each host of the list (the node role gives group C(wglan_discovery)), the URL its nodes use
    to reach it. The scheme is C(https), or C(http) when the host sets C(wglan_discovery_tls) to false.
    The address is its C(ansible_host) (an IPv6 address in brackets), or else its inventory name. The
    port is its C(wglan_discovery_port), by default 8443.
positional: _input, hostvars
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
author:
  - wglan.mesh developers (@wglan-mesh)
'''

EXAMPLES = r'''
- name: Every discovery service of the inventory
  ansible.builtin.debug:
    msg: "{{ groups['wglan_discovery'] | wglan.mesh.discovery_urls(hostvars) }}"
'''

RETURN = r'''
_value:
  description: One URL per host, in the order of the list.
  type: list
  elements: str
'''

from ansible_collections.wglan.mesh.plugins.module_utils.model.discovery_hosts import tls as uses_tls


def discovery_urls(hosts, hostvars):
    urls = []
    for host in hosts or []:
        facts = hostvars.get(host) or {}
        address = str(facts.get('ansible_host') or host)
        if ':' in address and not address.startswith('['):
            address = '[%s]' % address
        url = '%s://%s:%s' % ('https' if uses_tls(facts) else 'http', address, facts.get('wglan_discovery_port', 8443))
        if url not in urls:
            urls.append(url)
    return urls


class FilterModule(object):
    def filters(self):
        return {'discovery_urls': discovery_urls}
