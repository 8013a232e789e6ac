# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The mesh built from node records (pure): endpoints, candidates, allowed IPs, shared-NAT ports."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import ipaddress
from ansible_collections.wglan.mesh.plugins.module_utils.model.peers import DEFAULT_KEEPALIVE, Peer, format_endpoint


def _networks(record):
    return [iface.network for iface in record.node_ips if iface.network.prefixlen < iface.network.max_prefixlen]


def _ip_of(endpoint):
    return ipaddress.ip_address(endpoint.rpartition(':')[0].strip('[]'))


def _on_link(ip, networks):
    return any(ip in net for net in networks)


def useful_observations(peer, records):
    """Endpoints other nodes saw peer at that work from outside their own site.

    An observer that shares a link with the peer sees it at its LAN address:
    that is no use to anyone elsewhere, so it is left out. An endpoint that is
    not one of the peer's own addresses is its NAT's public mapping.
    """
    own = peer.own_ips()
    seen = []
    for observer in records:
        if observer.public_key == peer.public_key:
            continue
        endpoint = observer.observed.get(peer.public_key)
        if not endpoint:
            continue
        ip = _ip_of(endpoint)
        if ip in own and _on_link(ip, _networks(observer)):
            continue
        seen.append(endpoint)
    return seen


PORT_SLOTS = 32


def public_address(record, records):
    """Where the internet sees a node: the address the discovery service saw it at, else the one other
    nodes see it at from outside its site (the most common); None when nobody knows."""
    if record.public_ip is not None:
        return record.public_ip
    seen = [_ip_of(e) for e in useful_observations(record, records)]
    seen = [ip for ip in seen if ip not in record.own_ips()]
    if not seen:
        return None
    return max(sorted(set(seen)), key=seen.count)


def shared_nat_port(me, records, base, known=None):
    """The port this node should listen on so that the NAT it shares with other members keeps one
    mapping per node: base while it is alone behind its public address (or has that address itself);
    else a port of its own in base .. base + PORT_SLOTS - 1.

    Every node computes the same ports from the same records, without asking anyone: each member of
    the group takes the slot its name hashes to, the smaller names first, the next free one on a clash.
    A member joining later moves nobody but a node whose slot it takes (a larger name on the same slot).
    The name, not the key: a node keeps its port (and its NAT mapping) through a key rotation.
    known: where the internet saw this node last, for when nobody knows now (right after its key switch,
    the others' observations are still of its old key: the port went back to base and the NAT mapping with
    it, for 5 to 6 s).
    """
    mine = public_address(me, records) or known
    if mine is None or mine in me.own_ips() or base + PORT_SLOTS - 1 > 65535:
        return base
    group = set([me.name])
    group.update(r.name for r in records if r.name != me.name and r.public_key != me.public_key
                 and public_address(r, records) == mine)
    if len(group) < 2:
        return base
    taken = {}
    for name in sorted(group)[:PORT_SLOTS]:
        slot = int(hashlib.sha256(name.encode('utf-8')).hexdigest()[:8], 16) % PORT_SLOTS
        while slot in taken.values():
            slot = (slot + 1) % PORT_SLOTS
        taken[name] = slot
    return base + taken[me.name] if me.name in taken else base


def choose_endpoint(me, peer, records):
    """Where me should send to peer, and why. Deterministic for the same records.

    1. the peer's own address on a link me is on (same site: no NAT between);
    2. an endpoint the peer's operator announced;
    3. what other nodes observed from outside the peer's site, the most common;
    4. the address the discovery service saw the peer's requests come from,
       with the peer's port (its NAT's public address; right for NATs that
       keep the port), unless another node was seen at that address too: then
       the NAT gave the port to one of them only, and the guess may reach the
       wrong node;
    5. the peer's own first address (a guess: right for public nodes; for a
       peer behind NAT its own packets will correct it, since WireGuard roams).
    """
    candidates = endpoint_candidates(me, peer, records)
    return candidates[0] if candidates else (None, 'none')


def endpoint_candidates(me, peer, records):
    """Every endpoint worth trying for peer, best first, as (endpoint, reason); the first is choose_endpoint's.

    The watcher sweeps through these while a peer is down. Beyond choose_endpoint's
    order: every announced endpoint, every distinct observation (most common
    first), and every own address of the peer.
    """
    out = []

    def add(endpoint, reason):
        if endpoint and all(endpoint != e for e, _r in out):
            out.append((endpoint, reason))

    mine = _networks(me)
    for endpoint in peer.own_endpoints():
        if _on_link(_ip_of(endpoint), mine):
            add(endpoint, 'same-link')
    for endpoint in sorted(peer.extra_endpoints):
        add(endpoint, 'announced')
    counts = {}
    for endpoint in useful_observations(peer, records):
        counts[endpoint] = counts.get(endpoint, 0) + 1
    for endpoint, _count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        add(endpoint, 'observed')
    if peer.public_ip is not None and peer.public_ip not in peer.own_ips() and not _on_link(peer.public_ip, mine) \
            and not any(r.public_ip == peer.public_ip and r.public_key != peer.public_key for r in records):
        add(format_endpoint(peer.public_ip, peer.port), 'discovery')
    for endpoint in peer.own_endpoints():
        add(endpoint, 'own-address')
    return out


def allowed_ips_of(record, pod_networking):
    nets = []
    if record.address:
        nets.append(ipaddress.ip_network(record.address))
    if record.address4 is not None:
        nets.append(ipaddress.ip_network(record.address4))
    nets.extend(ipaddress.ip_network(iface.ip) for iface in record.node_ips if iface.ip not in record.unrouted)
    if pod_networking:
        nets.extend(record.pod_cidrs)
    return nets


def build_mesh(me, records, pod_networking=False, keepalive=DEFAULT_KEEPALIVE):
    """Peers for me from the records of every node. Returns (peers, choices, warnings).

    choices maps peer name -> (endpoint, reason). A record with the same public
    key as an earlier one (by name) is skipped with a warning. Addresses of me
    are never routed to a peer.
    """
    warnings = []
    by_key = {}
    for record in sorted(records, key=lambda r: r.name):
        if record.public_key in by_key:
            warnings.append('nodes %s and %s publish the same public key; %s is ignored'
                            % (by_key[record.public_key].name, record.name, record.name))
            continue
        by_key[record.public_key] = record
    mine = set(ipaddress.ip_network(ip) for ip in me.own_ips())
    if me.address:
        mine.add(ipaddress.ip_network(me.address))
    if me.address4 is not None:
        mine.add(ipaddress.ip_network(me.address4))
    peers = []
    choices = {}
    for record in by_key.values():
        if record.public_key == me.public_key:
            continue
        allowed = []
        for net in allowed_ips_of(record, pod_networking):
            if net in mine:
                warnings.append('node %s claims %s, which is this node\'s own address; not routed to it'
                                % (record.name, net))
                continue
            if net not in allowed:
                allowed.append(net)
        endpoint, reason = choose_endpoint(me, record, records)
        choices[record.name] = (endpoint, reason)
        peers.append(Peer(record.public_key, endpoint, allowed, None, keepalive, record.name,
                          endpoint_fallback=reason not in ('same-link', 'announced')))
    return peers, choices, warnings
