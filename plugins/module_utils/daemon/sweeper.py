# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Sweeping: which endpoint candidate each peer that is not up is on, tried in turn."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


def pick(options, index, favourite=None):
    """The endpoint for sweep slot index: options in turn; with a favourite, it takes slots 0 and 1 of
    every 3 and the other options take slot 2 in turn."""
    if favourite is None:
        return options[index % len(options)][0]
    others = [endpoint for endpoint, _reason in options if endpoint != favourite]
    if not others or index % 3 != 2:
        return favourite
    return others[(index // 3) % len(others)]


class Sweeper:
    """Which endpoint candidate each peer that is not up is on, since when, and how many it has tried."""

    def __init__(self, interval):
        self.interval = interval
        self.position = {}  # public key -> [index, since, tried]
        self.offered = {}   # public key -> the endpoints of its candidates at the last tick

    def endpoints(self, candidates, up, now, favourites=None):
        """({public key: endpoint} for peers that are not up, keys that moved to a new candidate this tick).

        A peer seen for the first time, or moved on after `interval` seconds
        without a handshake, counts as moved: the caller kicks a handshake.
        favourites: {public key: endpoint} most likely to work again (for a relayed peer,
        where the relay sees it now): it gets two slots of every three, the other
        candidates the third in turn, so a path that opens again is found within a
        slot or two while the rest are still tried.
        """
        favourites = favourites or {}
        chosen = {}
        moved = set()
        for key, options in candidates.items():
            if key in up or not options:
                self.position.pop(key, None)
                continue
            favourite = favourites.get(key)
            endpoints = [endpoint for endpoint, _reason in options]
            before = self.offered.get(key)
            self.offered[key] = endpoints
            if key not in self.position:
                self.position[key] = [0, now, 1]
                moved.add(key)
            elif before is not None and endpoints[0] not in before:
                # a better candidate than any it had (a run or a source just told where another node
                # sees it): from the top, now. It counts as one more try, so a peer that needs a
                # relay (no candidate works) gets it no later than without the restart.
                self.position[key] = [0, now, self.position[key][2] + 1]
                moved.add(key)
            index, since, tried = self.position[key]
            if now - since >= self.interval:
                index, since, tried = index + 1, now, tried + 1
                moved.add(key)
            self.position[key] = [index, since, tried]
            chosen[key] = pick(options, index, favourite)
        for key in list(self.position):
            if key not in candidates:
                del self.position[key]
        for key in list(self.offered):
            if key not in self.position:
                del self.offered[key]
        return chosen, moved

    def exhausted(self, key, count, now):
        """Whether the peer has had every one of its count candidates for a full interval."""
        position = self.position.get(key)
        if position is None:
            return False
        _index, since, tried = position
        return tried > count or (tried == count and now - since >= self.interval)
