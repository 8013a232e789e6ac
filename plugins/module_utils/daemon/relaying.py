# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Relays, both ways: the relays this node uses for the peers it cannot reach directly (chosen with
model.relay.agree), and the relay table it keeps when it offers to relay for others."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import time

from ansible_collections.wglan.mesh.plugins.module_utils.daemon.common import log, name_of
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.host import nftables
from ansible_collections.wglan.mesh.plugins.module_utils.model import nft_objects, relay

# Seconds between two reads of the relay's counters (an nft call) for the status and metrics.
RELAY_LOAD_EVERY = 10.0


class Relays:
    """The relays this node uses, and what its record asks of its peers."""

    def __init__(self):
        self.relays = None          # {peer key: relay key}; read back at the first reconcile (restarts keep them)
        self.requests = None        # {peer key: relay key} this node's record says (relay.agree)
        self.answering = set()      # relayed peers that answer directly again (handshake on their entry)
        self.was_stale = set()
        self.last_direct = {}       # public key -> the endpoint it was last up at directly

    def restore(self, state):
        """What the watcher's state file held (a restart keeps its relays)."""
        self.relays, self.requests = state.relays, state.published

    def favourites(self, seen, records):
        """{relayed peer: the endpoint its relay sees it at now}, or where it was last reached directly
        (Sweeper.endpoints tries it two slots of three: the likeliest path to open again)."""
        by_key = dict((r.public_key, r) for r in records or [])
        for key, endpoint in seen.items():  # (peers up, where the device sees them)
            if key not in (self.relays or {}) and endpoint:
                self.last_direct[key] = endpoint
        out = {}
        for key, via in (self.relays or {}).items():
            observer = by_key.get(via)
            endpoint = observer.observed.get(key) if observer is not None else None
            endpoint = endpoint or self.last_direct.get(key)
            if endpoint:
                out[key] = endpoint
        return out

    def choose(self, own_key, peers, records, wanted, up, stale):
        """Relay the peers in wanted (not up: just stale, or not up after a full sweep) through the
        relay both ends agree on (relay.agree); direct again once up and neither end asks for a relay.
        Returns (news: peers whose path just broke or that answer directly again, whether what this
        node's record asks for changed)."""
        keys = set(p.public_key for p in peers)
        before = dict(self.relays)
        answering = set(key for key in self.relays or {} if key in up)
        news = (stale - self.was_stale) | (answering - self.answering)
        self.answering, self.was_stale = answering, set(stale)
        mine = [r for r in records or [] if r.public_key in keys or r.public_key == own_key]
        use, publish = relay.agree(own_key, wanted, mine, up, self.relays)
        self.relays = dict((k, v) for k, v in use.items() if k in keys)
        asked = publish != self.requests
        self.requests = publish
        for key in sorted(set(before) | set(self.relays)):
            if before.get(key) != self.relays.get(key):
                via = self.relays.get(key)
                log('peer %s: %s' % (name_of(key, peers), 'via %s' % name_of(via, peers) if via
                                     else 'direct' if key in up else 'no relay'))
        return news, asked


class RelayTable:
    """This node as a relay: the netdev table that forwards what arrives on the interface for a peer
    it reaches directly back into it (nftables.ensure_relay_table), IPv6 and IPv4, no sysctl."""

    def __init__(self, keeper=None):
        self.keeper = keeper        # rules.Keeper: whether a check is due (None: every time)
        self.made_for = None        # (interface, prefixes) the table was last made for
        self.nets = None            # the allowed IPs of the peers reached directly
        self.error = None
        self.forwarding_warned = False
        self.relay_ipv6_noted = False
        self.load = None            # (monotonic time, rows) of the counters, last read

    def ensure(self, ifname, options):
        """With relay on, the table (its check at every reconcile); else none. The interface's IPv4
        forwarding switch, which versions before 0.5 turned on, goes back off where the host itself
        does not forward (so it was them)."""
        if not options['relay']:
            self.update(ifname, None, options['table'], force=True)
            return
        if options['relay_ipv6'] and not self.relay_ipv6_noted:
            log('relay_ipv6 is no longer needed and does nothing: a relay forwards without the '
                'host\'s forwarding switches')
            self.relay_ipv6_noted = True
        own = 'ipv4/conf/%s/forwarding' % ifname
        if _sysctl(own) == '1' and _sysctl('ipv4/conf/all/forwarding') == '0':
            try:
                with open('/proc/sys/net/' + own, 'w') as handle:
                    handle.write('0')
                log('/proc/sys/net/%s set back to 0: the relay table forwards IPv4 without it' % own)
            except OSError as exc:
                if not self.forwarding_warned:
                    log('cannot turn /proc/sys/net/%s back off: %s' % (own, exc.strerror or exc))
                    self.forwarding_warned = True
        self.update(ifname, self.nets, options['table'], force=True)

    def update(self, ifname, nets, table, force=False):
        """The table for nets (None: no table). Only when they changed, unless force."""
        wanted = None if nets is None else (ifname, tuple(nets))
        if wanted == self.made_for and (not force or self.keeper is not None and not self.keeper.due((wanted, table))):
            return
        try:
            if nftables.ensure_relay_table(ifname, nets or [], nets is not None, nft_objects.relay_table_name(table)):
                log('relay table %s' % ('removed' if nets is None else 'set for %d prefixes' % len(nets)))
            self.made_for = wanted
            self.error = None
            if self.keeper is not None:
                self.keeper.looked((wanted, table))
        except WglanError as exc:
            if str(exc) != self.error:  # once, not every second
                log('cannot relay: %s' % exc)
                self.error = str(exc)
            self.made_for = None

    def forwarded(self, peers, options):
        """What this node forwarded as a relay, per pair of peers (the table's counters):
        [{source, destination, packets, bytes}]. Read at most every RELAY_LOAD_EVERY s."""
        if not options['relay']:
            return []
        ticks = time.monotonic()
        if self.load is not None and ticks - self.load[0] < RELAY_LOAD_EVERY:
            return self.load[1]
        try:
            counted = nftables.relay_load(nft_objects.relay_table_name(options['table']))
        except WglanError:
            counted = {}
        owner = _owners(peers)
        load = {}
        for (source, destination), (packets, octets) in counted.items():
            pair = (owner(source), owner(destination))
            total = load.get(pair, (0, 0))
            load[pair] = (total[0] + packets, total[1] + octets)
        rows = [dict(source=s, destination=d, packets=p, bytes=b) for (s, d), (p, b) in sorted(load.items())]
        self.load = (ticks, rows)
        return rows


def _owners(peers):
    """address text -> the name of the peer that holds it (the text itself when none does)."""
    owners = []
    for peer in peers:
        owners.extend((net, peer.name or peer.public_key[:8]) for net in peer.allowed_ips)

    def owner(text):
        try:
            address = ipaddress.ip_address(text)
        except ValueError:
            return text
        return next((name for net, name in owners if address in net), text)
    return owner


def _sysctl(name):
    try:
        with open('/proc/sys/net/' + name) as handle:
            return handle.read().strip()
    except OSError:
        return None
