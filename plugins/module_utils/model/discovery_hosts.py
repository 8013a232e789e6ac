# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""What a discovery host's variables say about how nodes reach it (for the node role's filters)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

FALSE = ('false', 'no', 'off', '0', 'n', 'f')


def tls(facts):
    """Whether the host's service speaks TLS: wglan_discovery_tls, true unless it says false."""
    value = facts.get('wglan_discovery_tls', True)
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() not in FALSE


def role_certificate(facts):
    """Whether its certificate is the discovery role's own (TLS, and no certificate of the user's)."""
    return tls(facts) and not facts.get('wglan_discovery_tls_cert')
