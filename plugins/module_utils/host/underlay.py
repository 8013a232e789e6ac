# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Connections of the control plane (discovery service, Kubernetes API) that stay on the underlay."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import socket

SO_MARK = getattr(socket, 'SO_MARK', 36)


def marked_connection(mark):
    """socket.create_connection, with the socket marked before it connects (None: unmarked).

    The node's own traffic to its sources carries WireGuard's fwmark, so the
    mesh's rules leave it on the underlay like WireGuard's own packets: the
    discovery service or the API server may run on a mesh member, and a node
    whose address just changed could otherwise not reach it (its peers drop
    tunnel traffic from an address they do not know yet, and it is the source
    that tells them). Without the privilege to mark (CAP_NET_ADMIN) the socket
    goes unmarked.
    """
    def connect(address, timeout=socket.getdefaulttimeout(), source_address=None):
        host, port = address
        error = None
        for family, kind, proto, _name, target in socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM):
            sock = socket.socket(family, kind, proto)
            try:
                if mark:
                    try:
                        sock.setsockopt(socket.SOL_SOCKET, SO_MARK, mark)
                    except OSError:
                        pass
                sock.settimeout(timeout)
                if source_address:
                    sock.bind(source_address)
                sock.connect(target)
                return sock
            except OSError as exc:
                error = exc
                sock.close()
        raise error or OSError('no address for %s' % host)
    return connect
