# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""This host's addresses as a record's node IPs, and where the device sees its peers."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.host.links import Links
from ansible_collections.wglan.mesh.plugins.module_utils.model.peers import parse_endpoint
from ansible_collections.wglan.mesh.plugins.module_utils.host.wg_device import read_device


DEFAULT_FACT_PATH = '/etc/ansible/facts.d/wglan.fact'


def usable_node_ip(iface, mesh_prefix, exclude):
    ip = iface.ip
    if ip.is_loopback or ip.is_link_local or ip.is_multicast or ip.is_unspecified:
        return False
    if mesh_prefix is not None and ip in mesh_prefix:
        return False
    return not any(ip in net for net in exclude)


# IPv6 address flags (linux/if_addr.h) of addresses that do not say where a node is for long:
# privacy addresses (RFC 8981) are replaced every few hours, a deprecated one is on its way out,
# one that failed duplicate detection is not usable. (0x01 means "secondary" for IPv4: kept.)
IFA_F_TEMPORARY = 0x01


IFA_F_DADFAILED = 0x08


IFA_F_DEPRECATED = 0x20


TRANSIENT_V6 = IFA_F_TEMPORARY | IFA_F_DADFAILED | IFA_F_DEPRECATED


def transient_address(family, flags):
    """Whether an address with these netlink flags should not be published (see TRANSIENT_V6)."""
    return family == 10 and bool((flags or 0) & TRANSIENT_V6)


def local_node_ips(interface, mesh_prefix=None, exclude=(), meshes=()):
    """Global addresses of this node (with prefix length), from every link but the mesh one and those
    of the host's other meshes (meshes: their interface names).

    Left out: IPv6 privacy, deprecated and duplicate addresses (transient_address)."""
    out = []
    with Links() as links:
        names = dict((msg['index'], msg.get_attr('IFLA_IFNAME')) for msg in links.ipr.get_links())
        for msg in links.ipr.get_addr():
            address = msg.get_attr('IFA_ADDRESS')
            if address is None or names.get(msg['index']) == interface or names.get(msg['index']) in meshes:
                continue
            # IFA_FLAGS holds all 32 bits; the header's byte only the low 8
            flags = msg.get_attr('IFA_FLAGS')
            if transient_address(msg['family'], msg['flags'] if flags is None else flags):
                continue
            iface = ipaddress.ip_interface('%s/%d' % (address, msg['prefixlen']))
            if usable_node_ip(iface, mesh_prefix, exclude):
                out.append(iface)
    return sorted(set(out), key=lambda i: (i.version, int(i.ip)))


def observed_endpoints(interface):
    """{public key: endpoint} for the peers of this node's device that are up now."""
    found = read_device(interface)
    if found is None:
        return {}
    _link, _backend, state = found
    out = {}
    for peer in state.peers:
        if peer.endpoint and state.stats_of(peer).state() == 'up':
            try:
                out[peer.public_key] = parse_endpoint(peer.endpoint, resolve=False)
            except WglanError:
                continue
    return out
