# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The watcher's rules: the nftables table that marks traffic to the peers that are up, the policy
routing that sends it into the tunnel, and the holes in the host's own firewall."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.wglan.mesh.plugins.module_utils.daemon.common import log
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.host import firewall, kernel_notices, nftables, policy_routing
from ansible_collections.wglan.mesh.plugins.module_utils.model import nft_objects


# With the kernel's change notices, the table and the rule are looked at again when they report a change,
# and at least this often anyway (a notice the kernel never sent).
DRIFT_CHECK = 60.0


def check_due(wanted, last, noticed, now, drift=DRIFT_CHECK):
    """Whether to look at the table and rule now (pure). wanted: what they should be now; last: (what they
    were made to be, when) at the last look, or None; noticed: the kernel reported a change since (None:
    no notices to go by, so every time)."""
    if last is None or noticed is None or noticed or wanted != last[0]:
        return True
    return now - last[1] >= drift


def kernel_notices_for_rules():
    """The notices the watcher's kernel objects depend on: (nftables', rules' and routes')."""
    return kernel_notices.nftables_notices(), kernel_notices.routing_notices()


class Keeper:
    """When the watcher looks at kernel objects it owns (its nftables tables, its routing rule): when what
    it wants changed, when the kernel reports a change to what they depend on (an admin's
    `nft flush ruleset`, `ip rule del`), and every DRIFT_CHECK s. An idle watcher then spawns no `nft`
    (it did every second). notices: kernel_notices.Notices, shared with other keepers."""

    def __init__(self, notices, clock=time.monotonic):
        self.notices = tuple(notices)
        self.clock = clock
        self.last = None
        self.heard = None  # the notices' generations before the last look
        self.before = None  # the generations due() saw: those before the look it allowed

    def due(self, wanted):
        heard = tuple(n.generation() for n in self.notices)
        self.before = heard
        noticed = None if None in heard else heard != self.heard
        return check_due(wanted, self.last, noticed, self.clock())

    def looked(self, wanted):
        """What was looked at (and made so) now. Only the notices heard before the look are taken into
        account: one that came during it (an admin's `ip rule del` just after the rule was read) makes the
        next apply look again. A look without due() before it is looked at again at the next apply."""
        self.last = (wanted, self.clock())
        self.heard, self.before = self.before, None

    def forget(self):
        self.last = None


def apply_targets(config, routed, options, allow=None, keeper=None, holes_keeper=None):
    """The table with routed as its targets (and the segment filter letting in allow, when not None), and
    the routing rule. Returns whether either changed. keeper: a Keeper, which says when to look at all."""
    if not options['manage_rules']:
        return False
    wanted = (config.ifname, tuple(sorted(str(n) for n in routed)), options['table'], config.fwmark,
              options['route_mark'], options['mark_mask'], options['route_table'], options['rule_priority'],
              config.mtu, None if allow is None else tuple(a.key() for a in allow))
    if keeper is not None and not keeper.due(wanted):
        return False
    try:
        rules = nft_objects.RulesConfig(config.ifname, routed, options['table'], config.fwmark,
                                        options['route_mark'], options['mark_mask'], config.mtu, allow)
        changed, before, _after = nftables.ensure_table(rules, True, False)
        if changed and before is None:  # the table was gone: a flush takes the admin's holes too
            ensure_host_firewall(config, options, holes_keeper)
        routing = policy_routing.ensure(config.ifname, table=options['route_table'],
                                        priority=options['rule_priority'], mark=options['route_mark'],
                                        mask=options['mark_mask'], present=True, check_mode=False)
    except WglanError as exc:
        log('rules not updated: %s' % exc)
        if keeper is not None:
            keeper.forget()  # (looked at again at the next apply)
        return False
    if keeper is not None:
        keeper.looked(wanted)
    return bool(changed or routing)


def ensure_host_firewall(config, options, keeper=None):
    """The WireGuard port open in the admin's chains that drop by default (the role's wglan_firewall).
    keeper: a Keeper (of nftables' notices), which says when to look at all."""
    if not options['host_firewall']:
        return
    # (no forwarding hole: a relay forwards at the link's ingress, before any firewall chain; one that
    # an older version made goes, as every rule of ours that is not wanted)
    holes = firewall.wanted_holes(config.ifname, options['firewall_udp_ports'] or [config.listen_port])
    wanted = (config.ifname, tuple((h.hook, h.comment) for h in holes), options['table'])
    if keeper is not None and not keeper.due(wanted):
        return
    try:
        changed, added = firewall.ensure_holes(config.ifname, holes, own_table=options['table'])[:2]
    except WglanError as exc:
        log('host firewall not updated: %s' % exc)
        if keeper is not None:
            keeper.forget()
        return
    if keeper is not None:
        keeper.looked(wanted)
    if changed:
        log('host firewall: put back %s' % ', '.join(added))
