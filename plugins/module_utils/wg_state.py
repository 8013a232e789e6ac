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
    __slots__ = ('last_handshake', 'rx_bytes', 'tx_bytes')

    def __init__(self, last_handshake=0, rx_bytes=0, tx_bytes=0):
        self.last_handshake = last_handshake
        self.rx_bytes = rx_bytes
        self.tx_bytes = tx_bytes

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
        self.stats = stats or {}
