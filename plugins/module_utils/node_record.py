# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""This node's own record: what it publishes so that others can peer with it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import json
import os
import tempfile

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.links import Links
from ansible_collections.wglan.mesh.plugins.module_utils.mesh import RECORD_VERSION
from ansible_collections.wglan.mesh.plugins.module_utils.peers import parse_endpoint, parse_network
from ansible_collections.wglan.mesh.plugins.module_utils.wg_device import read_device

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


def local_node_ips(interface, mesh_prefix=None, exclude=()):
    """Global addresses of this node (with prefix length), from every link but the mesh one.

    Left out: IPv6 privacy, deprecated and duplicate addresses (transient_address)."""
    out = []
    with Links() as links:
        names = dict((msg['index'], msg.get_attr('IFLA_IFNAME')) for msg in links.ipr.get_links())
        for msg in links.ipr.get_addr():
            address = msg.get_attr('IFA_ADDRESS')
            if address is None or names.get(msg['index']) == interface:
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


def build_record(name, public_key, address, node_ips, port, extra_endpoints=(), pod_cidrs=(), observed=None,
                 relay=False):
    record = {
        'version': RECORD_VERSION,
        'name': name,
        'public_key': public_key,
        'address': str(address) if address else None,
        'node_ips': [str(i) for i in node_ips],
        'port': port,
        'extra_endpoints': [parse_endpoint(e, resolve=False) for e in extra_endpoints],
        'pod_cidrs': [str(parse_network(n, 'pod CIDR')) for n in pod_cidrs],
        'observed': dict(sorted((observed or {}).items())),
    }
    if relay:
        record['relay'] = relay if relay == 'preferred' else True
    return record


def without_observations(data):
    """A record, or a state holding records, minus what nodes observed and the relays they use (caches that move)."""
    if not isinstance(data, dict):
        return data
    sections = [k for k in ('records', 'discovery', 'kubernetes') if isinstance(data.get(k), dict)]
    if sections:  # a state: records by name under each source
        stripped = dict(data)
        for section in sections:
            stripped[section] = dict((k, without_observations(v)) for k, v in data[section].items())
        return stripped
    return dict((k, v) for k, v in data.items() if k not in ('observed', 'relays'))


def write_json_if_changed(path, data, mode=0o644, check_mode=False, significant=None):
    """Atomically write data as JSON when it differs from what is there.

    Returns whether it changed in a way that matters: by default any change;
    with significant (a function of the data), only when significant(old) and
    significant(new) differ. The file is rewritten either way.
    """
    text = json.dumps(data, indent=2, sort_keys=True) + '\n'
    old_text = None
    try:
        with open(path) as handle:
            old_text = handle.read()
    except OSError:
        pass
    if old_text == text:
        return False
    matters = True
    if significant is not None and old_text is not None:
        try:
            matters = significant(json.loads(old_text)) != significant(data)
        except ValueError:
            matters = True
    if check_mode:
        return matters
    directory = os.path.dirname(os.path.abspath(path))
    try:
        os.makedirs(directory, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix='.wglan-', dir=directory)
        try:
            os.fchmod(fd, mode)
            os.write(fd, text.encode('utf-8'))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)
    except OSError as exc:
        raise WglanError('cannot write %s: %s' % (path, exc.strerror or exc))
    return matters


def read_json(path):
    """The JSON at path, None if missing; an unreadable file is an error naming the path."""
    try:
        with open(path) as handle:
            return json.load(handle)
    except FileNotFoundError:
        return None
    except (OSError, ValueError) as exc:
        raise WglanError('cannot read %s: %s' % (path, exc))
