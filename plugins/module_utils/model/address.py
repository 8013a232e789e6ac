# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Node address: an EUI-64 interface identifier inside the mesh prefix."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import hashlib
import ipaddress
import re
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError


DEFAULT_PREFIX = '0200:1001::/64'


_MAC_RE = re.compile(r'^[0-9a-fA-F]{2}([:-]?)[0-9a-fA-F]{2}(\1[0-9a-fA-F]{2}){4}$')


# Links that have an Ethernet address but never identify the machine.
_VIRTUAL_KINDS_BY_NAME = ('docker', 'veth', 'br-', 'virbr', 'cni', 'flannel', 'cali', 'cilium', 'kube', 'vxlan', 'wg')


def parse_prefix(prefix):
    """Validate the mesh prefix: IPv6, length at most 64, no host bits."""
    try:
        net = ipaddress.ip_network(str(prefix), strict=True)
    except ValueError as exc:
        raise WglanError('invalid prefix %r: %s' % (prefix, exc))
    if net.version != 6:
        raise WglanError('invalid prefix %s: must be IPv6' % prefix)
    if net.prefixlen > 64:
        raise WglanError('invalid prefix %s: length must be at most 64 to hold an EUI-64 identifier' % prefix)
    return net


def parse_mac(mac):
    """'aa:bb:cc:dd:ee:ff' (also '-' separated or bare) -> 6 bytes."""
    text = str(mac).strip()
    if not _MAC_RE.match(text):
        raise WglanError('invalid MAC address %r' % (mac,))
    raw = bytes.fromhex(text.replace(':', '').replace('-', ''))
    if raw == b'\x00' * 6:
        raise WglanError('invalid MAC address %r: all zero' % (mac,))
    return raw


def eui64_interface_id(mac):
    """Modified EUI-64 (RFC 4291 appendix A): insert ff:fe, flip the universal/local bit."""
    raw = parse_mac(mac)
    eui = bytes([raw[0] ^ 0x02]) + raw[1:3] + b'\xff\xfe' + raw[3:6]
    return int.from_bytes(eui, 'big')


def node_address(prefix, mac):
    """The node's address: prefix network bits + EUI-64 identifier in the low 64 bits."""
    net = parse_prefix(prefix)
    value = int(net.network_address) | eui64_interface_id(mac)
    return ipaddress.IPv6Address(value)


def node_cidr(prefix, mac):
    """The address with the length it keeps on the link.

    Every node's identifier sits in the same /64 (the first of a shorter prefix),
    so /64 on the link makes all nodes on-link through the WireGuard interface.
    """
    return '%s/64' % node_address(prefix, mac)


def choose_identity_link(links, exclude=()):
    """The link whose MAC names this node.

    The first physical (has a bus device) Ethernet link by ifindex, as the seed
    describes. Containers and network namespaces have no physical link: then the
    first Ethernet link by ifindex whose name is not a well-known virtual kind.
    Returns (link, how) or raises when there is none.
    """
    usable = []
    for link in links:
        if link['name'] == 'lo' or link['name'] in exclude or not link['ether']:
            continue
        try:
            parse_mac(link['mac'] or '')
        except WglanError:
            continue
        usable.append(link)
    usable.sort(key=lambda item: (item['ifindex'], item['name']))
    for link in usable:
        if link['physical']:
            return link, 'physical'
    for link in usable:
        if not link['name'].startswith(_VIRTUAL_KINDS_BY_NAME):
            return link, 'first-ethernet'
    if usable:
        return usable[0], 'first-ethernet'
    raise WglanError('no Ethernet link with a hardware address found: give mac or interface')


# -- the IPv4 overlay (opt-in) --------------------------------------------------
# A node's IPv4 address inside the overlay prefix comes from its public key: the first of a
# sequence of places the key hashes to that no other node holds. Where two nodes claim one
# address (both took it before either saw the other), the smaller public key keeps it: the rule
# resolve_overlaps applies to every claim, so every node routes the address to the same peer
# without asking anyone, and the other node moves to its next place.
IPV4_PROBES = 64


def parse_ipv4_prefix(prefix):
    """Validate the IPv4 overlay prefix: a private (not globally routed) IPv4 network of /8 to /30."""
    try:
        net = ipaddress.ip_network(str(prefix), strict=True)
    except ValueError as exc:
        raise WglanError('invalid IPv4 overlay prefix %r: %s' % (prefix, exc))
    if net.version != 4:
        raise WglanError('invalid IPv4 overlay prefix %s: must be IPv4' % prefix)
    if not 8 <= net.prefixlen <= 30:
        raise WglanError('invalid IPv4 overlay prefix %s: length must be between 8 and 30' % prefix)
    first = net.network_address
    if net.is_global or first.is_loopback or first.is_link_local or first.is_multicast or first.is_reserved \
            or first.is_unspecified or net.overlaps(ipaddress.ip_network('0.0.0.0/8')):
        raise WglanError('invalid IPv4 overlay prefix %s: must be a private range (10.0.0.0/8, 172.16.0.0/12, '
                         '192.168.0.0/16, 100.64.0.0/10 and the like), not one routed on the internet' % prefix)
    return net


def ipv4_places(net, public_key):
    """The addresses public_key may take in net, in the order it tries them: IPV4_PROBES places
    its hash gives, then every host address from the first of them on."""
    hosts = net.num_addresses - 2
    base = int(net.network_address) + 1
    first = None
    for k in range(IPV4_PROBES):
        digest = hashlib.sha256(('wglan.mesh ipv4|%s|%d' % (public_key, k)).encode('ascii')).digest()
        offset = int.from_bytes(digest[:8], 'big') % hosts
        first = offset if first is None else first
        yield ipaddress.IPv4Address(base + offset)
    for step in range(hosts):
        yield ipaddress.IPv4Address(base + (first + step) % hosts)


def ipv4_claims(records, own_key=None, own_name=None):
    """{IPv4 address: {public keys}} of what the records (NodeRecords) claim, this node's left out: those of
    its key, of its name (its own record from before a key switch, which a source may still hold without
    the announcement), and the one announcing its key."""
    claims = {}
    for record in records or ():
        if record.next_key is not None and record.next_key[0] == own_key:
            continue  # this node's own record from before its key switch
        if own_name and record.name == own_name:
            continue
        if record.address4 is not None and record.public_key != own_key:
            claims.setdefault(record.address4, set()).add(record.public_key)
    return claims


def held_ipv4(last_record, name):
    """The IPv4 overlay address this node's last record (a dict, or None) held, when it is this node's (the
    same name; whatever its key: a key rotation keeps the node's address); else None."""
    if not isinstance(last_record, dict) or last_record.get('name') != name or not last_record.get('address4'):
        return None
    try:
        return ipaddress.IPv4Address(str(last_record['address4']))
    except ValueError:
        return None


def choose_ipv4(net, public_key, current, claims):
    """This node's overlay IPv4 address: the one it holds (current), unless a smaller key claims it
    too; else the first of its places nobody claims. None when the prefix is full."""
    if current is not None and current in net and current not in (net.network_address, net.broadcast_address) \
            and not any(key < public_key for key in claims.get(current, ())):
        return current
    for place in ipv4_places(net, public_key):
        if place not in claims:
            return place
    return None
