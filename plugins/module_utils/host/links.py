# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Network links and their addresses through rtnetlink (pyroute2 IPRoute)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError

try:
    from pyroute2 import IPRoute
    from pyroute2.netlink.exceptions import NetlinkError
    HAS_PYROUTE2 = True
    PYROUTE2_IMPORT_ERROR = None
except ImportError as exc:  # pragma: no cover - exercised by the import sanity test
    HAS_PYROUTE2 = False
    PYROUTE2_IMPORT_ERROR = exc

    class NetlinkError(Exception):
        pass

IFF_UP = 0x1
IFA_F_NODAD = 0x02
_IFNAME_RE = re.compile(r'^[A-Za-z0-9_.-]{1,15}$')


def validate_ifname(name):
    if not isinstance(name, str) or not _IFNAME_RE.match(name) or name in ('.', '..'):
        raise WglanError('invalid interface name %r: 1-15 characters of letters, digits, "_", "-", "."' % (name,))
    return name


class Link:
    __slots__ = ('index', 'name', 'kind', 'mtu', 'up', 'addresses')

    def __init__(self, index, name, kind, mtu, up, addresses):
        self.index = index
        self.name = name
        self.kind = kind
        self.mtu = mtu
        self.up = up
        self.addresses = addresses


def _require():
    if not HAS_PYROUTE2:
        raise WglanError('the Python library "pyroute2" is required')


class Links:
    """A short-lived rtnetlink session. Use as a context manager. The socket is opened at its first use:
    a session that finds nothing to do (the watcher's apply, every second) opens none."""

    def __init__(self):
        _require()
        self._ipr = None

    @property
    def ipr(self):
        if self._ipr is None:
            self._ipr = IPRoute()
        return self._ipr

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self._ipr is not None:
            self._ipr.close()
            self._ipr = None

    def _get_link_msg(self, name):
        try:
            return self.ipr.link('get', ifname=name)[0]
        except NetlinkError as exc:
            if getattr(exc, 'code', None) == 19:  # ENODEV
                return None
            raise WglanError('cannot read link %s: %s' % (name, exc))

    def index_of(self, name):
        msg = self._get_link_msg(name)
        return None if msg is None else msg['index']

    def get(self, name, with_addresses=True):
        """Link or None. Addresses exclude IPv6 link-local ones (the kernel owns those)."""
        msg = self._get_link_msg(name)
        if msg is None:
            return None
        index = msg['index']
        kind = None
        info = msg.get_attr('IFLA_LINKINFO')
        if info is not None:
            kind = info.get_attr('IFLA_INFO_KIND')
        addresses = []
        if with_addresses:
            for amsg in self.ipr.get_addr(index=index):
                address = amsg.get_attr('IFA_ADDRESS')
                if address is None:
                    continue
                iface = ipaddress.ip_interface('%s/%d' % (address, amsg['prefixlen']))
                if iface.version == 6 and iface.ip.is_link_local:
                    continue
                addresses.append(iface)
        return Link(index, name, kind, msg.get_attr('IFLA_MTU'), bool(msg['flags'] & IFF_UP), addresses)

    def create_wireguard(self, name):
        """Create a kernel WireGuard link. Returns False when the kernel has no WireGuard."""
        try:
            self.ipr.link('add', ifname=name, kind='wireguard')
        except NetlinkError as exc:
            # EOPNOTSUPP / ENOENT-style answers: no wireguard module for this kind.
            if getattr(exc, 'code', None) in (95, 2, 19, 22):
                return False
            raise WglanError('cannot create WireGuard link %s: %s' % (name, exc))
        return True

    def delete(self, name):
        index = self.index_of(name)
        if index is not None:
            try:
                self.ipr.link('del', index=index)
            except NetlinkError as exc:
                if getattr(exc, 'code', None) != 19:
                    raise WglanError('cannot delete link %s: %s' % (name, exc))

    def set_mtu(self, index, mtu):
        try:
            self.ipr.link('set', index=index, mtu=mtu)
        except NetlinkError as exc:
            raise WglanError('cannot set MTU %d: %s' % (mtu, exc))

    def set_up(self, index):
        self.ipr.link('set', index=index, state='up')

    def add_address(self, index, iface):
        try:
            self.ipr.addr('add', index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen,
                          flags=IFA_F_NODAD if iface.version == 6 else 0)
        except NetlinkError as exc:
            if getattr(exc, 'code', None) != 17:  # EEXIST
                raise WglanError('cannot add address %s: %s' % (iface, exc))

    def del_address(self, index, iface):
        try:
            self.ipr.addr('del', index=index, address=str(iface.ip), prefixlen=iface.network.prefixlen)
        except NetlinkError as exc:
            if getattr(exc, 'code', None) not in (99, 19):  # EADDRNOTAVAIL, ENODEV
                raise WglanError('cannot remove address %s: %s' % (iface, exc))


def parse_interface_address(value):
    """'0200:1001::1/64' or '192.0.2.1/24' -> ip_interface; a bare address gets a host length."""
    try:
        return ipaddress.ip_interface(str(value).strip())
    except ValueError as exc:
        raise WglanError('invalid interface address %r: %s' % (value, exc))
