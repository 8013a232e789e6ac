# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: stale_records
short_description: The hosts of a play that configured their peers with an older record of another
version_added: 0.6.0
description:
  - For each host in the input, compares the fingerprints of the records its mesh step used
    (C(records_used) of M(wglan.mesh.wglan_node) or M(wglan.mesh.wglan_peers)) with the fingerprint of the
    record each other host of the input published in this run (C(record_digest)), both read from a registered
    result. Returns the pairs that differ - a host that used no record, or an older one, of another.
  - The node role calls its peers once with the records kept from the last run and once more only when this
    is not empty (a new node, a changed address), so a run that has nothing to do is one call per host.
positional: _input, hostvars
options:
  _input:
    description: Host names (usually C(ansible_play_hosts)).
    type: list
    elements: str
    required: true
  hostvars:
    description: The C(hostvars) magic variable.
    type: dict
    required: true
  result:
    description: The name the results were registered under.
    type: str
    default: wglan_node
author:
  - wglan.mesh developers (@wglan-mesh)
'''

EXAMPLES = r'''
- name: Configure again with this run's records, where a host used an older one
  wglan.mesh.wglan_node:
    mesh: {}
  when: ansible_play_hosts | wglan.mesh.stale_records(hostvars) | length > 0
'''

RETURN = r'''
_value:
  description: Pairs C([host, member]) - C(host) used no record, or another one, of C(member).
  type: list
  elements: list
'''

from collections.abc import Mapping


def _result(hostvars, host, name):
    try:
        value = hostvars[host][name]
    except Exception:  # pylint: disable=broad-except
        return {}
    return value if isinstance(value, Mapping) else {}


def stale_records(hosts, hostvars, result='wglan_node'):
    published = {}
    for host in hosts:
        digest = _result(hostvars, host, result).get('record_digest')
        if digest:
            published[host] = digest
    stale = []
    for host in hosts:
        outcome = _result(hostvars, host, result)
        if 'records_used' not in outcome:
            continue  # this host did not configure its peers from records (failed, or no such step)
        used = outcome.get('records_used') or {}
        stale.extend([host, member] for member, digest in sorted(published.items())
                     if member != host and used.get(member) != digest)
    return stale


class FilterModule:
    def filters(self):
        return {'stale_records': stale_records}
