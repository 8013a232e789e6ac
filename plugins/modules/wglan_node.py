#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: wglan_node
short_description: This host as a node of the WireGuard mesh, in one call
version_added: "0.6.0"
description:
  - Runs several of this collection's modules in one call on the host, in this order -
    M(wglan.mesh.wglan_keys), M(wglan.mesh.wglan_address), M(wglan.mesh.wglan_record),
    M(wglan.mesh.wglan_firewall), M(wglan.mesh.wglan_peers), M(wglan.mesh.wglan_rules) and
    M(wglan.mesh.wglan_watcher). Each is given as a dict of that module's own options, validated by
    that module's own argument spec and run by that module's own code; a step not given is not run.
  - One call costs one connection and one Python start on the host instead of one per module. Over a
    fleet, with Ansible's defaults (no pipelining), that is most of what a run that has nothing to do spends.
  - Each step takes what the steps before it made, unless given - the record the public key (from O(keys))
    and the mesh address (from O(address)); O(mesh) the address (as its O(wglan.mesh.wglan_peers#module:addresses))
    and the record to publish; O(rules) the targets of O(mesh) when there is no O(watcher) step (the watcher owns them).
  - Before any step, it checks that the host has what the steps need (with O(packages=true)). If not, it
    changes nothing and returns the Debian packages in RV(missing), so that a play can install them and call again.
  - The node role (P(wglan.mesh.node#role)) calls it once per host with every step, the mesh step peering from the
    records each node kept from its last run; a second time (without the record) only where a host used an
    older record of another host of the play (see the C(wglan.mesh.stale_records) filter).
options:
  keys:
    description: The options of M(wglan.mesh.wglan_keys).
    type: dict
  address:
    description: The options of M(wglan.mesh.wglan_address).
    type: dict
  record:
    description: The options of M(wglan.mesh.wglan_record).
    type: dict
  firewall:
    description: The options of M(wglan.mesh.wglan_firewall).
    type: dict
  mesh:
    description:
      - The options of M(wglan.mesh.wglan_peers), except O(peers) and O(cluster_token), which are given at the
        top level (where Ansible keeps their secrets out of every log).
    type: dict
  peers:
    description:
      - The explicit peers of the O(mesh) step, as M(wglan.mesh.wglan_peers) takes them in its own
        O(wglan.mesh.wglan_peers#module:peers).
    type: list
    elements: dict
    suboptions:
      public_key:
        description: The peer's public key.
        type: str
        required: true
      name:
        description: A name for messages.
        type: str
      endpoint:
        description: V(host:port) (a name is resolved on the host).
        type: str
      allowed_ips:
        description: The prefixes routed to this peer.
        type: list
        elements: str
        default: []
      preshared_key:
        description: A preshared key (never logged or returned).
        type: str
      persistent_keepalive:
        description: Seconds between keepalives.
        type: int
  cluster_token:
    description: The O(wglan.mesh.wglan_peers#module:cluster_token) of the O(mesh) step.
    type: str
  rules:
    description: The options of M(wglan.mesh.wglan_rules).
    type: dict
  watcher:
    description:
      - The options of M(wglan.mesh.wglan_watcher) (the service is installed and kept running unless its
        O(wglan.mesh.wglan_watcher#module:service=false)).
    type: dict
  wait:
    description:
      - Before the O(record) step, wait up to this many seconds until every peer of the interface answered,
        so that the record carries what this node observes of them (first contact behind NAT). The wait
        also ends once no other peer answered for 3 seconds - the peers that can answer have, the others
        (behind another NAT) wait for the endpoints this record will carry.
    type: int
    default: 0
  packages:
    description: Check first that the host has what the steps need (see RV(missing)).
    type: bool
    default: true
  supported_os_only:
    description:
      - Before any step, fail, changing nothing, on a host that is not a supported release (its C(/etc/os-release)) -
        Debian 12 and 13, Ubuntu 22.04 and 24.04 - with a message naming them and what the collection needs on
        another distribution.
      - V(false) goes on anywhere; what the steps need is then yours to install (RV(missing) names Debian's packages).
    type: bool
    default: true
    version_added: 1.0.0
  mesh_name:
    description:
      - The mesh these steps are of, when the host is in several (empty - the default mesh). The call
        first reads what the host's other meshes claim (their interface, UDP ports, prefixes, route table,
        rule priority, marks and nftables table, each kept in its mesh's C(claims.json)) and fails, before
        any step, naming both meshes and the setting, when this one would take any of it.
      - After a call with the O(mesh) step, this mesh's claims are kept in C(claims.json) under O(meshes_root)
        (the default mesh) or C(<name>/claims.json) under it.
      - The steps' own paths (key, settings, records, fact, watcher options, unit) are the caller's to give;
        the filter P(wglan.mesh.mesh_paths#filter) gives those of a mesh.
    type: str
    default: ''
  meshes_root:
    description:
      - Where the meshes' claims files are (the default mesh's C(claims.json), and one in a folder per named mesh).
    type: path
    default: /etc/wglan
  rotate_keys:
    description:
      - A key rotation follows this call (C(wglan_rotate_keys) of the node role). Before any
        step, the call fails, changing nothing, when the O(mesh) step's options cannot carry one without an
        outage, with the reason - the watcher is off, or there is no live source (a discovery service with a
        cluster token, or Kubernetes) to announce the next key to the peers before the switch.
    type: bool
    default: false
  certificate:
    description:
      - In a mesh with a CA (the O(mesh) step's C(ca_public_key)), the node's new certificate, signed on the controller
        by M(wglan.mesh.wglan_certificate) for what RV(certificate_request) asked. Given to the O(record) step, which
        puts it in the record, and to the O(mesh) step, which keeps it on the node and publishes it.
    type: str
    version_added: 1.0.0
  node_ip_prefixes:
    description: The prefixes the node's certificate grants its node IPs in (M(wglan.mesh.wglan_certificate)); by
      default its node IPs exactly. Compared with the certificate the node holds to decide RV(certificate_request).
    type: list
    elements: str
    version_added: 1.0.0
attributes:
  check_mode:
    description: Every step runs in check mode.
    support: full
  diff_mode:
    description: The diff of every step that has one, each headed with its step.
    support: full
seealso:
  - module: wglan.mesh.wglan_keys
  - module: wglan.mesh.wglan_record
  - module: wglan.mesh.wglan_peers
  - module: wglan.mesh.wglan_watcher
author:
  - wglan.mesh developers (@wglan-mesh)
'''

EXAMPLES = r'''
- name: Key, address and record of every host first
  wglan.mesh.wglan_node:
    keys: {}
    address: {}
    record:
      name: "{{ inventory_hostname }}"
  register: node

- name: Then the mesh from every record, the rules and the watcher
  wglan.mesh.wglan_node:
    keys: {}
    address: {}
    mesh:
      interface: wglan0
      members: "{{ groups['wglan'] }}"
      records: "{{ groups['wglan'] | wglan.mesh.member_records(hostvars) }}"
      save_settings: true
      watcher: true
    rules:
      interface: wglan0
    watcher: {}

- name: Through a discovery service, the cluster token kept at the top level (out of every log)
  wglan.mesh.wglan_node:
    keys: {}
    address: {}
    mesh:
      interface: wglan0
      discovery_urls: ['https://discovery.example.net:8443']
      save_settings: true
      watcher: true
    cluster_token: "{{ vault_wglan_cluster_token }}"
    rules:
      interface: wglan0
    watcher: {}

- name: Explicit peers beside the records (a site router, not managed by Ansible)
  wglan.mesh.wglan_node:
    keys: {}
    address: {}
    mesh:
      interface: wglan0
    peers:
      - name: site-router
        public_key: "{{ site_router_public_key }}"
        endpoint: router.example.net:51820
        allowed_ips: ['10.50.0.0/16']
        persistent_keepalive: 25

- name: A second mesh on the same host (refused, changing nothing, if it would take the first mesh's port or prefix)
  wglan.mesh.wglan_node:
    mesh_name: storage
    keys:
      path: /etc/wglan/storage/private.key
    address: {}
    mesh:
      interface: wgstorage
      listen_port: 51900
      members: "{{ groups['storage'] }}"
      # (the records an earlier call made with record.fact_name wglan_record_storage)
      records: "{{ groups['storage'] | wglan.mesh.member_records(hostvars, 'wglan_record_storage') }}"

- name: Before a key rotation (wglan rotate-key), check that the mesh can carry one without an outage
  wglan.mesh.wglan_node:
    keys: {}
    address: {}
    mesh:
      interface: wglan0
      discovery_urls: ['https://discovery.example.net:8443']
      save_settings: true
      watcher: true
    cluster_token: "{{ vault_wglan_cluster_token }}"
    rotate_keys: true

- name: Only check what the host needs, and go on on a release that is not supported
  wglan.mesh.wglan_node:
    packages: true
    supported_os_only: false
  check_mode: true
'''

RETURN = r'''
certificate:
  description: In a mesh with a CA, the certificate the node holds (no secret), or null.
  returned: when the record step runs and the mesh step has a ca_public_key
  type: str
  version_added: 1.0.0
certificate_request:
  description:
    - In a mesh with a CA, what the node asks the controller to sign (its C(record) and C(signer)) when the certificate
      it holds was not signed by this CA, does not grant what its record claims, or ends within 30 days; null when
      it stands.
  returned: when the record step runs and the mesh step has a ca_public_key
  type: dict
  version_added: 1.0.0
steps:
  description: The steps that ran, in order.
  returned: always
  type: list
  elements: str
seconds:
  description: How long each step (and the wait) took on the host, in seconds.
  returned: when the steps ran
  type: dict
missing:
  description: Debian packages the steps need that the host lacks (no step ran when this is not empty).
  returned: always
  type: list
  elements: str
os_family:
  description: V(Debian) on Debian and its derivatives, else the C(ID) of C(/etc/os-release).
  returned: always
  type: str
keys:
  description: What M(wglan.mesh.wglan_keys) returned.
  returned: when the step ran
  type: dict
address:
  description: What M(wglan.mesh.wglan_address) returned.
  returned: when the step ran
  type: dict
record:
  description: The record (what M(wglan.mesh.wglan_record) returned as RV(wglan.mesh.wglan_record#module:record)).
  returned: when the step ran
  type: dict
firewall:
  description: What M(wglan.mesh.wglan_firewall) returned.
  returned: when the step ran
  type: dict
mesh:
  description: What M(wglan.mesh.wglan_peers) returned.
  returned: when the step ran
  type: dict
rules:
  description: What M(wglan.mesh.wglan_rules) returned.
  returned: when the step ran
  type: dict
watcher:
  description: What M(wglan.mesh.wglan_watcher) returned.
  returned: when the step ran
  type: dict
public_key:
  description: This node's public key.
  returned: when the keys step ran
  type: str
cidr:
  description: This node's mesh address with the prefix length.
  returned: when the address step ran
  type: str
record_digest:
  description: The fingerprint of this node's record (RV(wglan.mesh.wglan_record#module:digest)).
  returned: when the record step ran
  type: str
record_changed:
  description:
    - Whether this node's record changed in a way its peers care about (a new node, a new address or
      port; observations left out).
    - The role reads the live sources once more when a node of the play published a changed record.
  returned: when the record step ran
  type: bool
records_used:
  description: The fingerprints of the records the mesh step used (RV(wglan.mesh.wglan_peers#module:records_used)).
  returned: when the mesh step took peers from the records of its members
  type: dict
firewall_manager:
  description: The firewall that runs the host (V(nftables), V(ufw) or V(firewalld)).
  returned: when the firewall step ran
  type: str
reached_before:
  description:
    - The peers this node reached (up, or through a relay that is up) before the call changed anything - each
      by its name in the watcher's status (which follows a peer through a key rotation), else by its public key.
      The node role waits at its end until each of them that is still a peer is reached again
      (M(wglan.mesh.wglan_info) O(wglan.mesh.wglan_info#module:expect_reached)).
  returned: when the mesh step is given
  type: list
  elements: str
live_sources:
  description: Whether a source tells the other nodes of this node's record at once (see M(wglan.mesh.wglan_peers)).
  returned: when the mesh step ran
  type: bool
peers_up:
  description: Peers with a recent handshake, after the mesh step.
  returned: when the mesh step ran
  type: int
peers_relayed:
  description: Peers reached through a relay that is up.
  returned: when the mesh step ran
  type: int
peers_total:
  description: Peers of the interface.
  returned: when the mesh step ran
  type: int
all_up:
  description: Whether every peer is up or relayed.
  returned: when the mesh step ran
  type: bool
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.wglan.mesh.plugins.module_utils.shells import node


def main():
    module = AnsibleModule(argument_spec=node.ARGUMENTS, supports_check_mode=True)
    module.exit_json(**node.run(module))


if __name__ == '__main__':
    main()
