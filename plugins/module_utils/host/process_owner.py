# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Who owns a long-lived process the node needs (wireguard-go).

Never the task that asked for it: without pipelining, Ansible runs a module
over an SSH session with a tty, and everything left in that session gets
SIGHUP when the task ends (wireguard-go daemonizes without leaving it).

- Where systemd runs the host and this process lives in the host's network
  namespace, the process becomes a transient unit (systemd-run): it survives
  the session, is restarted if it crashes, and is stopped with the unit.
- Elsewhere (a container without systemd, a network namespace of a test), it
  starts in a new session of its own, without a controlling tty.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import subprocess
import time

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError

SYSTEMD_RUN = 'systemd-run'
SYSTEMCTL = 'systemctl'
UNLOAD_TIMEOUT = 5.0
# What a transient unit may do: a userspace WireGuard needs /dev/net/tun, its sockets and the fwmark.
HARDENING = ('CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE', 'NoNewPrivileges=yes',
             'ProtectHome=yes', 'PrivateTmp=yes')


def _same_netns_as_init():
    try:
        mine = os.stat('/proc/self/ns/net')
        init = os.stat('/proc/1/ns/net')
    except PermissionError:
        # A sandboxed unit (the watcher) may not look at PID 1: it runs in the host's namespace.
        return True
    except OSError:
        return False
    return (mine.st_dev, mine.st_ino) == (init.st_dev, init.st_ino)


def systemd_owns_processes():
    """True when systemd is PID 1 of this host and this process shares its network namespace."""
    return os.path.isdir('/run/systemd/system') and shutil.which(SYSTEMD_RUN) is not None and _same_netns_as_init()


def unit_name(prefix, instance):
    return '%s-%s.service' % (prefix, instance)


def _run(argv, timeout=30):
    try:
        return subprocess.run(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=timeout, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise WglanError('%s failed: %s' % (argv[0], exc))


def unit_state(unit):
    """(LoadState, ActiveState) of a unit, e.g. ('not-found', 'inactive') when there is none."""
    proc = _run([SYSTEMCTL, 'show', '--property', 'LoadState', '--property', 'ActiveState', unit])
    values = dict(line.split('=', 1) for line in proc.stdout.splitlines() if '=' in line)
    return values.get('LoadState', 'not-found'), values.get('ActiveState', 'inactive')


def start_unit(unit, argv, description, env=None):
    """Start argv (a foreground process) as the transient unit `unit`.

    Returns False when the unit is already running or being restarted by systemd
    (after a crash: Restart=on-failure brings it back, and stopping it to start it
    again would only race systemd), True when it was started now.
    """
    binary = shutil.which(argv[0])
    if binary is None:
        raise WglanError('%s is not installed' % argv[0])
    load, active = unit_state(unit)
    if active in ('active', 'activating', 'deactivating', 'reloading'):
        return False
    if load != 'not-found':
        # stopped or failed but still loaded: forget it, then wait until systemd has unloaded it
        # (a transient unit of the same name cannot be made while the old one is loaded)
        stop_unit(unit)
        deadline = time.monotonic() + UNLOAD_TIMEOUT
        while unit_state(unit)[0] != 'not-found' and time.monotonic() < deadline:
            time.sleep(0.1)
        if unit_state(unit)[0] != 'not-found':
            # Still loaded, inactive (seen on Debian 13 after a mesh was removed and made again at once: systemd
            # kept the stopped transient unit, and a new one of the name cannot be made): start it as it is
            # (a transient unit keeps its command line and properties, which are the ones this would give it).
            proc = _run([SYSTEMCTL, 'start', unit])
            if proc.returncode != 0:
                raise WglanError('%s is stopped but still loaded, and could not be started again: %s'
                                 % (unit, proc.stderr.strip() or proc.stdout.strip()))
            return True
    command = [SYSTEMD_RUN, '--unit', unit, '--description', description, '--collect', '--quiet',
               '--property', 'Restart=on-failure', '--property', 'RestartSec=1']
    for prop in HARDENING:
        command += ['--property', prop]
    for key, value in sorted((env or {}).items()):
        command += ['--setenv', '%s=%s' % (key, value)]
    proc = _run(command + [binary] + list(argv[1:]))
    if proc.returncode != 0:
        raise WglanError('systemd-run could not start %s: %s' % (unit, proc.stderr.strip() or proc.stdout.strip()))
    return True


def unit_failure(unit):
    """The unit's last log lines when it is not running, else None."""
    if _run([SYSTEMCTL, 'is-active', '--quiet', unit]).returncode == 0:
        return None
    journal = _run(['journalctl', '--unit', unit, '--no-pager', '--output', 'cat', '--lines', '5'])
    return journal.stdout.strip() or 'the unit is not running'


def stop_unit(unit):
    """Stop a transient unit and forget its failures (a no-op when there is none)."""
    _run([SYSTEMCTL, 'stop', unit])
    _run([SYSTEMCTL, 'reset-failed', unit])


def start_detached(argv, env=None, timeout=10.0):
    """Run argv (which daemonizes itself) in a new session: its daemon never shares the caller's tty.

    Returns the CompletedProcess of the foreground part.
    """
    return subprocess.run(argv, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          timeout=timeout, check=False, start_new_session=True)
