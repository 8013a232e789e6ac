# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""This host's links, for the link whose MAC names the node."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.model.address import parse_mac


ARPHRD_ETHER = 1


def list_links():
    """Links of this process's network namespace: name, ifindex, mac, physical, ether.

    Read over rtnetlink, never /sys/class/net: sysfs shows the namespace of
    whoever mounted it, which inside containers (systemd-nspawn, some
    runtimes) is the host's, so every container would pick the host's MAC.
    A link is "physical" when it has no link kind (veth, bridge, tun, ... all
    have one).
    """
    from ansible_collections.wglan.mesh.plugins.module_utils.host.links import Links
    out = []
    with Links() as links:
        for msg in links.ipr.get_links():
            info = msg.get_attr('IFLA_LINKINFO')
            kind = info.get_attr('IFLA_INFO_KIND') if info is not None else None
            out.append({
                'name': msg.get_attr('IFLA_IFNAME'),
                'ifindex': msg['index'],
                'mac': msg.get_attr('IFLA_ADDRESS'),
                'ether': msg['ifi_type'] == ARPHRD_ETHER,
                'physical': kind is None,
            })
    return out


def mac_of_interface(name):
    if not re.match(r'^[A-Za-z0-9_.@:-]{1,15}$', name or ''):
        raise WglanError('invalid interface name %r' % (name,))
    for link in list_links():
        if link['name'] == name:
            if not link['mac']:
                raise WglanError('interface %s has no hardware address' % name)
            parse_mac(link['mac'])
            return link['mac']
    raise WglanError('interface %s does not exist' % name)
