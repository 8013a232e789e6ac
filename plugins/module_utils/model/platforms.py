# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The distributions the collection supports, and the refusal a node call gives on any other (pure)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

# os-release ID: (VERSION_ID, ...). Debian's are the lab's (tests/lab: debootstrap of each release);
# Ubuntu's take the same packages from the same names, and are not in the lab.
SUPPORTED = (
    ('debian', 'Debian', ('12', '13')),
    ('ubuntu', 'Ubuntu', ('22.04', '24.04')),
)

NEEDS = ('Linux 5.6 or later with WireGuard (or wireguard-go)', 'nftables', 'iproute2', 'wireguard-tools',
         'systemd (for the watcher)', 'Python 3.9 or later with cryptography and pyroute2 (jmespath, kubernetes '
         'and dnspython for the features that use them)')


def parse_os_release(text):
    """{FIELD: value} of an os-release file's text (quotes taken off; lines that are not FIELD=value ignored)."""
    fields = {}
    for line in (text or '').splitlines():
        name, sep, value = line.strip().partition('=')
        if sep and name and not name.startswith('#'):
            fields[name] = value.strip().strip('"\'')
    return fields


def supported_names():
    return '; '.join('%s %s' % (label, ' and '.join(versions)) for _id, label, versions in SUPPORTED)


def refusal(fields):
    """None when the host (its os-release fields; {} when it has none) is a supported release, else the
    message a node call fails with before it changes anything."""
    ident, version = fields.get('ID', ''), fields.get('VERSION_ID', '')
    for known, _label, versions in SUPPORTED:
        if ident == known and version in versions:
            return None
    what = fields.get('PRETTY_NAME') or ' '.join(v for v in (ident, version) if v) or 'a host without /etc/os-release'
    return ('wglan.mesh supports %s; this host is %s (nothing was changed). On another distribution it needs %s, '
            'installed by you; then set wglan_supported_os_only: false (the node role), or supported_os_only: false '
            '(wglan_node), to go on.' % (supported_names(), what, ', '.join(NEEDS)))
