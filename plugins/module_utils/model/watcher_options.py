# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The watcher's options: defaults and validation, in one place (pure).

The wglan_watcher module validates them at play time (a bad value fails the
play with a message naming it) and writes them; the watcher validates the
file again when it reads it, with the same function.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.model import nft_objects, settings

DEFAULTS = dict(
    resync=60.0,            # seconds between safety-net reconciles
    # Seconds on one endpoint candidate before the next (KubeSpan: 15). WireGuard sends
    # at most one handshake initiation per 5 s (REKEY_TIMEOUT, plus up to 1/3 s of
    # jitter), so each candidate must be held a little longer to be tried once.
    sweep_interval=6.0,
    force_routing=False,    # route every peer's addresses, up or not
    publish_every=600.0,    # re-publish this node's record at least this often (TTL refresh)
    status_path=settings.STATUS_PATH,
    table=nft_objects.DEFAULT_TABLE, route_mark=nft_objects.DEFAULT_ROUTE_MARK, mark_mask=nft_objects.DEFAULT_MARK_MASK,
    route_table=settings.ROUTE_TABLE, rule_priority=settings.RULE_PRIORITY,
    manage_rules=True,
    metrics_port=0,         # serve Prometheus metrics on metrics_address:metrics_port (0: off)
    metrics_address='127.0.0.1',
    relay=False,            # offer to relay (forward what arrives on the interface back into it)
    relay_ipv6=False,       # no longer used: a relay forwards without sysctls
    refresh_node_ips=True,  # publish the host's addresses as they are now (a machine that moves keeps its peers)
    endpoint_exclude=[],    # prefixes of addresses not to publish (the role's wglan_endpoint_exclude)
    address_check=2.0,      # seconds between looks at the host's addresses
    # Keep the WireGuard port open in the admin's nftables chains that drop by default (the
    # role's wglan_firewall): put back after a flush, at every resync and whenever wglan's
    # own table had to be made again (a flush takes both).
    host_firewall=False,
    firewall_udp_ports=None,  # the UDP ports (or ranges) the role opened; None: the listen port
    # Key rotation: make a new key when the key file is older than key_lifetime (0: only when asked,
    # `wglan rotate-key`); publish it key_overlap seconds before switching to it.
    key_lifetime=0,
    key_overlap=30.0,
    rotate_request='/run/wglan/rotate-key',
)
SECONDS = ('resync', 'sweep_interval', 'publish_every', 'address_check', 'key_overlap')
FLAGS = ('force_routing', 'manage_rules', 'relay', 'relay_ipv6', 'refresh_node_ips', 'host_firewall')
INTEGERS = dict(route_mark=(1, 0xFFFFFFFF), mark_mask=(1, 0xFFFFFFFF), route_table=(1, 0xFFFFFFFE),
                rule_priority=(1, 0xFFFFFFFE), metrics_port=(0, 65535))


def _integer(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_port_list(ports, where):
    if ports is None:
        return
    if not isinstance(ports, list):
        raise WglanError('%sfirewall_udp_ports must be a list of ports or ranges' % where)
    for port in ports:
        low, _sep, high = str(port).partition('-')
        if not (low.isdigit() and (not high or high.isdigit())) or not 0 < int(low) <= int(high or low) <= 65535:
            raise WglanError('%sfirewall_udp_ports: %r is not a port or a range of ports' % (where, port))


UNITS = dict(s=1, m=60, h=3600, d=86400)


def duration(value, name, where=''):
    """Seconds from a number or a text such as '90d', '12h', '30m', '45s', '3600'."""
    if isinstance(value, bool):
        value = None
    elif isinstance(value, str):
        text = value.strip().lower()
        unit = UNITS.get(text[-1:], None) if text else None
        number = text[:-1] if unit else text
        try:
            value = float(number) * (unit or 1)
        except ValueError:
            value = None
    if not isinstance(value, (int, float)) or value < 0:
        raise WglanError('%s%s must be a number of seconds, or one with s, m, h or d (90d); 0: never' % (where, name))
    return value


def validate(data, where=''):
    """The options data gives, completed with the defaults; WglanError naming the first bad one.
    where: a prefix for the message (the file's path)."""
    if not isinstance(data, dict):
        raise WglanError('%soptions are not a mapping' % where)
    unknown = sorted(set(data) - set(DEFAULTS))
    if unknown:
        raise WglanError('%sunknown options %s' % (where, ', '.join(unknown)))
    options = dict(DEFAULTS)
    options.update(data)
    for name in SECONDS:
        if isinstance(options[name], bool) or not isinstance(options[name], (int, float)) or options[name] <= 0:
            raise WglanError('%s%s must be a positive number of seconds' % (where, name))
    for name in FLAGS:
        if not isinstance(options[name], bool):
            raise WglanError('%s%s must be true or false' % (where, name))
    for name, (low, high) in INTEGERS.items():
        if not _integer(options[name]) or not low <= options[name] <= high:
            if name == 'metrics_port':
                raise WglanError('%smetrics_port must be a port number (0: no metrics)' % where)
            raise WglanError('%s%s must be a number from %d to %d' % (where, name, low, high))
    if options['route_mark'] & ~options['mark_mask']:
        raise WglanError('%sroute_mark must lie within mark_mask' % where)
    try:
        ipaddress.ip_address(str(options['metrics_address']))
    except ValueError:
        raise WglanError('%smetrics_address must be an IP address' % where)
    if not isinstance(options['endpoint_exclude'], list):
        raise WglanError('%sendpoint_exclude must be a list of prefixes' % where)
    for net in options['endpoint_exclude']:
        try:
            ipaddress.ip_network(str(net), strict=False)
        except ValueError as exc:
            raise WglanError('%sendpoint_exclude: %s' % (where, exc))
    _check_port_list(options['firewall_udp_ports'], where)
    options['key_lifetime'] = duration(options['key_lifetime'], 'key_lifetime', where)
    if options['key_lifetime'] and options['key_lifetime'] < 2 * options['key_overlap']:
        raise WglanError('%skey_lifetime must be at least twice key_overlap' % where)
    for name in ('table', 'status_path', 'rotate_request'):
        if not isinstance(options[name], str) or not options[name]:
            raise WglanError('%s%s must be a non-empty string' % (where, name))
    return options
