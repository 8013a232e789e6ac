# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Holes for the mesh in the host's own firewall.

An accept in wglan's own table does not override another base chain's drop:
every base chain on a hook sees every packet, and one drop is final. So where
the admin's nftables has an input (or forward) chain whose policy drops, one
accept rule for what the mesh needs goes at the top of that chain, with a
comment that marks it as ours. Nothing else in the admin's tables is touched.

- plan_holes() is pure: the ruleset as `nft -j list ruleset` prints it, and
  what the mesh needs -> the nft commands that add what is missing and remove
  what is ours but no longer wanted.
- Tables that iptables-nft owns (ufw, Docker, plain iptables) are left alone:
  rules added there with nft confuse iptables. ufw and firewalld are opened
  through their own tools (the role uses their Ansible modules).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import shutil
import subprocess

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.host.nftables import apply_commands, _run_nft
from ansible_collections.wglan.mesh.plugins.module_utils.model.nft_objects import DEFAULT_TABLE

COMMENT_PREFIX = 'wglan.mesh:'
FAMILIES = ('inet', 'ip', 'ip6')
# iptables-nft's chains: upper-case names in its tables.
IPTABLES_TABLES = ('filter', 'mangle', 'raw', 'security', 'nat')
# Tables a firewall daemon rewrites whenever it reloads: opened through the daemon itself (the firewall role).
DAEMON_TABLES = {'firewalld': 'managed by firewalld'}


class Hole:
    """One accept rule: what it matches, in the chains of which hook, and its marking comment."""

    def __init__(self, owner, hook, label, expr):
        self.hook = hook
        self.comment = '%s%s %s' % (COMMENT_PREFIX, owner, label)
        self.expr = expr


def _match(left, right):
    return {'match': {'op': '==', 'left': left, 'right': right}}


def port_range(value):
    """A port (51820) or a range of ports ('51820-51851') -> (first, last); WglanError when it is neither."""
    text = str(value).strip()
    first, _sep, last = text.partition('-')
    try:
        low, high = int(first), int(last or first)
    except ValueError:
        raise WglanError('port %r is neither a port nor a range of ports (51820-51851)' % (value,))
    if isinstance(value, bool) or not 0 < low <= high <= 65535:
        raise WglanError('port %r is not between 1 and 65535 (a range: low-high)' % (value,))
    return low, high


def wanted_holes(owner, udp_ports=(), tcp_ports=(), forward_interface=None):
    """The rules the mesh needs in drop-by-default chains. owner: the interface (or 'discovery').
    A port is a number or a range ('51820-51851')."""
    holes = []
    for proto, ports in (('udp', udp_ports), ('tcp', tcp_ports)):
        for low, high in sorted(set(port_range(p) for p in ports)):
            label = '%s/%d' % (proto, low) if low == high else '%s/%d-%d' % (proto, low, high)
            right = low if low == high else {'range': [low, high]}
            holes.append(Hole(owner, 'input', label,
                              [_match({'payload': {'protocol': proto, 'field': 'dport'}}, right), {'accept': None}]))
    if forward_interface:
        # a relay: what arrives on the mesh link for another member leaves on it again
        holes.append(Hole(owner, 'forward', 'relay',
                          [_match({'meta': {'key': 'iifname'}}, forward_interface),
                           _match({'meta': {'key': 'oifname'}}, forward_interface), {'accept': None}]))
    return holes


def _iptables_owned(chain):
    return chain['family'] in ('ip', 'ip6') and chain['table'] in IPTABLES_TABLES and chain['name'].isupper()


def drop_chains(ruleset, own_table=DEFAULT_TABLE):
    """(chains whose policy drops, by hook; chains left alone with why) from `nft -j list ruleset`."""
    chosen, skipped = [], []
    for obj in ruleset:
        chain = obj.get('chain')
        if not chain or chain.get('hook') not in ('input', 'forward') or chain.get('policy') != 'drop':
            continue
        if chain.get('family') not in FAMILIES or chain.get('table') == own_table:
            continue
        if _iptables_owned(chain):
            skipped.append(('%s %s %s' % (chain['family'], chain['table'], chain['name']), 'managed by iptables'))
            continue
        if chain['table'] in DAEMON_TABLES:
            skipped.append(('%s %s %s' % (chain['family'], chain['table'], chain['name']), DAEMON_TABLES[chain['table']]))
            continue
        chosen.append(chain)
    return chosen, skipped


def _our_rules(ruleset, owner):
    prefix = '%s%s ' % (COMMENT_PREFIX, owner)
    return [obj['rule'] for obj in ruleset
            if 'rule' in obj and str(obj['rule'].get('comment', '')).startswith(prefix)]


def chain_id(obj):
    """'family table chain' of a chain (its 'name') or of a rule (its 'chain')."""
    return '%s %s %s' % (obj['family'], obj['table'], obj.get('chain', obj.get('name')))


def plan_holes(ruleset, holes, own_table=DEFAULT_TABLE, owner=None):
    """(commands, added, removed, skipped): nft JSON commands making every drop chain hold exactly
    `holes` among the rules marked as owner's. Pure. added/removed: 'chain: comment' strings."""
    chains, skipped = drop_chains(ruleset, own_table)
    ours = _our_rules(ruleset, owner) if owner is not None else []
    commands, added, removed = [], [], []
    for chain in chains:
        present = set(r['comment'] for r in ours
                      if (r['family'], r['table'], r['chain']) == (chain['family'], chain['table'], chain['name']))
        for hole in holes:
            if hole.hook != chain['hook'] or hole.comment in present:
                continue
            commands.append({'insert': {'rule': {'family': chain['family'], 'table': chain['table'],
                                                 'chain': chain['name'], 'expr': hole.expr,
                                                 'comment': hole.comment}}})
            added.append('%s: %s' % (chain_id(chain), hole.comment))
    wanted = set((chain['family'], chain['table'], chain['name'], hole.comment)
                 for chain in chains for hole in holes if hole.hook == chain['hook'])
    for rule in ours:
        if (rule['family'], rule['table'], rule['chain'], rule['comment']) in wanted:
            continue
        commands.append({'delete': {'rule': {'family': rule['family'], 'table': rule['table'],
                                             'chain': rule['chain'], 'handle': rule['handle']}}})
        removed.append('%s: %s' % (chain_id(rule), rule['comment']))
    return commands, added, removed, skipped


def read_ruleset():
    proc = _run_nft(['-j', 'list', 'ruleset'])
    if proc.returncode != 0:
        raise WglanError('nft list ruleset failed: %s' % proc.stderr.strip())
    try:
        return json.loads(proc.stdout)['nftables']
    except (ValueError, KeyError):
        raise WglanError('nft printed JSON this module cannot read')


def ensure_holes(owner, holes, check_mode=False, own_table=DEFAULT_TABLE):
    """Apply plan_holes to the running ruleset. Returns (changed, added, removed, skipped)."""
    commands, added, removed, skipped = plan_holes(read_ruleset(), holes, own_table, owner)
    if commands and not check_mode:
        apply_commands({'nftables': commands})
    return bool(commands), added, removed, skipped


def _quiet(argv):
    try:
        return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=30, check=False)
    except (OSError, subprocess.TimeoutExpired):
        return None


def _ufw_enabled(conf='/etc/ufw/ufw.conf'):
    """What ufw itself reads to know whether it is on (ENABLED=yes): no need to run it (`ufw status` is
    a Python program that lists iptables, about half a second)."""
    try:
        with open(conf) as handle:
            return any(line.strip().replace(' ', '') in ('ENABLED=yes', 'ENABLED="yes"') for line in handle)
    except OSError:
        return False


def active_manager():
    """'ufw' or 'firewalld' when one of them runs the host's firewall, else 'nftables'."""
    if shutil.which('ufw') and _ufw_enabled():
        proc = _quiet(['ufw', 'status'])
        if proc is not None and proc.returncode == 0 and 'Status: active' in proc.stdout:
            return 'ufw'
    if shutil.which('firewall-cmd'):
        # systemd knows at once whether firewalld runs (firewall-cmd --state takes a second, over D-Bus);
        # without systemd, ask firewalld itself
        unit = _quiet(['systemctl', 'is-active', 'firewalld.service']) if shutil.which('systemctl') else None
        if unit is not None and unit.stdout.strip() in ('inactive', 'failed', 'unknown'):
            return 'nftables'
        proc = _quiet(['firewall-cmd', '--state'])
        if proc is not None and proc.returncode == 0 and proc.stdout.strip() == 'running':
            return 'firewalld'
    return 'nftables'
