# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Several meshes on one host (pure): each mesh's own files, unit and table, derived from its name,
and what each mesh claims of the host (interface, ports, prefixes, route table, rule priority, marks),
which two meshes must not share.

The mesh without a name (the default) keeps the paths every earlier version used; a named mesh keeps
its files under /etc/wglan/<name> and /run/wglan/<name>, its watcher is wglan-watcher@<name>.service
and its nftables table wglan_<name>.

Every mesh on a host gives its WireGuard packets the same mark (wg_mark): each mesh's rules leave
them alone (its own and every other mesh's), so that no mesh's WireGuard packets are routed into
another mesh's tunnel when both route the same underlay addresses. The route marks differ, and
each lies outside every other mesh's mask.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.model import nft_objects, settings
from ansible_collections.wglan.mesh.plugins.module_utils.model.settings import watcher_records_path

# lower case letters and digits, a letter first, 1-10 characters: short enough for the nftables
# table (wglan_<name>), the unit name and a fact name
NAME = re.compile(r'^[a-z][a-z0-9]{0,9}$')
DEFAULT_DOMAIN = 'wglan.internal'


def parse_name(name):
    """'' for the default mesh, else the name (validated)."""
    name = '' if name is None else str(name).strip()
    if name and not NAME.match(name):
        raise WglanError('mesh name %r: use 1-10 lower case letters and digits, a letter first' % name)
    return name


def paths(name):
    """Every file, unit and table of the mesh name ('' : the default mesh)."""
    name = parse_name(name)
    etc = '/etc/wglan/%s' % name if name else '/etc/wglan'
    run = '/run/wglan/%s' % name if name else '/run/wglan'
    suffix = '_%s' % name if name else ''
    return dict(
        name=name,
        config_dir=etc,
        key=etc + '/private.key',
        settings=etc + '/settings.json',
        state=etc + '/mesh.json',
        watcher_records=watcher_records_path(etc + '/mesh.json'),
        watcher_config=etc + '/watcher.json',
        claims=etc + '/claims.json',
        certificate=etc + '/certificate',
        run_dir=run,
        relays=run + '/paths.json',
        status=run + '/status.json',
        rotate_request=run + '/rotate-key',
        fact_path='/etc/ansible/facts.d/wglan%s.fact' % suffix,
        fact_name='wglan_record%s' % suffix,
        unit='wglan-watcher@%s.service' % name if name else 'wglan-watcher.service',
        table='wglan%s' % suffix,
        names_domain='%s.%s' % (name, DEFAULT_DOMAIN) if name else DEFAULT_DOMAIN,
    )


# (a value that does not parse claims nothing: the step that takes it fails with its own message)
def _network(text):
    if not text:
        return None
    try:
        return ipaddress.ip_network(str(text), strict=False)
    except ValueError:
        return None


def _ports(values):
    """[(low, high)] of port specs: 51820, '51820', '51820-51851'."""
    out = []
    for value in values or ():
        low, _sep, high = str(value).partition('-')
        try:
            low, high = int(low), int(high or low)
        except ValueError:
            continue
        out.append((min(low, high), max(low, high)))
    return out


class Claims:
    """What a mesh takes of the host. None (or empty): not known, never a clash."""
    FIELDS = ('mesh', 'interface', 'ports', 'prefix', 'ipv4_prefix', 'route_table', 'rule_priority',
              'wg_mark', 'route_mark', 'mark_mask', 'table', 'kubernetes')

    def __init__(self, mesh='', interface=None, ports=(), prefix=None, ipv4_prefix=None, route_table=None,
                 rule_priority=None, wg_mark=None, route_mark=None, mark_mask=None, table=None, kubernetes=False):
        self.mesh = parse_name(mesh)
        self.interface = interface or None
        self.ports = _ports(ports)
        self.prefix = _network(prefix)
        self.ipv4_prefix = _network(ipv4_prefix)
        self.route_table = route_table
        self.rule_priority = rule_priority
        self.wg_mark = wg_mark
        self.route_mark = route_mark
        self.mark_mask = mark_mask
        self.table = table or paths(self.mesh)['table']
        self.kubernetes = bool(kubernetes)  # the Kubernetes source: a Node's annotations hold one mesh's record

    def as_dict(self):
        out = dict(version=1)
        for name in self.FIELDS:
            value = getattr(self, name)
            if name == 'ports':
                value = ['%d-%d' % p if p[0] != p[1] else str(p[0]) for p in value]
            elif name in ('prefix', 'ipv4_prefix') and value is not None:
                value = str(value)
            if value not in (None, [], False):
                out[name] = value
        return out

    @classmethod
    def from_dict(cls, data):
        if not isinstance(data, dict):
            raise WglanError('not a claims record')
        return cls(**dict((name, data.get(name)) for name in cls.FIELDS if data.get(name) is not None))


def _int(value):
    """An integer option as Ansible may pass it (an int, or its text from a template); else None."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    try:
        return int(str(value), 0) if value is not None else None
    except ValueError:
        return None


def _given(step, name, default):
    """A rules step's integer option, its module's default when the step does not give it; None without
    the step (nothing claimed)."""
    if not step:
        return None
    return default if step.get(name) is None else _int(step.get(name))


def _flag(value):
    return value is True or str(value).lower() in ('true', 'yes', '1', 'on')


def claims_of_call(mesh, steps):
    """The Claims of a wglan_node call (its steps' options as given, None where a step is not run)."""
    record = steps.get('record') or {}
    mesh_options = steps.get('mesh') or {}
    address = steps.get('address') or {}
    rules = steps.get('rules') or {}
    firewall = steps.get('firewall') or {}
    ports = list(firewall.get('udp_ports') or ())
    port = mesh_options.get('listen_port') or record.get('port')
    port = _int(port)
    if port is not None and not ports:
        ports = ['%d-%d' % (port, port + 31)] if _flag(mesh_options.get('listen_port_auto')) else [port]
    return Claims(
        mesh=mesh, interface=mesh_options.get('interface') or record.get('interface') or rules.get('interface'),
        ports=ports, prefix=address.get('prefix') or record.get('prefix'),
        ipv4_prefix=mesh_options.get('ipv4_prefix') or record.get('ipv4_prefix'),
        route_table=_given(rules, 'route_table', settings.ROUTE_TABLE),
        rule_priority=_given(rules, 'rule_priority', settings.RULE_PRIORITY),
        wg_mark=_given(rules, 'wg_mark', nft_objects.DEFAULT_WG_MARK),
        route_mark=_given(rules, 'route_mark', nft_objects.DEFAULT_ROUTE_MARK),
        mark_mask=_given(rules, 'mark_mask', nft_objects.DEFAULT_MARK_MASK), table=rules.get('table'),
        kubernetes=_flag(mesh_options.get('kubernetes')) or bool(mesh_options.get('kubeconfig')))


def _overlap(ranges, others):
    return any(a <= d and c <= b for a, b in ranges for c, d in others)


def conflicts(mine, others):
    """Why mine cannot share the host with others ([Claims]): one sentence per clash, naming both meshes
    and the setting to change."""
    out = []
    for other in others:
        if other.mesh == mine.mesh:
            continue
        label = 'mesh %s and mesh %s' % (mine.mesh or '(default)', other.mesh or '(default)')
        if mine.interface and mine.interface == other.interface:
            out.append('%s both use interface %s (wglan_interface)' % (label, mine.interface))
        if _overlap(mine.ports, other.ports):
            out.append('%s both listen on UDP ports %s / %s (wglan_port)'
                       % (label, mine.as_dict().get('ports'), other.as_dict().get('ports')))
        for name, var in (('prefix', 'wglan_prefix'), ('ipv4_prefix', 'wglan_ipv4_prefix')):
            a, b = getattr(mine, name), getattr(other, name)
            if a is not None and b is not None and a.version == b.version and a.overlaps(b):
                out.append('%s have overlapping prefixes %s and %s (%s)' % (label, a, b, var))
        for name, var in (('route_table', 'wglan_route_table'), ('rule_priority', 'wglan_rule_priority'),
                          ('table', 'wglan_mesh')):
            if getattr(mine, name) is not None and getattr(mine, name) == getattr(other, name):
                out.append('%s both use %s %s (%s)' % (label, name.replace('_', ' '), getattr(mine, name), var))
        if mine.kubernetes and other.kubernetes:
            out.append('%s both use the Kubernetes source (wglan_kubernetes): a Node\'s annotations hold the record '
                       'of one mesh; use the discovery service or the inventory for the other' % label)
        if None not in (mine.wg_mark, other.wg_mark) and mine.wg_mark != other.wg_mark:
            out.append('%s mark their WireGuard packets 0x%x and 0x%x: every mesh on a host uses the same '
                       'wglan_fwmark (each mesh then leaves every mesh\'s WireGuard packets alone)'
                       % (label, mine.wg_mark, other.wg_mark))
        if None not in (mine.route_mark, mine.mark_mask, other.route_mark, other.mark_mask) and (
                mine.route_mark & other.mark_mask or other.route_mark & mine.mark_mask):
            out.append('%s: the route mark of each must lie outside the other\'s mark mask (0x%x in 0x%x, 0x%x in '
                       '0x%x; wglan_route_mark, wglan_mark_mask)'
                       % (label, mine.route_mark, mine.mark_mask, other.route_mark, other.mark_mask))
    return out
