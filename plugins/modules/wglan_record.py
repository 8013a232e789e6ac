#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: wglan_record
short_description: Publish this node's mesh record as a local fact
version_added: 0.1.0
description:
  - Builds the record other nodes need to peer with this one, the public key, mesh address,
    node addresses (global ones, with their prefix length, so peers on the same link can see it;
    not IPv6 privacy, deprecated or duplicate addresses, which come and go on their own), port,
    announced endpoints, pod CIDRs, and the endpoints this node's WireGuard currently sees
    each peer that is up at (how nodes behind NAT find each other).
  - Writes it as JSON to O(fact_path) (a custom fact, C(ansible_local.wglan)), atomically and
    only when it changed, so the record survives between runs and a C(--limit) run can still
    see nodes it does not touch. Also returns it as the fact C(wglan_record).
  - Holds no secret; the file is mode C(0644).
  - The observed endpoints are a cache of what the node sees now. They are kept current in the file,
    but a change in them alone does not make the task C(changed); a change in anything another node
    peers with (key, addresses, port, announced endpoints, pod CIDRs) does.
options:
  name:
    description: The node's name in the mesh (the role passes C(inventory_hostname)).
    type: str
    required: true
  public_key:
    description: The node's public key (from M(wglan.mesh.wglan_keys)). May be empty in check mode on a new node.
    type: str
  address:
    description: The node's mesh address (from M(wglan.mesh.wglan_address)).
    type: str
  interface:
    description: The WireGuard interface. Its addresses are not node addresses; its peers give the observations.
    type: str
    default: wglan0
  port:
    description: The WireGuard listen port other nodes should use.
    type: int
    default: 51820
  prefix:
    description: The mesh prefix; addresses inside it are not node addresses.
    type: str
    default: 0200:1001::/64
  extra_endpoints:
    description:
      - Endpoints to announce besides the node's own addresses, for example a port forward, as C(ip:port)
        (IPv6 in brackets). Host names are not accepted; a record carries addresses only, so every
        node reads the same thing.
    type: list
    elements: str
    default: []
  exclude_prefixes:
    description: Node addresses inside these prefixes are not published (for example a management network).
    type: list
    elements: str
    default: []
  pod_cidrs:
    description: Pod CIDRs of this node, routed to it when pod networking is on. Addresses in them are not published as node IPs.
    type: list
    elements: str
    default: []
  relay:
    description:
      - Announce that this node relays traffic between two peers that cannot reach each other directly
        (both behind symmetric NAT, for example). The watcher on the node then forwards packets that
        arrive on the WireGuard interface back into it (IPv4 forwarding on that interface only).
    type: bool
    default: false
  segments:
    description:
      - The segments this node is in (names of 1-32 lower case letters, digits and dashes). Two nodes that share a
        segment are peers; two that do not reach each other through a gateway, a node in a segment of each that
        relays (O(relay)); a pair that no gateway joins does not reach each other. A node in no segment is in
        the segment C(default); a mesh where no node names one is a full mesh.
    type: list
    elements: str
    default: []
  relay_preferred:
    description:
      - With O(relay), announce this node as a preferred relay (a big link, a public address). Where
        several nodes can relay for a pair, both ends choose a preferred one first, then the one with the
        smallest public key.
    type: bool
    default: false
  fact_path:
    description: Where to write the record.
    type: path
    default: /etc/ansible/facts.d/wglan.fact
  fact_name:
    description:
      - The Ansible fact the record is returned as. A host in several meshes has one per mesh
        (the node role uses C(wglan_record_<mesh>) for a named mesh).
    type: str
    default: wglan_record
  ipv4_prefix:
    description:
      - The mesh's IPv4 overlay prefix (private, C(/8) to C(/30)). Given, the record carries the node's
        address in it (C(address4)), derived from its public key; needs I(public_key).
      - The node keeps the address its last record held (read from I(fact_path)) unless a node with a
        smaller public key claims it in the records this host kept (I(state_path)); a new address is
        the first place its key hashes to that no known node claims.
    type: str
  state_path:
    description: The records this host kept from its sources (M(wglan.mesh.wglan_peers)' I(state_path)), read for
      the IPv4 overlay addresses other nodes hold.
    type: path
    default: /etc/wglan/mesh.json
  private_key_path:
    description: The node's private key file. When given, RV(signer) is returned (for M(wglan.mesh.wglan_certificate));
      the key itself is never returned.
    type: path
    version_added: 1.0.0
  certificate_path:
    description: In a mesh with a CA, the node's certificate (M(wglan.mesh.wglan_peers)' O(wglan.mesh.wglan_peers#module:certificate_path)).
      With O(private_key_path), the record carries it and its claims are signed with the node's key, so that
      peers admit it from the inventory too.
    type: path
    version_added: 1.0.0
  certificate:
    description: The node's certificate itself, instead of the one in O(certificate_path) (a new one, before the
      step that keeps it has run).
    type: str
    version_added: 1.0.0
attributes:
  check_mode:
    description: Builds the record and reports whether the file would change; writes nothing.
    support: full
  diff_mode:
    description: Shows the record before and after.
    support: full
requirements:
  - pyroute2 (Debian package python3-pyroute2)
seealso:
  - module: wglan.mesh.wglan_keys
  - module: wglan.mesh.wglan_peers
  - module: wglan.mesh.wglan_node
author:
  - wglan.mesh developers (@wglan-mesh)
'''

EXAMPLES = r'''
- name: Publish this node's record
  wglan.mesh.wglan_record:
    name: "{{ inventory_hostname }}"
    public_key: "{{ wglan_key.public_key }}"
    address: "{{ wglan_addr.address }}"

- name: A node behind a port forward, outside the management network, with an IPv4 overlay address
  wglan.mesh.wglan_record:
    name: "{{ inventory_hostname }}"
    public_key: "{{ wglan_key.public_key }}"
    address: "{{ wglan_addr.address }}"
    extra_endpoints: ['198.51.100.7:51820']
    exclude_prefixes: ['10.99.0.0/16']
    ipv4_prefix: 10.200.0.0/16

- name: A Kubernetes node whose pod CIDR is routed to it, relaying for the peers of two segments
  wglan.mesh.wglan_record:
    name: "{{ inventory_hostname }}"
    public_key: "{{ wglan_key.public_key }}"
    address: "{{ wglan_addr.address }}"
    pod_cidrs: ['10.244.3.0/24']
    segments: [site-a, cloud]
    relay: true
    relay_preferred: true

- name: In a mesh with a CA, the record carries the node's certificate and signed claims
  wglan.mesh.wglan_record:
    name: "{{ inventory_hostname }}"
    public_key: "{{ wglan_key.public_key }}"
    address: "{{ wglan_addr.address }}"
    private_key_path: /etc/wglan/private.key
    certificate_path: /etc/wglan/certificate
'''

RETURN = r'''
record:
  description: The record as written.
  returned: always
  type: dict
signer:
  description: The public half of the node's signing key (derived from its WireGuard key), which a certificate
    names; null when the key file does not exist yet.
  returned: when private_key_path is given
  type: str
  version_added: 1.0.0
digest:
  description:
    - A fingerprint of what the record says that matters to peers (observations and relays left out). A node that
      used this record for this node reports the same one in RV(wglan.mesh.wglan_peers#module:records_used).
  returned: when the record has a public key
  type: str
ansible_facts:
  description: The record as C(wglan_record).
  returned: always
  type: dict
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.wglan.mesh.plugins.module_utils.shells import record as shell


def main():
    module = AnsibleModule(argument_spec=shell.ARGUMENTS, supports_check_mode=True)
    module.exit_json(**shell.run(module))


if __name__ == '__main__':
    main()
