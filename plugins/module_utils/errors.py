# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The one exception type the library raises for input or host problems.

Front ends turn it into fail_json (modules) or a log line (watcher). Messages
must never contain key material: callers pass names and reasons, not values.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type


class WglanError(Exception):
    """Bad input or a host state the library cannot work with."""

    def __init__(self, message, status=None):
        Exception.__init__(self, message)
        self.status = status  # an HTTP status, when the error is a service's answer
