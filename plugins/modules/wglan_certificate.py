#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: wglan_certificate
short_description: Sign a node's certificate with the mesh's CA, on the controller
version_added: 1.0.0
description:
  - Signs, with the CA that M(wglan.mesh.wglan_ca) made, a certificate binding the mesh, the node's name, its
    WireGuard public key and signing key, the addresses it may claim (its mesh address and IPv4 overlay address,
    from O(record)), its pod CIDRs and segments, and the prefixes its node IPs may lie in.
  - Peers of a mesh with a CA take from every source only what a valid certificate grants, so a member with the
    cluster token cannot take another node's name, slot or addresses.
  - Idempotent. The certificate in O(certificate) is kept while it grants what the record claims and is further
    than O(renew_days) from its end; otherwise a new one is signed.
  - Refuses (fails, before signing) a certificate that would grant an address or overlapping pod CIDR that one of
    O(others) already grants (an operator's error,, mended where it is made).
  - Run it on the controller (C(delegate_to=localhost)); the CA key never crosses SSH.
options:
  path:
    description: The CA key file (see M(wglan.mesh.wglan_ca)); it must exist.
    type: path
  key:
    description: The CA key's text, for example from a vaulted variable; wins over O(path).
    type: str
  mesh:
    description: The mesh the certificate admits the node to.
    type: str
    default: wglan0
  record:
    description: The node's record, as M(wglan.mesh.wglan_record) returns it (its name, public key, addresses,
      node IPs, pod CIDRs, segments).
    type: dict
    required: true
  signer:
    description: The node's public signing key, as M(wglan.mesh.wglan_record) returns it (C(signer)); its records
      are signed with the private half, which never leaves the node.
    type: str
    required: true
  certificate:
    description: The node's current certificate, kept when still good.
    type: str
  node_ip_prefixes:
    description:
      - The prefixes the node's IPs may lie in and be routed to it. A node IP outside them is still an endpoint
        to reach the node at, never an address routed to it.
      - Default, the node's IPs in O(record), exactly. A node that moves (a laptop) gets wider prefixes; an
        address that such a prefix grants is routed to the node only while no other node claims it.
    type: list
    elements: str
  others:
    description: The certificates of the other nodes (name to certificate), checked for overlapping grants.
    type: dict
    default: {}
  lifetime_days:
    description: How long a new certificate is valid.
    type: int
    default: 365
  renew_days:
    description: A certificate that ends within this many days is signed again.
    type: int
    default: 30
attributes:
  check_mode:
    description: Signs in check mode too (it writes nothing) and reports whether the certificate would change.
    support: full
  diff_mode:
    description: Shows the fingerprints of the certificate before and after.
    support: full
  platform:
    support: full
    description: Runs on the controller.
    platforms: posix
requirements:
  - cryptography (Debian package python3-cryptography)
seealso:
  - module: wglan.mesh.wglan_ca
  - module: wglan.mesh.wglan_record
author:
  - wglan.mesh developers (@wglan-mesh)
'''

EXAMPLES = r'''
- name: The node's certificate, signed on the controller
  wglan.mesh.wglan_certificate:
    path: "{{ playbook_dir }}/wglan-ca.key"
    mesh: wglan0
    record: "{{ wglan_record.record }}"
    signer: "{{ wglan_record.signer }}"
    certificate: "{{ ansible_local.wglan.certificate | default(omit) }}"
    others: "{{ dict(ansible_play_hosts | zip(ansible_play_hosts | map('extract', hostvars, 'wglan_certificate')
                | map(attribute='certificate', default=''))) }}"
  delegate_to: localhost
  register: wglan_certificate

- name: A laptop that moves between networks
  wglan.mesh.wglan_certificate:
    path: "{{ playbook_dir }}/wglan-ca.key"
    record: "{{ wglan_record.record }}"
    signer: "{{ wglan_record.signer }}"
    node_ip_prefixes: [0.0.0.0/0, "::/0"]
  delegate_to: localhost
'''

RETURN = r'''
certificate:
  description: The certificate (text, signed by the CA). No secret, it travels in the node's record.
  returned: always
  type: str
fingerprint:
  description: A short name of the certificate, for logs.
  returned: always
  type: str
name:
  description: The node's name the certificate holds.
  returned: always
  type: str
expires:
  description: When the certificate ends (seconds since 1970).
  returned: always
  type: int
ca_public_key:
  description: The CA's public key.
  returned: always
  type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.wglan.mesh.plugins.module_utils.shells import certificates as shell


def main():
    module = AnsibleModule(argument_spec=shell.CERT_ARGUMENTS, supports_check_mode=True,
                           required_one_of=[('path', 'key')])
    module.exit_json(**shell.run_certificate(module))


if __name__ == '__main__':
    main()
