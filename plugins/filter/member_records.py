# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: member_records
short_description: The mesh record of each member of a group
version_added: 0.1.0
description:
  - For each host name in the input, its C(wglan_record) fact (or the one named by O(fact)), or null when the host has none in this
    run (it is unreachable, failed before publishing, or was never run). Lines up with the input, as
    M(wglan.mesh.wglan_peers) expects for O(wglan.mesh.wglan_peers#module:records).
positional: _input, hostvars, fact
options:
  _input:
    description: Host names (usually C(groups['wglan'])).
    type: list
    elements: str
    required: true
  hostvars:
    description: The C(hostvars) magic variable.
    type: dict
    required: true
  fact:
    description: The fact that holds a host's record (one per mesh on a host in several, see P(wglan.mesh.mesh_paths#filter)).
    type: str
    default: wglan_record
author:
  - wglan.mesh developers (@wglan-mesh)
'''

EXAMPLES = r'''
- name: Peers from every member of the group
  wglan.mesh.wglan_peers:
    members: "{{ groups['wglan'] }}"
    records: "{{ groups['wglan'] | wglan.mesh.member_records(hostvars) }}"
'''

RETURN = r'''
_value:
  description: One record (a dict) or null per host, in input order.
  type: list
  elements: dict
'''

from collections.abc import Mapping


def _record_of(hostvars, name, fact):
    try:
        host = hostvars[name]
    except Exception:  # pylint: disable=broad-except
        return None
    try:
        value = host[fact]
    except Exception:  # pylint: disable=broad-except
        return None
    if isinstance(value, Mapping):
        return dict(value)
    return None


def member_records(names, hostvars, fact='wglan_record'):
    return [_record_of(hostvars, name, fact) for name in names]


class FilterModule:
    def filters(self):
        return {'member_records': member_records}
