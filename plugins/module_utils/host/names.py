# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Host name resolution for endpoints the user gives by name (the model takes addresses only)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import socket

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError


def resolve(host, port, text=None):
    """The address of host, once: IPv4 first, then IPv6, the first answer of each (stable for a
    stable resolver). text: the endpoint as given, for the error message."""
    try:
        infos = socket.getaddrinfo(host, port, 0, socket.SOCK_DGRAM)
    except socket.gaierror as exc:
        raise WglanError('cannot resolve endpoint %r: %s' % (text or host, exc))
    infos.sort(key=lambda info: 0 if info[0] == socket.AF_INET else 1)
    return infos[0][4][0]
