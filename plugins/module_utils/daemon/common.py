# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What every part of the watcher shares: its log, and how it names a peer in it."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import sys
import time


def log(message):
    # (the journal stamps each line; WGLAN_LOG_TIME=1 stamps them here, for logs that go to a file)
    if os.environ.get('WGLAN_LOG_TIME') == '1':
        now = time.time()
        stamp = time.strftime('%H:%M:%S', time.localtime(now)) + '.%03d ' % (now % 1 * 1000)
    else:
        stamp = ''
    sys.stdout.write('%swglan-watcher: %s\n' % (stamp, message))
    sys.stdout.flush()


class Repeats:
    """The warnings of a reconcile that are worth a line in the log: those the last reconcile did not
    have, and the others again every `every` seconds. A service that lags behind another, or a bad
    record that stays listed, warns at every reconcile (events can make several a second)."""

    def __init__(self, every=600.0):
        self.every = every
        self.said = {}  # text -> when it was last logged (monotonic)

    def fresh(self, texts, now=None):
        now = time.monotonic() if now is None else now
        fresh = [t for t in dict.fromkeys(texts) if t not in self.said or now - self.said[t] >= self.every]
        # (a warning that went away is said again when it comes back)
        self.said = dict((t, now if t in fresh else self.said[t]) for t in texts)
        return fresh


def out(text, stream=None):
    stream = stream or sys.stdout
    stream.write(text + '\n')


def name_of(public_key, peers):
    """A peer's name for the log (its public key's start when it has none); never a secret."""
    for peer in peers:
        if peer.public_key == public_key:
            return peer.name or public_key[:8]
    return public_key[:8]
