# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The watcher's loop: a reconcile when something asks for one (a source, a file, the host's
addresses, the resync clock), an apply every second in between."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import queue
import time

from ansible_collections.wglan.mesh.plugins.module_utils.daemon import status as status_file
from ansible_collections.wglan.mesh.plugins.module_utils.daemon.common import log
from ansible_collections.wglan.mesh.plugins.module_utils.model import settings


def files_changed(paths, seen):
    """Whether any of paths changed since the last call (seen: [stamps], kept by the caller)."""
    stamps = []
    for path in paths:
        try:
            stat = os.stat(path)
            stamps.append((stat.st_mtime_ns, stat.st_size, stat.st_ino))
        except OSError:
            stamps.append(None)
    changed = seen[0] is not None and stamps != seen[0]
    seen[0] = stamps
    return changed


def serve_metrics(watcher):
    options = watcher.options
    if not options['metrics_port']:
        return None
    address, port = options['metrics_address'], options['metrics_port']
    try:
        server = status_file.serve_metrics(lambda: watcher.status, address, port)
        log('metrics on http://%s:%d/metrics' % (address, port))
        return server
    except (OSError, ValueError) as exc:
        log('no metrics: cannot listen on %s:%s: %s' % (address, port, exc))
        return None


def watched_files(watcher):
    """The files a run writes for the watcher: the settings, the options, and the records the run
    used (a run can bring new records without changing its settings: the node role's second call)."""
    records = (watcher.params or {}).get('state_path') or settings.STATE_PATH
    return (watcher.settings_path, watcher.config_path, records)


# No reconcile starts this close to a key switch (this node's or a peer's): a reconcile reads the
# sources over the network and takes a few hundred milliseconds, and the switch would wait for it.
SWITCH_GUARD = 0.8


def why_now(watcher, seen, clock):
    """Why to reconcile now (None: not now). clock: the times of the next address check and resync."""
    why = None
    soon = watcher.next_moment()
    if soon is not None and soon < SWITCH_GUARD:
        time.sleep(soon)  # (the events wait in their queue until after the switch)
        return watcher.rotation_tick()
    try:
        why = watcher.events.get(timeout=0.25 if soon is None else min(0.25, max(0.005, soon - SWITCH_GUARD)))
    except queue.Empty:
        pass
    why = watcher.rotation_tick() or why
    if files_changed(watched_files(watcher), seen):
        why = 'settings changed'
    if why is None and time.monotonic() >= clock['addresses']:
        clock['addresses'] = time.monotonic() + watcher.options['address_check']
        if watcher.publisher.addresses_changed(watcher.params, watcher.options):
            why = 'addresses changed'
    if why is None and time.monotonic() >= clock['resync']:
        why = 'resync'
    return why


def run(watcher, max_seconds=None):
    """Until watcher.stop is set (or max_seconds passed)."""
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    server = serve_metrics(watcher)
    seen = [None]
    files_changed(watched_files(watcher), seen)
    watcher.reconcile('start')
    now = time.monotonic()
    clock = dict(resync=now + watcher.options['resync'], sweep=now + 1.0,
                 addresses=now + watcher.options['address_check'])
    while not watcher.stop.is_set() and (deadline is None or time.monotonic() < deadline):
        why = why_now(watcher, seen, clock)
        if why is not None:
            while not watcher.events.empty():  # one reconcile for a burst of events
                watcher.events.get_nowait()
            watcher.reconcile(why)
            clock['resync'] = time.monotonic() + watcher.options['resync']
        elif time.monotonic() >= clock['sweep']:
            watcher.apply(purge=bool(watcher.params and watcher.params.get('purge')))
            clock['sweep'] = time.monotonic() + 1.0
    watcher.stop.set()
    if server is not None:
        server.shutdown()
        server.server_close()
