# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a WireGuard device holds, as both backends report it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

# KubeSpan marks a peer down 275 s after its last handshake; WireGuard re-keys
# every 120 s while traffic flows, so a live peer never goes that long.
PEER_DOWN_AFTER = 275


class PeerStats:
    """Handshake time and counters. Kept as the device gave them, converted when read."""

    __slots__ = ('_handshake', '_rx', '_tx')

    def __init__(self, last_handshake=0, rx_bytes=0, tx_bytes=0):
        self._handshake = last_handshake
        self._rx = rx_bytes
        self._tx = tx_bytes

    @property
    def last_handshake(self):
        return int(self._handshake)

    @property
    def rx_bytes(self):
        return int(self._rx)

    @property
    def tx_bytes(self):
        return int(self._tx)

    def state(self, now=None):
        """'up' after a recent handshake, 'down' after an old one, 'unknown' if never."""
        if not self.last_handshake:
            return 'unknown'
        now = time.time() if now is None else now
        return 'up' if now - self.last_handshake <= PEER_DOWN_AFTER else 'down'


class DeviceState:
    """Device settings and running peers. private_key is raw bytes and never leaves the library."""

    def __init__(self, private_key=None, listen_port=0, fwmark=0, peers=None, stats=None):
        self.private_key = private_key
        self.listen_port = listen_port
        self.fwmark = fwmark
        self.peers = peers or []
        self.stats = stats or {}  # key_hex -> PeerStats

    def stats_of(self, peer):
        return self.stats.get(peer.key_hex) or PeerStats()
