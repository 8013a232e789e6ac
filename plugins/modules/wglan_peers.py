#!/usr/bin/python
# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
module: wglan_peers
short_description: Ensure the WireGuard interface and its peers
version_added: 0.1.0
description:
  - Creates the WireGuard interface if needed and makes its settings and peers match the arguments.
  - Two backends behind one interface. V(kernel) drives kernel WireGuard over generic netlink;
    V(userspace) starts C(wireguard-go) and drives it over its UAPI socket
    (C(/var/run/wireguard/<interface>.sock)). V(auto) uses the backend of an existing interface,
    and for a new one tries the kernel first and falls back to userspace.
  - Reads the running device, computes the difference and sends only that, peer by peer
    (add, update, remove). The peer set is never replaced as a whole, so traffic to unchanged
    peers is not disturbed, and a reconcile of an unchanged mesh sends nothing.
  - All input is validated before anything is sent. Bad input fails with a message naming the
    peer and the problem, and the running configuration stays as it was.
  - No peer can take an address another peer already holds. Single addresses (/32, /128) are
    given out before ranges, then by public key; a later claim loses only the overlapping part,
    and each such loss is reported in RV(dropped_allowed_ips) and as a warning.
  - A peer whose public key is this node's own is skipped, so the same list can be given to every node.
options:
  interface:
    description: Name of the WireGuard interface. Default V(wglan0).
    type: str
  state:
    description:
      - V(absent) deletes the interface (and stops C(wireguard-go) for it) and the mesh's names.
      - Before that, it tells every live source of the saved settings (the discovery services, Kubernetes) that
        the node leaves the mesh - a withdrawal record signed with its key - so that every peer drops it within
        seconds, also where the peer keeps the node's record from the inventory of an earlier run. Stop the
        watcher first (the node role does), or it publishes the node again.
    type: str
    choices: [present, absent]
    default: present
  backend:
    description: Which WireGuard implementation to use. Default V(auto).
    type: str
    choices: [auto, kernel, userspace]
  private_key_path:
    description:
      - The node's private key file. Created (mode C(0600)) if missing, as M(wglan.mesh.wglan_keys) does.
        Default C(/etc/wglan/private.key).
    type: path
  listen_port:
    description: UDP port WireGuard listens on. Default C(51820).
    type: int
  listen_port_auto:
    description:
      - Let the watcher move the port when other members share this node's public address (they sit
        behind one NAT, which keeps a port for one of them only), so each such node listens on a port
        of its own in O(listen_port) .. O(listen_port) + 31, the same one every node computes from the
        records, so a port-preserving NAT keeps one mapping per node and every pair can go direct.
      - Needs O(watcher) and a live source (the discovery service, Kubernetes). A run takes the port the
        watcher chose (saved in O(relays_path)). Default C(false).
    type: bool
  fwmark:
    description:
      - Firewall mark WireGuard puts on its own UDP packets. Must equal O(wglan.mesh.wglan_rules#module:wg_mark)
        so those packets are never routed back into the tunnel. Give it as a number (YAML accepts C(0x20)).
        Default C(32) (C(0x20)).
    type: int
  mtu:
    description: MTU of the interface. At least 1280 (the IPv6 minimum). Default C(1420).
    type: int
  addresses:
    description:
      - Addresses of the interface with their length (for example the node address from
        M(wglan.mesh.wglan_address) as a /64). When given, this is the exact list (IPv6 link-local
        addresses are left alone). When omitted, addresses are not touched.
    type: list
    elements: str
  peers:
    description: The peers this interface should have (besides those built from O(records) and the sources).
    type: list
    elements: dict
    suboptions:
      public_key:
        description: The peer's public key (base64, 44 characters).
        type: str
        required: true
      name:
        description: A name used in messages.
        type: str
      endpoint:
        description:
          - Where to send to the peer, C(host:port), C(192.0.2.1:51820) or C([2001:db8::1]:51820).
            Host names are resolved when the module runs.
          - When omitted, a running peer keeps the endpoint it has (it may have roamed there).
        type: str
      allowed_ips:
        description: Addresses and prefixes routed to this peer. Host bits must be zero.
        type: list
        elements: str
        default: []
      preshared_key:
        description: Optional preshared key (base64). Never logged or shown in diffs.
        type: str
      persistent_keepalive:
        description: Seconds between keepalives (0 turns them off). Defaults to O(persistent_keepalive).
        type: int
  persistent_keepalive:
    description: Keepalive for peers that do not set their own. Default C(25) (seconds), which keeps NAT mappings open.
    type: int
  purge:
    description:
      - Remove running peers that are not in O(peers) or built from O(records). Off by default so that an
        ad-hoc call with one peer does not drop the others; the node role turns it on. Default V(false).
    type: bool
  members:
    description:
      - Names of every node in the mesh (the role passes the inventory group). With O(records), each
        member that has a record becomes a peer (this node excepted).
    type: list
    elements: str
  records:
    description:
      - Node records (see M(wglan.mesh.wglan_record)), one per entry of O(members), in the same order;
        null where this run has none for a member. For such a member the last record this node used
        (kept in O(state_path)) stands in, so a C(--limit) run or an unreachable node does not remove
        a peer. A record that does not validate is skipped with a warning naming the node.
      - The endpoint for each peer is chosen from its record and what other nodes observed, in this
        order, its own address on a link this node is on, an announced endpoint, the endpoint other
        nodes see it at from outside its site (its NAT mapping), its own address. The last two (and
        the address the discovery service saw) are guesses, set for a peer that is not up but never in
        place of the endpoint of a peer that is up (handshake in the last 275 s), since WireGuard roamed there,
        so it works.
      - Explicit O(peers) win over records with the same public key.
      - When Kubernetes or the discovery service (reached in this call) also has a record with the same public
        key, the inventory's record stays but where the node is now comes from the live one (node IPs, the
        address the service saw it at, what it observes), since the node's watcher keeps those current between runs.
    type: list
    elements: raw
  self_name:
    description: This node's name among O(members); its own record gives the links used for endpoint choice.
    type: str
  pod_networking:
    description: Route each node's pod CIDRs (from its record or its Node's C(spec.podCIDRs)) to it, as allowed IPs.
      Default V(false).
    type: bool
  discovery_url:
    description:
      - URL of a wglan discovery service, for example C(https://discovery.example:8443). With O(cluster_token), this node's
        record (O(publish)) is sealed and published there, and the records of the cluster's other
        nodes are read, validated and merged with the inventory records. A record that does not
        authenticate is dropped with a warning. When the service cannot be reached, the records it
        gave last time (kept in O(state_path)) stand in, so the mesh stays as it was.
      - Publishing refreshes the record's TTL and is not counted as a change of this host.
      - Each write is signed with a key derived from this node's WireGuard private key. The service pins
        the node's slot to that key, and every reader checks it. A reader also remembers the newest
        sequence number it took per member, in O(state_path), and drops anything older (a replay), and a
        record older than its TTL.
      - A URL with C(http://) to a host other than this one gets a warning. The write key then crosses
        the network in clear.
    type: str
  discovery_urls:
    description:
      - More discovery services, used like O(discovery_url) (which, when given, comes first). This node
        publishes to each one and reads each one. Per member, it takes the newest record that any of
        them has (the highest sequence number).
      - A service that cannot be reached, or that restarted empty, costs nothing while another one
        answers. The watcher publishes again at once to a service that lost this node's record.
    type: list
    elements: str
  cluster_token:
    description:
      - The cluster's secret. Keys for the discovery service are derived from it, and, with
        O(pair_preshared_keys), a preshared key for each pair of nodes. Never logged.
    type: str
  cluster_id:
    description: Name of the cluster on the discovery service. Default, hex SHA-256 of O(cluster_token).
    type: str
  discovery_ca:
    description:
      - A CA bundle (a file) to check the discovery services' certificates with. With it, or with
        O(discovery_ca_pem), only those CAs are trusted. Without either, the system's trust store is used.
      - A bundle that cannot be read is an error of each service, as one that cannot be reached is. The
        saved records then stand in.
    type: path
  discovery_ca_pem:
    description:
      - CA certificates (PEM text) to check the discovery services' certificates with, with O(discovery_ca) or
        instead of it. The node role gives the CA of each discovery service that the discovery role set up.
    type: str
  discovery_ttl:
    description: Seconds the service keeps this node's record unless it is published again. Default C(1800).
    type: int
  ipv4_prefix:
    description:
      - The IPv4 overlay (opt-in; private, C(/8) to C(/30)). Each node's record carries its address in it
        (M(wglan.mesh.wglan_record)'s C(address4)); each peer's is routed to it as a C(/32).
      - This node holds its record's address unless a node with a smaller public key claims it too (both took
        it before either saw the other); then it moves to the next free place of its key, with a warning. Every
        node gives a contested address to the smaller key, so all agree without asking anyone.
      - With I(addresses) given, the address goes on the interface with the prefix's length. Without this
        option, no IPv4 overlay address is on the interface (one that was goes).
    type: str
  ca_public_key:
    description:
      - The public key of the mesh's CA (M(wglan.mesh.wglan_ca)). Given, the mesh admits by certificates; from every
        source (O(members) and O(records), the discovery service, Kubernetes) only records whose certificate
        this CA signed for O(mesh_name), for the record's key and name, valid now and not revoked, and signed by
        the node's own key, become peers; a claim the certificate does not grant (an address, a pod CIDR, a
        segment, a node IP to route) is left out with a warning, the peer's certified addresses stay.
      - Not given, the cluster token admits (every token holder is a member).
      - The record in O(publish) must then carry the node's C(certificate) (M(wglan.mesh.wglan_certificate)); it is
        signed with the node's key before it is published.
    type: str
    version_added: 1.0.0
  mesh_name:
    description: The mesh's name certificates and revocation lists are checked against. Default, O(interface).
    type: str
    version_added: 1.0.0
  admission_transition:
    description:
      - A mesh moving from the cluster token to certificates (O(ca_public_key) given to a node whose saved settings
        had none). V(true) asks for the transition - as long as it lasts, records that carry no certificate are
        still admitted as under the token (records that carry one are checked as usual, and a revoked name or key
        is dropped all the same), so that no peer is dropped while the others get their certificates. It lasts
        from the call that finds the saved settings without a CA to the first call with V(false); a node whose
        saved settings already admit by certificates, or that has none (a new node), never enters it.
      - The node role asks for it and ends it once every node of the play has its certificate; RV(admission_transition)
        says whether this call admitted by the transition. The watcher does what the saved settings say.
      - Not given, what the saved settings say.
    type: bool
    version_added: 1.0.0
  certificate:
    description: This node's certificate (M(wglan.mesh.wglan_certificate)), with O(ca_public_key). Kept in
      O(certificate_path) and published in the node's record; not given, the one kept there is.
    type: str
    version_added: 1.0.0
  certificate_path:
    description: Where the node keeps its certificate (no secret; mode C(0644)). Default C(/etc/wglan/certificate),
      or what the saved settings say.
    type: path
    version_added: 1.0.0
  revocations:
    description: Revocation lists (M(wglan.mesh.wglan_ca)). The newest one of these, of the records and of the
      one kept from before applies, and is passed on in the node's record.
    type: list
    elements: str
    version_added: 1.0.0
  segment_policy:
    description:
      - Turns on the segment filter (enforced by the watcher, O(watcher=true); a run without it warns and makes
        none). What arrives on the WireGuard interface for this node, or through it, passes when it answers a
        connection this node made, or comes from a node that shares a segment with this node (the records'
        C(segments), M(wglan.mesh.wglan_record)), or from a node of the source segment of an entry whose
        destination segment is one of this node's (to its ports); the rest is dropped. An empty list lets in
        the node's own segments only.
      - Each entry is C({from, to, ports, proto}) - C(from) and C(to) one segment each, C(ports) a list of
        ports or ranges (C(8000-8100); none - every port), C(proto) V(tcp), V(udp) or V(any) (with ports,
        V(tcp) unless given).
    type: list
    elements: dict
  names:
    description:
      - Name every node of the mesh C(<name>.<names_domain>) in the hosts file (I(hosts_path)), with its mesh
        addresses (IPv6, and IPv4 with I(ipv4_prefix)). The name is the node's record name, in lower case; a name that is
        not a DNS name is left out with a warning.
      - Where systemd-resolved is the host's resolver and I(watcher) is on, the watcher answers the names
        itself, on the node's mesh address (see I(names_via)), and the hosts file is left alone.
      - Otherwise the names are one block in the hosts file between two marker lines named after the
        interface; no other line of the file is touched. With I(watcher), the watcher writes the block at
        each reconcile (a new node is named, a removed one is not, within its reconcile); without it, this
        module does. False removes the block.
      - C(state=absent) removes the block too.
    type: bool
  names_domain:
    description: The domain of the names. Default C(wglan.internal).
    type: str
  names_via:
    description:
      - How the host resolves the names. V(resolved) - the watcher runs a small DNS responder on this node's
        mesh address (I(names_port)), for this host's queries only, and makes it the DNS server of the
        WireGuard interface for C(~<names_domain>) in systemd-resolved (a per-link routing domain; no
        other name goes there). Needs I(watcher), systemd-resolved as the host's resolver and python3-dnspython;
        when one of them is missing at a reconcile, the watcher logs why and writes the hosts file instead.
      - V(hosts) - always the managed block in the hosts file. V(auto) (the default) - V(resolved) where
        systemd-resolved is the host's resolver and I(watcher) is on, else V(hosts).
    type: str
    choices: [auto, resolved, hosts]
  names_port:
    description:
      - The UDP port of the names responder on the mesh address (V(resolved)). Default 53. Another port
        where something on the host already listens on port 53 of every address.
    type: int
  hosts_path:
    description: The hosts file the names go into. Default C(/etc/hosts).
    type: path
  publish:
    description:
      - This node's record to publish on the discovery service and as annotations of its Node
        (the role passes the C(wglan_record) fact).
    type: dict
  pair_preshared_keys:
    description:
      - With O(cluster_token), give each peer built from records a preshared key derived from the
        token and both public keys. Both ends compute the same key with no coordination; every pair
        gets its own; a new token gives new keys. Default V(true).
    type: bool
  peer_selector:
    description:
      - A JMESPath expression that gives the records (or names) to peer with, instead of every node.
        It sees a mapping with two keys, C(self) (this node's record) and C(nodes) (every record).
        For hub and spoke, C(self.name == 'hub1' && nodes || nodes[?name == 'hub1']).
        Needs the C(jmespath) library.
    type: str
  state_path:
    description:
      - Where the records last used are kept (JSON, no secrets), written by this module only (a watcher
        keeps its own copy beside it). Refreshed on every run; it is a cache, so refreshing it does not make
        the task C(changed) (the peers the records lead to do); RV(records_saved) says whether it was written.
        Default C(/etc/wglan/mesh.json).
    type: path
  kubernetes:
    description:
      - Use the Kubernetes Node objects as a source. This node's record (O(publish)) is written as
        annotations on its own Node (C(wglan.mesh/public-key), C(wglan.mesh/address), C(wglan.mesh/node-ips),
        C(wglan.mesh/endpoints), C(wglan.mesh/assigned-prefixes), C(wglan.mesh/port), C(wglan.mesh/observed)),
        with a merge patch that touches only those keys and only when they differ. The annotations of
        every Node are read, with C(spec.podCIDRs) (pod CIDRs) and C(status.addresses) (node addresses
        when the annotations give none). A Node whose annotations do not validate is skipped with a
        warning naming it; the others apply. When the API server cannot be reached, the records it
        gave last time (kept in O(state_path)) stand in.
      - The node needs get, list, watch and patch on nodes (C(deploy/kubernetes/rbac.yaml) in this collection).
      - Implied by O(kubeconfig). Without O(kubeconfig), the in-cluster service account is used when
        C(KUBERNETES_SERVICE_HOST) is set, else C(~/.kube/config). Needs the C(kubernetes) library.
      - Default V(false).
    type: bool
  kubeconfig:
    description: A kubeconfig file for the Kubernetes source (implies O(kubernetes)).
    type: path
  kube_context:
    description: The kubeconfig context to use. Default, its current context.
    type: str
  node_name:
    description:
      - Name of this node's Node object. Default, the host name in lower case (what the kubelet registers).
    type: str
  watcher:
    description:
      - A watcher service (C(wglan-watcher), installed by the node role) keeps this interface current.
        This run then leaves it the endpoints of peers already configured (it sweeps those of peers
        that are down) and keeps the relays it chose (read from O(relays_path)), so a run
        does not undo its work and reports no change when the mesh is as it should be.
      - Default V(false).
    type: bool
  relays_path:
    description: Where the watcher keeps the relays it chose. Default C(/run/wglan/paths.json).
    type: path
  settings_path:
    description:
      - Where O(save_settings) keeps this call's settings (JSON, mode C(0600), as it holds O(cluster_token)).
      - A call that gives none of O(peers), O(members), O(records), O(discovery_url), O(discovery_urls), O(kubernetes) and
        O(kubeconfig) takes every option it does not give from this file, when it exists. So on a node set up by
        the role, C(ansible wglan -m wglan.mesh.wglan_peers) refreshes the peers from the configured sources,
        with the records of inventory members last used standing in for their facts.
    type: path
    default: /etc/wglan/settings.json
  automatic:
    description:
      - Take peers from node records at all (O(members), O(records), O(discovery_url), O(kubernetes),
        O(kubeconfig)). With V(false) they are ignored and only O(peers) apply, so a role can pass its
        source variables as they are and one switch (the node role's C(wglan_automatic_nodes)).
    type: bool
    default: true
  save_settings:
    description:
      - Save this call's settings in O(settings_path) (the node role does), for later ad-hoc calls.
        Saving is not counted as a change.
    type: bool
    default: false
attributes:
  check_mode:
    description: Reads the device and reports what would change; sends nothing.
    support: full
  diff_mode:
    description: Shows the interface settings and peers before and after. Preshared keys show only as set or not.
    support: full
requirements:
  - pyroute2 (Debian package python3-pyroute2)
  - cryptography (Debian package python3-cryptography)
  - kubernetes, for the Kubernetes source (Debian package python3-kubernetes; 22.6 and current releases work)
  - jmespath, for O(peer_selector) (Debian package python3-jmespath)
  - wireguard-go, when the kernel has no WireGuard
seealso:
  - module: wglan.mesh.wglan_record
  - module: wglan.mesh.wglan_rules
  - module: wglan.mesh.wglan_watcher
  - module: wglan.mesh.wglan_info
author:
  - wglan.mesh developers (@wglan-mesh)
'''

EXAMPLES = r'''
- name: Two peers on wglan0
  wglan.mesh.wglan_peers:
    addresses: ["200:1001::5054:ff:fe12:3456/64"]
    peers:
      - name: cp1
        public_key: xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg=
        endpoint: 203.0.113.10:51820
        allowed_ips: ["200:1001::5054:ff:fe00:1/128", "203.0.113.10/32"]
      - name: worker-behind-nat
        public_key: TrMvSoP4jYQlY6RIzBgbssQqY3vxI2Pi+y71lOWWXX0=
        allowed_ips: ["200:1001::5054:ff:fe00:2/128"]
    purge: true

- name: Peers from the Kubernetes Node annotations, this node's record published on its Node
  wglan.mesh.wglan_peers:
    kubeconfig: /etc/wglan/kubeconfig
    publish: "{{ ansible_local.wglan }}"
    purge: true

- name: On a node set up by the role, refresh the peers from its sources (ad hoc, no arguments)
  wglan.mesh.wglan_peers:

- name: Remove the interface
  wglan.mesh.wglan_peers:
    state: absent
'''

RETURN = r'''
admission_transition:
  description: Whether this call admitted records without a certificate (a mesh moving from the token to
    certificates; see O(admission_transition)).
  returned: with O(state=present)
  type: bool
  version_added: 1.0.0
interface:
  description: The interface name.
  returned: always
  type: str
names:
  description: With I(names), each name and its addresses.
  returned: with I(names) and record sources
  type: dict
  sample: {"a1.wglan.internal": ["200:1001::5054:ff:fe12:3456", "10.98.41.7"]}
withdrawn_from:
  description:
    - With O(state=absent), the live sources of the saved settings that were told this node leaves the mesh
      (each discovery service's URL, V(kubernetes)) - its withdrawal record, signed with its key, so that its
      peers drop it at once, also where they keep its record from the inventory of an earlier run.
  returned: when O(state=absent)
  type: list
  elements: str
names_changed:
  description: Whether this call changed the names in the hosts file (false beside a watcher, which owns them).
  returned: success
  type: bool
address4:
  description: This node's address in the IPv4 overlay; null when the overlay is full.
  returned: with I(ipv4_prefix)
  type: str
  sample: 10.98.41.7
backend:
  description: The backend in use (V(kernel) or V(userspace)).
  returned: when state is present
  type: str
public_key:
  description: This node's public key.
  returned: when state is present and the key exists
  type: str
created:
  description: Whether the interface was created.
  returned: when state is present
  type: bool
peers_added:
  description: Public keys of peers added.
  returned: when state is present
  type: list
  elements: str
peers_changed:
  description: Public keys of peers updated.
  returned: when state is present
  type: list
  elements: str
peers_removed:
  description: Public keys of peers removed.
  returned: when state is present
  type: list
  elements: str
records_saved:
  description: Whether the records file (O(state_path)) was written (it is a cache; not counted as a change).
  returned: when peers come from records
  type: bool
records_used:
  description:
    - For each member of O(members) that has a record, the fingerprint of the record used (this run's, or the
      one kept from an earlier run), as RV(wglan.mesh.wglan_record#module:digest) gives it. The node role compares
      them with this run's records to know whether a second call is needed.
  returned: when peers come from the records of O(members)
  type: dict
live_sources:
  description:
    - Whether a source tells the other nodes of this node's record at once (a discovery service with a token,
      or Kubernetes). The node role waits and shares observations through Ansible only without one.
  returned: when state is present
  type: bool
peer_operations:
  description: Number of peer operations sent to the device (0 when nothing differs).
  returned: when state is present
  type: int
device_changes:
  description: Interface settings that changed (V(private_key) names the field only, never the value).
  returned: when state is present
  type: list
  elements: str
addresses_added:
  description: Interface addresses added.
  returned: when state is present
  type: list
  elements: str
addresses_removed:
  description: Interface addresses removed.
  returned: when state is present
  type: list
  elements: str
targets:
  description: Every allowed IP of every peer, for M(wglan.mesh.wglan_rules).
  returned: when state is present
  type: list
  elements: str
discovery:
  description:
    - What the discovery services said. C(reached) is true when any of them answered. C(observed) is the
      address the first one that took the record sees this node at. C(records) is the number of records
      taken.
    - C(services) has one entry per service, with C(url), C(reached), C(observed) and C(records).
  returned: when discovery_url or discovery_urls is given
  type: dict
kubernetes:
  description:
    - What the Kubernetes source did, C(reached), C(node) (this node's Node name), C(published)
      (V(true) when its annotations were patched, V(false) when they were current, V(null) when there is no such Node)
      and C(records) (valid records read).
  returned: when the Kubernetes source is used
  type: dict
endpoints:
  description: For each peer built from records, the endpoint chosen and why.
  returned: when records are given
  type: dict
dropped_allowed_ips:
  description: Allowed IPs not given to a peer because another peer holds them.
  returned: when state is present
  type: list
  elements: dict
  contains:
    peer:
      description: Name or public key of the peer that gave the prefix up.
      type: str
    prefix:
      description: The prefix as the peer asked for it (it keeps any part nobody else holds).
      type: str
    reason:
      description: Why.
      type: str
'''

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.wglan.mesh.plugins.module_utils.shells import peers


def main():
    module = AnsibleModule(argument_spec=peers.ARGUMENTS, supports_check_mode=True)
    module.exit_json(**peers.run(module))


if __name__ == '__main__':
    main()
