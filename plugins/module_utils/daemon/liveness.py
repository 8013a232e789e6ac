# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Which peers are up, as the watcher sees them every second (the definitions: model.liveness).

A peer up by its handshake is not up for the watcher while it is silent (stale) or, after a move
(its or this node's), until something came from it since (suspect).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import socket
import struct
import time

from ansible_collections.wglan.mesh.plugins.module_utils.daemon.common import log, name_of
from ansible_collections.wglan.mesh.plugins.module_utils.model import liveness

# Seconds a probed peer has to answer before it counts as stale (a round trip, and WireGuard's
# handshake when the session must be renewed first).
PROBE_WAIT = 2.0


def _place(place):
    ips, seen = place
    return '%s%s' % (', '.join(ips) or 'no address', ' (seen at %s)' % seen if seen else '')


class Liveness:
    def __init__(self):
        # public key -> (rx bytes, monotonic time they last changed, whether a change was seen: the
        # first sight of a peer is not news from it, bytes sent by then)
        self.rx_seen = {}
        self.stale = set()          # peers with a recent handshake but nothing received for too long
        self.places = {}            # public key -> where its record says it is (node IPs, address seen by the service)
        # public key -> (wall time, monotonic time, whether the peer moved (else this node did)): it counts
        # as up again only once something came from it since (a keepalive on the old session will do)
        self.suspect = {}
        self.heard_again = set()    # peers whose suspicion ended this tick (they get a keepalive)
        self.probed = {}            # public key -> monotonic time of the probe sent in its current silence
        self.probes = 0             # probes sent since the start (a healthy mesh at rest sends none)
        self.peers = []             # the peers of the last reconcile (names in the log)

    def moved(self):
        """Peers whose record shows a new place (their endpoint candidates reorder: model.plan)."""
        return set(key for key, mark in self.suspect.items() if mark[2])

    def this_node_moved(self):
        """This node's addresses changed: every peer handshakes again before it counts as up."""
        for key in self.places:
            self.suspect[key] = (time.time(), time.monotonic(), False)

    def notice_moves(self, me, records, peers):
        """A peer whose record shows new addresses (it moved) counts as up only once heard from since
        (see alive): the path the device still uses may be one that led to its old place."""
        now = time.time()
        places = {}
        self.peers = peers
        for record in records:
            if me is not None and record.public_key == me.public_key:
                continue
            place = (sorted(str(i.ip) for i in record.node_ips), str(record.public_ip or ''))
            places[record.public_key] = place
            before = self.places.get(record.public_key)
            if before is not None and before != place:
                log('peer %s moved: %s -> %s' % (name_of(record.public_key, peers), _place(before), _place(place)))
                self.suspect[record.public_key] = (now, time.monotonic(), True)
        self.places = places
        known = set(places) | set(p.public_key for p in peers)
        for key in list(self.suspect):
            if key not in known:
                del self.suspect[key]

    def alive(self, found, candidates):
        """Public keys of the peers that are up: a handshake in the last 275 s and, for peers built from
        records (they keep a persistent keepalive, and so does the other end), something received
        lately (model.liveness.silence_verdict; a silent peer gets one probe first, an ICMPv6 echo to
        its mesh address through the tunnel, which it answers at once: a path that breaks under
        traffic is noticed in about 7 s instead of 275 s)."""
        self.stale = set()
        self.heard_again = set()
        if found is None:
            return set()
        state = found[2]
        now, ticks = time.time(), time.monotonic()
        alive = set()
        for peer in state.peers:
            stats = state.stats_of(peer)
            seen = self._heard(peer.public_key, stats, ticks)
            if not self._trusted(peer.public_key, stats, seen):
                continue
            if stats.state(now) != liveness.UP:
                continue
            if peer.public_key in candidates and peer.persistent_keepalive and self._silent(
                    peer, seen[1], ticks, stats.tx_bytes - seen[3]):
                self.stale.add(peer.public_key)
                continue
            alive.add(peer.public_key)
        on_device = set(p.public_key for p in state.peers)
        for key in list(self.rx_seen):
            if key not in on_device:
                del self.rx_seen[key]
                self.probed.pop(key, None)
        return alive

    def _heard(self, key, stats, ticks):
        seen = self.rx_seen.get(key)
        if seen is None or seen[0] != stats.rx_bytes:
            # (bytes received, when they last moved, whether seen before, bytes sent by then)
            self.rx_seen[key] = seen = (stats.rx_bytes, ticks, seen is not None, stats.tx_bytes)
        return seen

    def _trusted(self, key, stats, seen):
        """False while the peer is suspect (a move, not heard from since)."""
        mark = self.suspect.get(key)
        if mark is None:
            return True
        if stats.last_handshake > mark[0] or (seen[2] and seen[1] > mark[1]):
            # Heard from since it (or this node) moved. Say hello back at once: it may have
            # learned of the move later than this node and be waiting to hear from it.
            del self.suspect[key]
            self.heard_again.add(key)
            return True
        return False

    def _silent(self, peer, heard, ticks, sent=0):
        """Whether peer (up by its handshake) has been silent too long. Sends the probe.
        sent: bytes sent to the peer since something last came from it."""
        key, keepalive = peer.public_key, peer.persistent_keepalive
        silence = ticks - heard
        verdict = liveness.silence_verdict(silence, keepalive, sent)
        if verdict == 'dead':
            return True
        if verdict == 'fine':
            self.probed.pop(key, None)
            return False
        probed = self.probed.get(key)
        if probed is None or probed < heard:
            self.probed[key] = ticks
            log('peer %s: silent for %.0f s%s, probing' % (name_of(key, self.peers), silence,
                                                           ' with data unanswered'
                                                           if liveness.unanswered(sent, silence, keepalive) else ''))
            self.probe(peer)
            return False
        return ticks - probed > PROBE_WAIT

    def probe(self, peer):
        """One ICMPv6 echo request to the peer's mesh address (its first IPv6 /128), which the routing
        rules send into the tunnel while the peer is up. Best effort."""
        address = next((n.network_address for n in peer.allowed_ips if n.version == 6 and n.prefixlen == 128), None)
        if address is None:
            return
        self.probes += 1
        try:
            sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        except OSError as exc:
            log('cannot probe peers: %s' % exc)
            return
        try:
            sock.setblocking(False)
            # type 128 (echo request), code 0, checksum (the kernel fills it in), identifier, sequence
            sock.sendto(struct.pack('!BBHHH', 128, 0, 0, 0x776c, self.probes & 0xFFFF) + b'wglan probe',
                        (str(address), 0))
        except OSError:
            pass
        finally:
            sock.close()
