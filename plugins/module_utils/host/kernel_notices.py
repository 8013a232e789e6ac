# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Whether the kernel changed something since the last look: a netlink socket subscribed to the
kernel's change notices (nftables', as `nft monitor` hears them; rules' and routes', as `ip monitor`),
read without blocking. Nothing is parsed: any notice means "look again". A watcher at rest then
looks at its table and rule only when something changed, instead of spawning `nft` every second."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import socket

SOL_NETLINK = 270
NETLINK_ADD_MEMBERSHIP = 1
NETLINK_ROUTE = 0
NETLINK_NETFILTER = 12
NFNLGRP_NFTABLES = 7
RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV4_RULE, RTNLGRP_IPV6_ROUTE, RTNLGRP_IPV6_RULE = 7, 8, 11, 19
MOST_READS = 4096  # per look: a burst larger than this is "changed" all the same


class Notices:
    """generation(): a number that grows each time notices came since the last call (or some were
    lost: the socket's buffer overflowed); None when the kernel (or a sandbox) refused the subscription,
    and the caller must look every time. Several callers can share one: each keeps the generation it
    last acted on."""

    def __init__(self, protocol, groups):
        self.sock = None
        self.error = None
        self.count = 0
        try:
            sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_NONBLOCK | socket.SOCK_CLOEXEC,
                                 protocol)
            try:
                sock.bind((0, 0))
                for group in groups:
                    sock.setsockopt(SOL_NETLINK, NETLINK_ADD_MEMBERSHIP, group)
            except OSError:
                sock.close()
                raise
            self.sock = sock
        except (OSError, AttributeError) as exc:  # (AttributeError: a Python without AF_NETLINK)
            self.error = str(exc)

    def generation(self):
        if self.sock is None:
            return None
        if self._drain():
            self.count += 1
        return None if self.sock is None else self.count

    def _drain(self):
        got = False
        for _read in range(MOST_READS):
            try:
                if not self.sock.recv(65536):
                    break
                got = True
            except BlockingIOError:
                break
            except OSError as exc:
                if exc.errno == errno.ENOBUFS:  # notices were lost: something changed
                    got = True
                    continue
                self.close()
                self.error = str(exc)
                return True
        return got

    def close(self):
        if self.sock is not None:
            self.sock.close()
            self.sock = None


def nftables_notices():
    return Notices(NETLINK_NETFILTER, (NFNLGRP_NFTABLES,))


def routing_notices():
    return Notices(NETLINK_ROUTE, (RTNLGRP_IPV4_RULE, RTNLGRP_IPV6_RULE, RTNLGRP_IPV4_ROUTE, RTNLGRP_IPV6_ROUTE))
