# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a WireGuard device holds, as both backends report it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import time

from ansible_collections.wglan.mesh.plugins.module_utils.model.liveness import handshake_state


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
        """'up' after a recent handshake, 'down' after an old one, 'unknown' if never (liveness.handshake_state)."""
        return handshake_state(self.last_handshake, time.time() if now is None else now)


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
