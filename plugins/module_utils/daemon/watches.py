# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The watches on the live sources (the discovery service's long poll, the Kubernetes Node watch),
each a thread that triggers a reconcile when its source reports a change."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import random
import threading
import time

from ansible_collections.wglan.mesh.plugins.module_utils.daemon.common import log
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError


def backoff(failures, first=1.0, longest=60.0):
    """Seconds to wait after the failures-th failure in a row: doubling, capped, jittered (half to all
    of it), so that the nodes of a fleet that lost a service do not come back to it in step."""
    return min(longest, first * 2 ** max(0, failures - 1)) * random.uniform(0.5, 1.0)


class Watches:
    def __init__(self, trigger, stop):
        self.trigger = trigger          # trigger(why): ask for a reconcile
        self.stop = stop                # a threading.Event: the watcher ends
        self.discovery_watch = None     # the discovery watch's client (renew ends its long poll)
        self.renewed = threading.Event()
        self.threads = {}               # name -> (thread, what it watches)

    def start(self, params, own_ips):
        """One watch per source; a new one when the source or this node's addresses changed (a long poll
        opened from an address this node no longer has would hang until it times out)."""
        wanted = {}
        here = tuple(own_ips or ())
        if params.get('discovery_url') and params.get('cluster_token'):
            wanted['discovery'] = (self._watch_discovery, (params['discovery_url'], params['cluster_id'], here))
        if params.get('kubernetes'):
            wanted['kubernetes'] = (self._watch_kubernetes, (params['kubeconfig'], params['kube_context'], here))
        for name, (target, identity) in wanted.items():
            current = self.threads.get(name)
            if current is not None and current[1] == identity and current[0].is_alive():
                continue
            thread = threading.Thread(target=target, args=(dict(params),), name='watch-' + name, daemon=True)
            self.threads[name] = (thread, identity)  # before it runs: it checks that it is current
            thread.start()

    def renew(self, why):
        """Start the discovery watch's long poll anew: a path change can be a NAT that forgot this
        node's mappings, its TCP connection to the service among them, which would then be blind
        until the poll's timeout (up to 30 s)."""
        client = self.discovery_watch
        if client is not None and client.open is not None:
            log('discovery watch renewed (%s)' % why)
            self.renewed.set()
            client.abort()

    def _current(self, name):
        """Whether the calling thread is still the watch of that name (a replaced one ends)."""
        current = self.threads.get(name)
        return current is not None and current[0] is threading.current_thread()

    def _watch_discovery(self, params):
        from ansible_collections.wglan.mesh.plugins.module_utils.sources.discovery import DiscoveryClient
        client = DiscoveryClient(params['discovery_url'], params['cluster_token'], params['cluster_id'],
                                 params['discovery_ca'], mark=params.get('fwmark'))
        self.discovery_watch = client
        since, failures = 0, 0
        while not self.stop.is_set() and self._current('discovery'):
            try:
                answer = client.watch(since, lambda text: None, timeout=20)
            except WglanError as exc:
                if self.renewed.is_set():  # ended on purpose (renew): again at once
                    self.renewed.clear()
                    continue
                failures += 1
                wait = backoff(failures)
                log('discovery watch: %s; retrying in %.1f s' % (exc, wait))
                self.stop.wait(wait)
                continue
            failures = 0
            version = int(answer.get('version') or 0)
            # (the first answer too: a change between the reconcile's read and this watch's start
            # would otherwise wait for the resync)
            if version != since and self._current('discovery'):
                self.trigger('discovery service changed')
            since = version

    def _watch_kubernetes(self, params):
        from ansible_collections.wglan.mesh.plugins.module_utils.sources import kubernetes_api
        seen, failures = None, 0  # the last resourceVersion this watch saw; failures in a row
        while not self.stop.is_set() and self._current('kubernetes'):
            try:
                client = kubernetes_api.connect(params['kubeconfig'], params['kube_context'],
                                                mark=params.get('fwmark'))
                _nodes, version = client.list_nodes()
                # A Node changed between the reconcile's read (or the last watch's end) and this list
                # comes as no event: reconcile for it.
                if version != seen:
                    self.trigger('kubernetes watch started' if seen is None else 'kubernetes nodes changed')
                seen, failures = version, 0
                started = time.monotonic()
                for kind, obj in client.watch_nodes(version, timeout_seconds=240):
                    if self.stop.is_set() or not self._current('kubernetes'):
                        return
                    meta = obj.get('metadata') if isinstance(obj, dict) else None
                    seen = (meta.get('resourceVersion') if isinstance(meta, dict) else None) or seen
                    if kind in ('ADDED', 'MODIFIED', 'DELETED'):
                        self.trigger('kubernetes node %s' % kind.lower())
                if time.monotonic() - started < 1.0:  # a server that ends every watch at once: not in a loop
                    failures += 1
                    self.stop.wait(backoff(failures))
            except kubernetes_api.Gone:
                self.trigger('kubernetes watch expired')
            except WglanError as exc:
                failures += 1
                wait = backoff(failures)
                log('kubernetes watch: %s; retrying in %.1f s' % (exc, wait))
                self.stop.wait(wait)
