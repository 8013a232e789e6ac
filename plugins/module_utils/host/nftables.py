# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Applies the nftables tables (nft -j): the routing table wglan owns and the relay table."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import json
import socket
import subprocess
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.model.nft_objects import FAMILY
from ansible_collections.wglan.mesh.plugins.module_utils.model.nft_objects import RELAY_FAMILIES
from ansible_collections.wglan.mesh.plugins.module_utils.model.nft_objects import RELAY_TABLE
from ansible_collections.wglan.mesh.plugins.module_utils.model.nft_objects import _SET4
from ansible_collections.wglan.mesh.plugins.module_utils.model.nft_objects import _SET6
from ansible_collections.wglan.mesh.plugins.module_utils.model.nft_objects import _relay_elements
from ansible_collections.wglan.mesh.plugins.module_utils.model.nft_objects import _relay_nets
from ansible_collections.wglan.mesh.plugins.module_utils.model.nft_objects import canonical
from ansible_collections.wglan.mesh.plugins.module_utils.model.nft_objects import delete_commands
from ansible_collections.wglan.mesh.plugins.module_utils.model.nft_objects import desired_objects
from ansible_collections.wglan.mesh.plugins.module_utils.model.nft_objects import filter_view
from ansible_collections.wglan.mesh.plugins.module_utils.model.nft_objects import relay_fingerprint
from ansible_collections.wglan.mesh.plugins.module_utils.model.nft_objects import relay_ruleset
from ansible_collections.wglan.mesh.plugins.module_utils.model.nft_objects import replace_commands
from ansible_collections.wglan.mesh.plugins.module_utils.model.nft_objects import target_view


NFT = 'nft'


def _run_nft(args, payload=None):
    try:
        proc = subprocess.run([NFT] + args, input=payload, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=60, check=False)
    except FileNotFoundError:
        raise WglanError('nft (nftables) is not installed')
    except subprocess.TimeoutExpired:
        raise WglanError('nft did not finish within 60s')
    return proc


def read_table(table):
    """The table's objects as nft lists them, or None when it does not exist."""
    proc = _run_nft(['-j', 'list', 'table', FAMILY, table])
    if proc.returncode != 0:
        if 'No such file or directory' in proc.stderr or 'does not exist' in proc.stderr:
            return None
        raise WglanError('nft list table failed: %s' % proc.stderr.strip())
    try:
        return json.loads(proc.stdout)['nftables']
    except (ValueError, KeyError):
        raise WglanError('nft printed JSON this module cannot read')


def apply_commands(commands):
    proc = _run_nft(['-j', '-f', '-'], json.dumps(commands))
    if proc.returncode != 0:
        raise WglanError('nft refused the ruleset (nothing was changed): %s' % proc.stderr.strip())


def ensure_table(config, present=True, check_mode=False):
    """Make the table match config (or be gone). Returns (changed, before, after) target views.

    Anything that differs, set elements or rules, replaces the whole table in
    one transaction: there is never a moment with half a ruleset.
    """
    current = read_table(config.table)
    before = None if current is None else target_view(current)
    if not present:
        if current is not None and not check_mode:
            apply_commands(delete_commands(config.table))
        return current is not None, before, None
    if config.keep_targets:
        held = target_view(current) if current is not None else {_SET4: [], _SET6: []}
        config.targets4 = [ipaddress.ip_network(n) for n in held[_SET4]]
        config.targets6 = [ipaddress.ip_network(n) for n in held[_SET6]]
        if config.allow is None and current is not None:
            config.kept = filter_view(current)  # the watcher's segment filter: a run keeps it as well
    wanted = desired_objects(config)
    after = target_view(wanted)
    if current is not None and canonical(current) == canonical(wanted):
        return False, before, after
    if not check_mode:
        apply_commands(replace_commands(config))
    return True, before, after


def _table_comment(family, table):
    """The table's comment; '' when it has none, None when the table does not exist. (Read from the
    text form: nft 1.0.6 leaves comments out of its JSON.)"""
    proc = _run_nft(['-t', 'list', 'table', family, table])
    if proc.returncode != 0:
        return None
    for line in proc.stdout.splitlines()[1:]:
        line = line.strip()
        if line.startswith('comment "') and line.endswith('"'):
            return line[len('comment "'):-1]
        if line.endswith('{') or line == '}':
            break
    return ''


def ensure_relay_table(ifname, nets, present=True, table=RELAY_TABLE):
    """Make the relay table forward, on ifname, what arrives for nets (the IPv6 and IPv4 allowed IPs
    of the peers this node reaches directly), or be gone. Returns whether the table was made (or
    removed). A table made for this very link keeps its counters: only its sets of destinations are
    replaced (in one transaction)."""
    comment = _table_comment('netdev', table)
    if not present:
        if comment is None:
            return False
        proc = _run_nft(['delete', 'table', 'netdev', table])
        if proc.returncode != 0:
            raise WglanError('nft delete table netdev %s failed: %s' % (table, proc.stderr.strip()))
        return True
    try:
        ifindex = socket.if_nametoindex(ifname)  # (not /sys: a container's may show another namespace)
    except OSError:
        raise WglanError('no interface %s to relay on' % ifname)
    by_family = _relay_nets(nets)
    if comment == relay_fingerprint(ifname, ifindex):
        payload = ''
        for version, _kind in RELAY_FAMILIES:
            payload += 'flush set netdev %s peers%d\n' % (table, version)
            if by_family[version]:
                payload += 'add element netdev %s peers%d { %s }\n' % (table, version,
                                                                       _relay_elements(by_family[version]))
        made = False
    else:
        payload, made = relay_ruleset(ifname, ifindex, nets, table), True
    proc = _run_nft(['-f', '-'], payload)
    if proc.returncode != 0:
        raise WglanError('nft refused the relay table (nothing was changed): %s' % proc.stderr.strip())
    return made


def relay_load(table=RELAY_TABLE):
    """{(source address, destination address): (packets, bytes)} the relay forwarded, both families;
    {} without a table."""
    out = {}
    proc = _run_nft(['-j', 'list', 'table', 'netdev', table])  # (one nft for both families' sets)
    if proc.returncode != 0:
        return out
    try:
        objects = json.loads(proc.stdout)['nftables']
    except (ValueError, KeyError, TypeError):
        return out
    loads = set('load%d' % version for version, _kind in RELAY_FAMILIES)
    for obj in objects:
        if not isinstance(obj, dict) or not isinstance(obj.get('set'), dict) or obj['set'].get('name') not in loads:
            continue
        for entry in obj['set'].get('elem') or []:
            elem = entry.get('elem') if isinstance(entry, dict) else None
            if not isinstance(elem, dict):
                continue
            pair = (elem.get('val') or {}).get('concat') if isinstance(elem.get('val'), dict) else None
            counter = elem.get('counter') or {}
            if isinstance(pair, list) and len(pair) == 2:
                out[(str(pair[0]), str(pair[1]))] = (int(counter.get('packets', 0)),
                                                     int(counter.get('bytes', 0)))
    return out
