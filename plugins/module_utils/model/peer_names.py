# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Names for the mesh's nodes (pure): <name>.<domain> -> the node's mesh addresses, as a block of lines
for /etc/hosts that one marker pair delimits, so that the lines around it are never touched."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import re

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError

DEFAULT_DOMAIN = 'wglan.internal'
_LABEL = re.compile(r'^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$')


def parse_domain(domain):
    """A DNS domain (lower case, no trailing dot) or WglanError."""
    text = str(domain or '').strip().rstrip('.').lower()
    if not text or len(text) > 200 or not all(_LABEL.match(label) for label in text.split('.')):
        raise WglanError('invalid names domain %r: labels of letters, digits and inner hyphens, joined by dots'
                         % (domain,))
    return text


def host_name(name, domain):
    """<name>.<domain> for a node name, or None when the name is not a valid DNS name (an inventory
    name with spaces or underscores, say)."""
    text = str(name or '').strip().rstrip('.').lower()
    if not text or not all(_LABEL.match(label) for label in text.split('.')):
        return None
    full = '%s.%s' % (text, domain)
    return full if len(full) <= 253 else None


def entries(me, peers, records, domain, own_address4=None):
    """[(address, host name)] of this node (me: its record) and of every peer built from a record, each
    with the mesh addresses routed to it (an address lost to another peer in an overlap is not named).
    Returns (entries, names skipped)."""
    out, skipped, named = [], [], set()

    def add(name, addresses):
        full = host_name(name, domain)
        if full is None:
            skipped.append(name)
            return
        if full in named:
            return
        named.add(full)
        out.extend((ip, full) for ip in addresses if ip is not None)

    if me is not None and me.name:
        add(me.name, [me.address, own_address4 if own_address4 is not None else me.address4])
    by_key = dict((r.public_key, r) for r in records or ())
    for peer in sorted(peers, key=lambda p: p.name or ''):
        record = by_key.get(peer.public_key)
        if record is None:
            continue
        routed = set(peer.allowed_ips)
        add(record.name, [ip for ip in (record.address, record.address4)
                          if ip is not None and ipaddress.ip_network(ip) in routed])
    out.sort(key=lambda item: (item[1], item[0].version, int(item[0])))
    return out, sorted(set(skipped))


def markers(tag):
    return ('# BEGIN wglan.mesh %s: names of the mesh, kept by wglan.mesh (edits here are replaced)' % tag,
            '# END wglan.mesh %s' % tag)


def block(entries_, tag):
    """The managed lines (no trailing newline): one line per address, the markers around them."""
    begin, end = markers(tag)
    return '\n'.join([begin] + ['%s\t%s' % (ip, name) for ip, name in entries_] + [end])


def with_block(text, entries_, tag):
    """text (a hosts file) with the block of tag set to entries_ (None: the block removed), every other
    line as it was. A block that lost its end marker is taken to end at the file's end."""
    begin, end = markers(tag)
    lines = text.split('\n')
    if lines and lines[-1] == '':
        lines.pop()
    start = next((i for i, line in enumerate(lines) if line.startswith('# BEGIN wglan.mesh %s:' % tag)), None)
    if start is None:
        kept, at = lines, len(lines)
    else:
        stop = next((i for i in range(start + 1, len(lines)) if lines[i] == end), len(lines) - 1)
        kept, at = lines[:start] + lines[stop + 1:], start
    if entries_ is not None:
        kept = kept[:at] + block(entries_, tag).split('\n') + kept[at:]
    return '\n'.join(kept) + '\n' if kept else ''
