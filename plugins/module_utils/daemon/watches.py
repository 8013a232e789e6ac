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
    def __init__(self, trigger, stop, republish=None):
        self.trigger = trigger          # trigger(why): ask for a reconcile
        self.stop = stop                # a threading.Event: the watcher ends
        self.republish = republish or trigger  # republish(why): a service lost this node's record
        self.discovery_watches = {}     # url -> the discovery watch's client (renew ends its long poll)
        self.renewed = set()            # urls whose long poll was ended on purpose
        self.threads = {}               # name -> (thread, what it watches)

    def start(self, params, own_ips, own_key=None):
        """One watch per source (per discovery service); a new one when the source or this node's
        addresses changed (a long poll opened from an address this node no longer has would hang
        until it times out)."""
        from ansible_collections.wglan.mesh.plugins.module_utils.model import settings
        wanted = {}
        here = tuple(own_ips or ())
        if params.get('cluster_token'):
            for url in settings.discovery_urls(params):
                wanted['discovery ' + url] = (self._watch_discovery, (url, params['cluster_id'], here, own_key))
        if params.get('kubernetes'):
            wanted['kubernetes'] = (self._watch_kubernetes, (params['kubeconfig'], params['kube_context'], here))
        for name, (target, identity) in wanted.items():
            current = self.threads.get(name)
            if current is not None and current[1] == identity and current[0].is_alive():
                continue
            args = (dict(params), name) + ((identity[0], own_key) if name.startswith('discovery ') else ())
            thread = threading.Thread(target=target, args=args, name='watch-' + name, daemon=True)
            self.threads[name] = (thread, identity)  # before it runs: it checks that it is current
            thread.start()
        for name in [n for n in self.threads if n not in wanted]:  # (a source no longer used: its watch ends)
            del self.threads[name]

    def renew(self, why):
        """Start the discovery watches' long polls anew: a path change can be a NAT that forgot this
        node's mappings, its TCP connections to the services among them, which would then be blind
        until the poll's timeout (up to 30 s)."""
        for url, client in list(self.discovery_watches.items()):
            if client.open is not None:
                log('discovery watch of %s renewed (%s)' % (url, why))
                self.renewed.add(url)
                client.abort()

    def _current(self, name):
        """Whether the calling thread is still the watch of that name (a replaced one ends)."""
        current = self.threads.get(name)
        return current is not None and current[0] is threading.current_thread()

    def _watch_discovery(self, params, name, url, own_key):
        from ansible_collections.wglan.mesh.plugins.module_utils.sources import discovery_crypto
        from ansible_collections.wglan.mesh.plugins.module_utils.sources.discovery import DiscoveryClient
        client = DiscoveryClient(url, params['cluster_token'], params['cluster_id'], params['discovery_ca'],
                                 mark=params.get('fwmark'), ca_data=params.get('discovery_ca_pem'))
        own = discovery_crypto.member_id(own_key) if own_key and params.get('publish') else None
        self.discovery_watches[url] = client
        since, failures = 0, 0
        while not self.stop.is_set() and self._current(name):
            try:
                answer = client.watch(since, lambda text: None, timeout=20)
            except WglanError as exc:
                if url in self.renewed:  # ended on purpose (renew): again at once
                    self.renewed.discard(url)
                    continue
                failures += 1
                wait = backoff(failures)
                log('discovery watch: %s; retrying in %.1f s' % (exc, wait))
                self.stop.wait(wait)
                continue
            failures = 0
            version = int(answer.get('version') or 0)
            if not self._current(name):
                break
            # A service that restarted empty (or forgot this node's record): publish to it again now,
            # not at the next refresh. (A whole listing is one that starts over: the first, or a reset.)
            whole = since == 0 or answer.get('reset')
            if own and ((whole and own not in answer['member_ids']) or own in (answer.get('deleted') or [])):
                self.republish('the discovery service at %s does not have this node\'s record' % url)
            # (the first answer too: a change between the reconcile's read and this watch's start
            # would otherwise wait for the resync)
            elif version != since:
                self.trigger('discovery service changed')
            since = version
        if self.discovery_watches.get(url) is client:
            del self.discovery_watches[url]

    def _watch_kubernetes(self, params, name):
        from ansible_collections.wglan.mesh.plugins.module_utils.sources import kubernetes_api
        seen, failures = None, 0  # the last resourceVersion this watch saw; failures in a row
        while not self.stop.is_set() and self._current(name):
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
                    if self.stop.is_set() or not self._current(name):
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
