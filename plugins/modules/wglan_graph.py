#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: wglan_graph
short_description: Draw the mesh as a picture from what every node reports
version_added: 0.9.0
description:
  - Takes the M(wglan.mesh.wglan_info) result of every host and writes a picture of the mesh (SVG by
    default) - a box per node with its mesh address; a green line per pair that talks directly, labelled
    with the age of its latest handshake; a blue dashed line per pair relayed through a node, labelled
    with the relay; a red dotted line per pair that is down; and the nodes that share a NAT address
    (one host sees them at the same address) grouped in a box named after it.
  - A pair seen by both ends takes the better report of the two (direct, then relayed, then down).
  - Written only when the picture changes. The time in its heading (O(timestamp)) and the handshake
    ages make each picture of a live mesh a new one.
  - Runs where the picture is wanted, usually the controller (C(delegate_to=localhost), C(run_once)).
    Graphviz draws it; see O(format). C(playbooks/graph.yml) is the whole playbook.
options:
  infos:
    description: C({host name => wglan_info result}) of every host of the mesh (hosts without the interface are left out).
    type: dict
    required: true
  dest:
    description: The file to write. Written only when its content changes.
    type: path
    required: true
  format:
    description: V(svg), V(png) or V(dot) (the Graphviz source). Default from the suffix of O(dest), else V(svg).
    type: str
    choices: [svg, png, dot]
  title:
    description: The heading of the picture (followed by the counts and the time).
    type: str
    default: wglan.mesh
  timestamp:
    description:
      - Put the time in the heading. Without it, the same reports give the same file (the run reports
        no change); the handshake ages still change the picture while traffic flows.
    type: bool
    default: true
  mode:
    description: The file's mode.
    type: raw
    default: '0644'
attributes:
  check_mode:
    description: Draws, and reports whether the file would change, without writing it.
    support: full
  diff_mode:
    description: No diff (the file is a picture).
    support: none
requirements:
  - graphviz (the Python package, Debian python3-graphviz)
  - Graphviz's dot program (Debian graphviz)
seealso:
  - module: wglan.mesh.wglan_info
author:
  - wglan.mesh developers (@wglan-mesh)
'''

EXAMPLES = r'''
- name: Read every node
  wglan.mesh.wglan_info:
  register: mesh_info

- name: Draw the mesh on the controller
  wglan.mesh.wglan_graph:
    infos: "{{ dict(ansible_play_hosts | zip(ansible_play_hosts | map('extract', hostvars, 'mesh_info'))) }}"
    dest: "{{ playbook_dir }}/mesh.svg"
  delegate_to: localhost
  run_once: true
'''

RETURN = r'''
dest:
  description: The file written.
  returned: always
  type: str
format:
  description: What was written (svg, png or dot).
  returned: always
  type: str
nodes:
  description: Nodes in the picture.
  returned: always
  type: int
direct:
  description: Pairs that talk directly.
  returned: always
  type: int
relayed:
  description: Pairs relayed through a node.
  returned: always
  type: int
down:
  description: The pairs that are down, as C(a-b).
  returned: always
  type: list
  elements: str
sites:
  description: C({NAT address => [nodes]}) of the nodes that share one.
  returned: always
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.wglan.mesh.plugins.module_utils.shells import graph as shell


def main():
    module = AnsibleModule(argument_spec=shell.ARGUMENTS, supports_check_mode=True)
    module.exit_json(**shell.run(module))


if __name__ == '__main__':
    main()
