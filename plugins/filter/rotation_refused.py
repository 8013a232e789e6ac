# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: rotation_refused
short_description: Why a key rotation could not keep a node's peers, from the node role's settings alone
version_added: 1.0.0
description:
  - The node role checks it on the controller before it contacts any host when C(wglan_rotate_keys) is true, so
    that a run that cannot rotate keys without an outage stops at once; M(wglan.mesh.wglan_node) refuses the same on
    the host.
  - A rotation needs the watcher (it makes the next key, announces it and switches at the announced time) and a
    live source that carries the announcement to the peers before the switch (a discovery service with a cluster
    token, or Kubernetes).
positional: _input
options:
  _input:
    description: The settings, with keys C(watcher), C(kubernetes), C(discovery_url), C(discovery_urls) and
      C(cluster_token) (as M(wglan.mesh.wglan_peers) names its options).
    type: dict
    required: true
author:
  - wglan.mesh developers (@wglan-mesh)
'''

EXAMPLES = r'''
- name: Stop before anything changes when the keys cannot rotate without an outage
  ansible.builtin.assert:
    that: refused == ''
    fail_msg: "{{ refused }}"
  vars:
    refused: "{{ {'watcher': true, 'kubernetes': false, 'discovery_urls': [], 'cluster_token': ''} | wglan.mesh.rotation_refused }}"
'''

RETURN = r'''
_value:
  description: Why the rotation would lose peers, or an empty string when it can keep them.
  type: str
'''

from ansible.errors import AnsibleFilterError

from ansible_collections.wglan.mesh.plugins.module_utils.model.settings import rotation_refused as why


def rotation_refused(settings):
    if not isinstance(settings, dict):
        raise AnsibleFilterError('rotation_refused expects a mapping of the settings')
    return why(settings) or ''


class FilterModule:
    def filters(self):
        return {'rotation_refused': rotation_refused}
