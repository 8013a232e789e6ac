# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: more_to_do
short_description: Whether any host of a play has more to do after its first wglan_node call
version_added: 1.0.0
description:
  - Reads the result each host of the input registered from its first M(wglan.mesh.wglan_node) call of a run
    and tells whether any task the node role runs after that call could do something on any host of the
    play - packages to install, a certificate to sign, the move to certificates, a host firewall with its own
    tool, a record of this run that another host has not used yet (see P(wglan.mesh.stale_records#filter)), a
    live source read before every node published, a pair not up yet, a call that changed something (the run
    then waits until the node reaches its peers again).
  - When none has, the role skips those tasks on every host with one conditional include, and a run with nothing
    to do costs each host one module call and two tasks evaluated on the controller, not twenty (Ansible
    forks a worker for every host and task, a skipped one too).
  - The answer is for the whole play, read once (C(run_once)), so that a host whose own call did nothing
    still goes through the steps that other hosts' changes make necessary (a new node's record, say).
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
- name: Look once at what the first call left to do
  ansible.builtin.set_fact:
    wglan_more_to_do: "{{ ansible_play_hosts | wglan.mesh.more_to_do(hostvars) }}"
  run_once: true
'''

RETURN = r'''
_value:
  description: True when some host of the input has more to do (or left no result to tell).
  type: bool
'''

from collections.abc import Mapping

from ansible_collections.wglan.mesh.plugins.filter.stale_records import _result, stale_records

TOOLS = ('ufw', 'firewalld')


def _own_more(outcome):
    """What a host's own result asks for, whatever the others did."""
    mesh = outcome.get('mesh') if isinstance(outcome.get('mesh'), Mapping) else {}
    watcher = 'watcher' in (outcome.get('steps') or ())
    return bool(outcome.get('changed') or outcome.get('missing') or outcome.get('certificate_request') is not None
                or mesh.get('admission_transition') or outcome.get('firewall_manager') in TOOLS
                # (a live source without a watcher is read again every run: nobody else reads it after the run)
                or (outcome.get('live_sources') and not watcher))


def more_to_do(hosts, hostvars, result='wglan_node'):
    hosts = list(hosts or [])
    outcomes = [_result(hostvars, host, result) for host in hosts]
    if not all(outcomes):
        return True  # a host without a result to read ({}): let the tasks' own conditions decide
    if any(_own_more(outcome) for outcome in outcomes):
        return True
    if any(outcome.get('record_changed') for outcome in outcomes) and any(
            outcome.get('live_sources') for outcome in outcomes):
        return True  # a record published in this run: the nodes with a live source read it again
    if not all(outcome.get('all_up') for outcome in outcomes) and not all(
            outcome.get('live_sources') and 'watcher' in (outcome.get('steps') or ()) for outcome in outcomes):
        return True  # first contact: observations shared through Ansible
    return bool(stale_records(hosts, hostvars, result))


class FilterModule:
    def filters(self):
        return {'more_to_do': more_to_do}
