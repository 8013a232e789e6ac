# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The watcher: keeps the mesh current between Ansible runs, with the modules' own gather.

    python3 -m ansible_collections.wglan.mesh.plugins.module_utils.daemon.watcher run [--settings F] [--config F]
    python3 -m ansible_collections.wglan.mesh.plugins.module_utils.daemon.watcher status

It reads the settings the node role saved for wglan_peers (settings.json: the
interface, the sources, the token) and its own options (watcher.json), then
loops:
  - a reconcile (sources -> model -> device, state, nftables targets) when a
    source reports a change (discovery-service long poll, Kubernetes Node watch),
    when either file changes, and every `resync` seconds as a safety net;
  - between reconciles, a sweep every second: each peer that is not up gets
    its next endpoint candidate after `sweep_interval` seconds without a
    handshake (no source I/O, only the device), and a handshake is started at
    once on each new candidate; a peer that comes up keeps the endpoint that
    worked;
  - a peer still not up after one full sweep is relayed through a node that
    reaches both, the one both ends agree on (relay.py); sweeping goes on, and
    the path is direct again as soon as a handshake completes. With `relay`
    on, this node offers to relay: it forwards what arrives on the interface
    for a peer it reaches directly back into it, IPv6 and IPv4, through a
    netdev table at the interface's ingress (no forwarding sysctl);
  - this node's record is published with the endpoints its up peers are seen
    at (so NATed nodes find each other) when it changes, and again before its
    TTL runs out;
  - nftables targets hold the allowed IPs of peers that are up (all peers with
    force_routing), so traffic to a dead peer falls back to the normal routes;
  - with metrics_port, Prometheus metrics (text format) of that status on
    metrics_address (127.0.0.1 by default): GET /metrics.
A source that fails leaves the last good state in place. Logs (stdout, the
journal under systemd) never contain secrets. The status (peer, address,
endpoint, state, handshake age) is written to status_path for `status`.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import ipaddress
import json
import os
import queue
import signal
import socket
import struct
import sys
import threading
import time

from ansible_collections.wglan.mesh.plugins.module_utils.host import firewall, settings_file
from ansible_collections.wglan.mesh.plugins.module_utils.model import liveness, plan, settings, watcher_options
from ansible_collections.wglan.mesh.plugins.module_utils.model import topology
from ansible_collections.wglan.mesh.plugins.module_utils.model import nft_objects
from ansible_collections.wglan.mesh.plugins.module_utils.host import nftables
from ansible_collections.wglan.mesh.plugins.module_utils.host import host_addresses
from ansible_collections.wglan.mesh.plugins.module_utils.host import state_files
from ansible_collections.wglan.mesh.plugins.module_utils.model import node_records
from ansible_collections.wglan.mesh.plugins.module_utils.sources import gather
from ansible_collections.wglan.mesh.plugins.module_utils.host import policy_routing
from ansible_collections.wglan.mesh.plugins.module_utils.model import relay
from ansible_collections.wglan.mesh.plugins.module_utils.host import watcher_state
from ansible_collections.wglan.mesh.plugins.module_utils.host import wg_device
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError

SETTINGS = settings.SETTINGS_PATH
CONFIG = settings.WATCHER_CONFIG
OPTIONS = watcher_options.DEFAULTS


# Seconds between two reads of the relay's counters (an nft call) for the status and metrics.
RELAY_LOAD_EVERY = 10.0

# Seconds a probed peer has to answer before it counts as stale (a round trip, and WireGuard's
# handshake when the session must be renewed first).
PROBE_WAIT = 2.0


def log(message):
    # (the journal stamps each line; WGLAN_LOG_TIME=1 stamps them here, for logs that go to a file)
    stamp = time.strftime('%H:%M:%S ') if os.environ.get('WGLAN_LOG_TIME') == '1' else ''
    sys.stdout.write('%swglan-watcher: %s\n' % (stamp, message))
    sys.stdout.flush()


def out(text, stream=None):
    stream = stream or sys.stdout
    stream.write(text + '\n')


def load_options(path):
    """The watcher's options file, validated (model.watcher_options: as wglan_watcher did at play time)."""
    data = state_files.read_json(path) if path else None
    if data is not None and not isinstance(data, dict):
        raise WglanError('%s is not a JSON object' % path)
    return watcher_options.validate(data or {}, '%s: ' % path)


def load_settings(path):
    """The role's saved wglan_peers settings, with the module's defaults for what they lack."""
    return settings_file.load(path)


def pick(options, index, favourite=None):
    """The endpoint for sweep slot index: options in turn; with a favourite, it takes slots 0 and 1 of
    every 3 and the other options take slot 2 in turn."""
    if favourite is None:
        return options[index % len(options)][0]
    others = [endpoint for endpoint, _reason in options if endpoint != favourite]
    if not others or index % 3 != 2:
        return favourite
    return others[(index // 3) % len(others)]


class Sweeper:
    """Which endpoint candidate each peer that is not up is on, since when, and how many it has tried."""

    def __init__(self, interval):
        self.interval = interval
        self.position = {}  # public key -> [index, since, tried]

    def endpoints(self, candidates, up, now, favourites=None):
        """({public key: endpoint} for peers that are not up, keys that moved to a new candidate this tick).

        A peer seen for the first time, or moved on after `interval` seconds
        without a handshake, counts as moved: the caller kicks a handshake.
        favourites: {public key: endpoint} most likely to work again (for a relayed peer,
        where the relay sees it now): it gets two slots of every three, the other
        candidates the third in turn, so a path that opens again is found within a
        slot or two while the rest are still tried.
        """
        favourites = favourites or {}
        chosen = {}
        moved = set()
        for key, options in candidates.items():
            if key in up or not options:
                self.position.pop(key, None)
                continue
            favourite = favourites.get(key)
            if key not in self.position:
                self.position[key] = [0, now, 1]
                moved.add(key)
            index, since, tried = self.position[key]
            if now - since >= self.interval:
                index, since, tried = index + 1, now, tried + 1
                moved.add(key)
            self.position[key] = [index, since, tried]
            chosen[key] = pick(options, index, favourite)
        for key in list(self.position):
            if key not in candidates:
                del self.position[key]
        return chosen, moved

    def exhausted(self, key, count, now):
        """Whether the peer has had every one of its count candidates for a full interval."""
        position = self.position.get(key)
        if position is None:
            return False
        _index, since, tried = position
        return tried > count or (tried == count and now - since >= self.interval)


class Watcher:
    def __init__(self, settings_path=SETTINGS, config_path=CONFIG):
        self.settings_path = settings_path
        self.config_path = config_path
        self.options = load_options(config_path)
        self.events = queue.Queue()
        self.stop = threading.Event()
        self.discovery_watch = None     # the discovery watch's client (renew_watches ends its long poll)
        self.watch_renewed = threading.Event()
        self.answering = set()          # relayed peers that answer directly again (handshake on their entry)
        self.was_stale = set()
        self.last_direct = {}           # public key -> the endpoint it was last up at directly
        self.sweeper = Sweeper(self.options['sweep_interval'])
        self.params = None
        self.last = None            # (config, peers, candidates) of the last good reconcile
        self.last_publish = 0.0
        self.published = None
        self.watch_threads = {}
        self.reconciles = 0
        self.records = None         # the records of the last good reconcile (relay choice)
        self.own_key = None
        self.observed = None        # {public key: endpoint} of the peers up at the last apply
        self.relays = None          # {peer key: relay key}; read back at the first reconcile (restarts keep them)
        self.relay_requests = None  # {peer key: relay key} this node's record says (relay.agree)
        self.relays_saved = None
        self.me = None              # this node's record at the last good reconcile
        self.node_ips = None        # this host's addresses, when they differ from the role's record
        self.port = None            # the listen port chosen (topology.shared_nat_port with listen_port_auto)
        self.forwarding_warned = False
        self.relay_ipv6_noted = False
        self.relay_table = None     # (interface, prefixes) the relay table was last made for
        self.relay_nets = None      # the allowed IPs of the peers reached directly (relay table)
        self.relay_table_error = None
        self.relay_load = None      # (monotonic time, rows) of the relay's counters, last read
        self.status = None          # the last status written (also served as metrics)
        # public key -> (rx bytes, monotonic time they last changed, whether a change was seen: the
        # first sight of a peer is not news from it)
        self.rx_seen = {}
        self.stale = set()          # peers with a recent handshake but nothing received for too long
        self.metrics_server = None
        self.own_ips = None         # the node IPs this node last published (None: not looked at yet)
        self.places = {}            # public key -> where its record says it is (node IPs, address seen by the service)
        # public key -> (wall time, monotonic time, whether the peer moved (else this node did)): it counts
        # as up again only once something came from it since (a keepalive on the old session will do)
        self.suspect = {}
        self.address_exclude = []   # prefixes whose addresses are not node IPs (options, mesh prefix, pod CIDRs)
        self.heard_again = set()    # peers whose suspicion ended this tick (they get a keepalive)
        self.probed = {}            # public key -> monotonic time of the probe sent in its current silence
        self.probes = 0             # probes sent since the start (a healthy mesh at rest sends none)

    # -- events ----------------------------------------------------------
    def trigger(self, why):
        self.events.put(why)

    def _files_changed(self, seen):
        stamps = []
        for path in (self.settings_path, self.config_path):
            try:
                stat = os.stat(path)
                stamps.append((stat.st_mtime_ns, stat.st_size, stat.st_ino))
            except OSError:
                stamps.append(None)
        changed = seen[0] is not None and stamps != seen[0]
        seen[0] = stamps
        return changed

    def _watch_discovery(self, params):
        from ansible_collections.wglan.mesh.plugins.module_utils.sources.discovery import DiscoveryClient
        client = DiscoveryClient(params['discovery_url'], params['cluster_token'], params['cluster_id'],
                                 params['discovery_ca'], mark=params.get('fwmark'))
        self.discovery_watch = client
        since = 0
        while not self.stop.is_set() and self._current_watch('discovery'):
            try:
                answer = client.watch(since, lambda text: None, timeout=20)
            except WglanError as exc:
                if self.watch_renewed.is_set():  # ended on purpose (renew_watches): again at once
                    self.watch_renewed.clear()
                    continue
                log('discovery watch: %s; retrying in 5 s' % exc)
                self.stop.wait(5)
                continue
            version = int(answer.get('version') or 0)
            if since and version != since and self._current_watch('discovery'):
                self.trigger('discovery service changed')
            since = version

    def renew_watches(self, why):
        """Start the discovery watch's long poll anew: a path change can be a NAT that forgot this
        node's mappings, its TCP connection to the service among them, which would then be blind
        until the poll's timeout (up to 30 s)."""
        client = self.discovery_watch
        if client is not None and client.open is not None:
            log('discovery watch renewed (%s)' % why)
            self.watch_renewed.set()
            client.abort()

    def _watch_kubernetes(self, params):
        from ansible_collections.wglan.mesh.plugins.module_utils.sources import kubernetes_api
        while not self.stop.is_set() and self._current_watch('kubernetes'):
            try:
                client = kubernetes_api.connect(params['kubeconfig'], params['kube_context'],
                                                mark=params.get('fwmark'))
                _nodes, version = client.list_nodes()
                for kind, _obj in client.watch_nodes(version, timeout_seconds=240):
                    if self.stop.is_set() or not self._current_watch('kubernetes'):
                        return
                    if kind in ('ADDED', 'MODIFIED', 'DELETED'):
                        self.trigger('kubernetes node %s' % kind.lower())
            except kubernetes_api.Gone:
                self.trigger('kubernetes watch expired')
            except WglanError as exc:
                log('kubernetes watch: %s; retrying in 5 s' % exc)
                self.stop.wait(5)

    def _current_watch(self, name):
        """Whether the calling thread is still the watch of that name (a replaced one ends)."""
        current = self.watch_threads.get(name)
        return current is not None and current[0] is threading.current_thread()

    def _start_watches(self, params):
        """One watch per source; a new one when the source or this node's addresses changed (a long poll
        opened from an address this node no longer has would hang until it times out)."""
        wanted = {}
        here = tuple(self.own_ips or ())
        if params.get('discovery_url') and params.get('cluster_token'):
            wanted['discovery'] = (self._watch_discovery, (params['discovery_url'], params['cluster_id'], here))
        if params.get('kubernetes'):
            wanted['kubernetes'] = (self._watch_kubernetes, (params['kubeconfig'], params['kube_context'], here))
        for name, (target, identity) in wanted.items():
            current = self.watch_threads.get(name)
            if current is not None and current[1] == identity and current[0].is_alive():
                continue
            thread = threading.Thread(target=target, args=(dict(params),), name='watch-' + name, daemon=True)
            self.watch_threads[name] = (thread, identity)  # before it runs: it checks that it is current
            thread.start()

    # -- work --------------------------------------------------------------
    def reconcile(self, why):
        """Sources -> model -> device, state and targets. On any error the last good state stays."""
        started = time.monotonic()
        try:
            params = load_settings(self.settings_path)
            self.options = load_options(self.config_path)
            self.sweeper.interval = self.options['sweep_interval']
        except WglanError as exc:
            log('not reconciling: %s' % exc)
            return False
        self._refresh_node_ips(params)
        port = self._listen_port(params)
        params['effective_port'] = port
        if params.get('publish'):
            params['publish'] = dict(params['publish'], port=port)
        params['publish'] = self._record_to_publish(params)
        warnings = []
        try:
            config, own_key = gather.device_config(params)
            topo, gathered = gather.mesh_topology(params, own_key, warnings.append)
        except WglanError as exc:
            log('not reconciling: %s' % exc)
            return False
        peers = topo.peers
        me, records = gathered.me, gathered.records or []
        self._notice_moves(me, records, peers)
        candidates = plan.candidates_of(topo, moved=set(k for k, mark in self.suspect.items() if mark[2]))
        self.params = params
        if self.relays is None:
            state = watcher_state.read(params['relays_path'])
            self.relays, self.relay_requests = state.relays, state.published
        self.last = (config, topo, candidates)
        self.records = records
        self.me = me
        self.own_key = me.public_key if me is not None else None
        if self._listen_port(params) != port:
            self.trigger('the listen port moves')  # the records say this node shares its NAT now (or no longer)
        if params['publish'] is not None:
            self.last_publish = time.monotonic()
            self.published = (node_records.without_observations(params['publish']), params['publish'].get('observed'),
                              params['publish'].get('relays'))
        try:
            if gathered.saved is not None:
                state_files.write_json_if_changed(params['state_path'], gathered.saved, 0o644, False,
                                                  node_records.without_observations)
        except WglanError as exc:
            log('cannot save the records: %s' % exc)
        changed = self.apply(purge=params['purge'])
        self._ensure_forwarding(config.ifname)
        self._ensure_host_firewall(config)
        self._start_watches(params)
        self.reconciles += 1
        elapsed = (time.monotonic() - started) * 1000
        log('reconciled (%s) in %.0f ms: %d peers%s' % (why, elapsed, len(peers), ', changes applied' if changed else ''))
        return True

    def _listen_port(self, params):
        """The configured port; with listen_port_auto and a live source (others learn a new port from it
        at once), a port of this node's own while it shares its public address with other members."""
        base = params['listen_port']
        live = (params.get('discovery_url') and params.get('cluster_token')) or params.get('kubernetes')
        port = base
        if params.get('listen_port_auto') and live and self.me is not None and self.records:
            port = topology.shared_nat_port(self.me, self.records, base)
        if port != self.port:
            if self.port is not None or port != base:
                shared = topology.public_address(self.me, self.records) if port != base else None
                log('listen port %d%s' % (port, ' (other members share this node\'s public address %s)' % shared
                                          if shared else ''))
            self.port = port
            self._save_paths()
        return port

    def _local_ips(self, params):
        """This host's addresses as a record's node_ips (what wglan_record publishes), or None."""
        try:
            return [str(i) for i in host_addresses.local_node_ips(params['interface'], None, self.address_exclude)]
        except WglanError as exc:
            log('cannot read this host\'s addresses: %s' % exc)
            return None

    def _refresh_node_ips(self, params):
        """Publish the node IPs the host has now. A change after the first look means this machine
        moved (another site, a new lease): every peer must handshake again before it counts as up,
        since NAT mappings and paths made for the old address are gone."""
        record = params.get('publish')
        if not record or not self.options['refresh_node_ips']:
            return
        exclude = [ipaddress.ip_network(str(n), strict=False) for n in self.options['endpoint_exclude']]
        # the mesh's own prefix, and the pod CIDRs (a CNI bridge's address is not where this node is)
        for text in list(params.get('addresses') or []) + list(record.get('pod_cidrs') or []):
            try:
                exclude.append(ipaddress.ip_interface(str(text)).network)
            except ValueError:
                continue
        self.address_exclude = exclude
        ips = self._local_ips(params)
        if not ips:
            return  # no address at all (network not up yet): keep what the role saw
        # (kept in the watcher's own state file, whence a wglan_peers run publishes them too)
        self.node_ips = ips if ips != record.get('node_ips') else None
        if self.node_ips is not None:
            params['publish'] = dict(record, node_ips=ips)
        self._save_paths()
        if self.own_ips is not None and ips != self.own_ips:
            log('this node\'s addresses changed: %s -> %s; handshaking with every peer again'
                % (', '.join(self.own_ips) or '-', ', '.join(ips)))
            for key in self.places:
                self.suspect[key] = (time.time(), time.monotonic(), False)
        self.own_ips = ips

    def _addresses_changed(self):
        if self.own_ips is None or self.params is None or not self.options['refresh_node_ips']:
            return False
        ips = self._local_ips(self.params)
        return bool(ips) and ips != self.own_ips

    def _notice_moves(self, me, records, peers):
        """A peer whose record shows new addresses (it moved) counts as up only once heard from since
        (see _alive): the path the device still uses may be one that led to its old place."""
        now = time.time()
        places = {}
        for record in records:
            if me is not None and record.public_key == me.public_key:
                continue
            place = (sorted(str(i.ip) for i in record.node_ips), str(record.public_ip or ''))
            places[record.public_key] = place
            before = self.places.get(record.public_key)
            if before is not None and before != place:
                log('peer %s moved: %s -> %s' % (self._name(record.public_key, peers), _place(before), _place(place)))
                self.suspect[record.public_key] = (now, time.monotonic(), True)
        self.places = places
        known = set(places) | set(p.public_key for p in peers)
        for key in list(self.suspect):
            if key not in known:
                del self.suspect[key]

    def _record_to_publish(self, params):
        """This node's record with fresh observations, when it changed or is due for a TTL refresh; else None."""
        record = params.get('publish')
        if not record:
            return None
        if self.observed is not None:
            # The peers it receives from now (a handshake alone can be minutes old): other nodes
            # take these as paths that work, and choose relays by them.
            observed = dict((k, e) for k, e in self.observed.items() if e)
        else:
            try:
                observed = host_addresses.observed_endpoints(params['interface'])
            except WglanError:
                observed = record.get('observed') or {}
        fresh = dict(record, observed=observed, relays=dict(self.relay_requests or {}))
        due = time.monotonic() - self.last_publish >= self.options['publish_every'] or self.last_publish == 0
        if due or self.published != (node_records.without_observations(fresh), observed, fresh['relays']):
            return fresh
        return None

    def apply(self, purge=True):
        """The last desired peers, with swept endpoints and relays, onto the device; then the targets."""
        if self.last is None:
            return False
        config, topo, candidates = self.last
        peers = topo.peers
        found = wg_device.read_device(config.ifname)
        up = self._alive(found, candidates)
        # Where the peers that are up are seen: when that changes (a peer came up, went down, or
        # roamed behind its NAT), reconcile, which publishes the fresh observations.
        seen = dict((p.public_key, p.endpoint) for p in found[2].peers if p.public_key in up) if found else {}
        if seen != self.observed:
            if self.observed is not None:
                self.trigger('observations changed')
            self.observed = seen
        swept, moved = self.sweeper.endpoints(candidates, up, time.monotonic(), self._favourites(seen))
        self._choose_relays(peers, candidates, up)
        seen_now = plan.Observations(alive=up, stale=self.stale, swept=swept, relays=self.relays)
        the_plan = plan.plan(topo, found[2] if found else None, seen_now, time.time(), purge=purge,
                             force_routing=self.options['force_routing'])
        desired = the_plan.peers
        if self.options['relay']:
            self.relay_nets = the_plan.relay_nets
        try:
            outcome = wg_device.apply_device(config, desired, purge=purge, current=found, ops=the_plan.ops)
            wg_device.kick(config, [p for p in desired if p.public_key in moved or p.public_key in self.heard_again])
        except WglanError as exc:
            log('device not updated: %s' % exc)
            return False
        for op in outcome.ops:
            if op.action == 'update' and set(op.fields) == set(['endpoint']):
                log('peer %s: trying endpoint %s' % (self._name(op.public_key, peers), op.fields['endpoint']))
        if outcome.created:  # a new interface starts with the kernel's defaults
            self._ensure_forwarding(config.ifname)
        if self.options['relay']:
            self._ensure_relay_table(config.ifname, self.relay_nets)
        targets_changed = self._apply_targets(config, the_plan.routed)
        self._write_status(config, peers, found)
        return outcome.changed or targets_changed

    def _alive(self, found, candidates):
        """Public keys of the peers that are up: a handshake in the last 275 s and, for peers built from
        records (they keep a persistent keepalive, and so does the other end), something received
        lately. A peer this node keeps sending data to and that stays silent for UNANSWERED s
        (unanswered) gets one probe (an ICMPv6 echo to its mesh address, through the tunnel: data,
        which it answers at once), and with nothing back within PROBE_WAIT s it is stale: a path that
        breaks under traffic is noticed in about 7 s instead of 275 s. At rest the two ends take
        turns: WireGuard's persistent keepalive timer restarts on every packet, sent or received,
        so the keepalive of one end keeps the other's from firing, and each end hears from the
        other every second keepalive interval. So at rest nothing is probed before 2 keepalives +
        5 s of silence (a healthy mesh sends nothing but its keepalives), and 2 keepalives + 15 s
        stay the backstop (a peer that cannot be probed)."""
        self.stale = set()
        self.heard_again = set()
        if found is None:
            return set()
        state = found[2]
        now, ticks = time.time(), time.monotonic()
        alive = set()
        for peer in state.peers:
            stats = state.stats_of(peer)
            key = peer.public_key
            seen = self.rx_seen.get(key)
            if seen is None or seen[0] != stats.rx_bytes:
                # (bytes received, when they last moved, whether seen before, bytes sent by then)
                self.rx_seen[key] = seen = (stats.rx_bytes, ticks, seen is not None, stats.tx_bytes)
            mark = self.suspect.get(key)
            if mark is not None:
                if stats.last_handshake > mark[0] or (seen[2] and seen[1] > mark[1]):
                    # Heard from since it (or this node) moved. Say hello back at once: it may have
                    # learned of the move later than this node and be waiting to hear from it.
                    del self.suspect[key]
                    self.heard_again.add(key)
                else:
                    continue
            if stats.state(now) != 'up':
                continue
            if key in candidates and peer.persistent_keepalive and self._silent(
                    peer, seen[1], ticks, stats.tx_bytes - seen[3]):
                self.stale.add(key)
                continue
            alive.add(key)
        on_device = set(p.public_key for p in state.peers)
        for key in list(self.rx_seen):
            if key not in on_device:
                del self.rx_seen[key]
                self.probed.pop(key, None)
        return alive

    def _silent(self, peer, heard, ticks, sent=0):
        """Whether peer (up by its handshake) has been silent too long: see _alive and
        liveness.silence_verdict. Sends the probe. sent: bytes sent to the peer since something last came from it."""
        key, keepalive = peer.public_key, peer.persistent_keepalive
        silence = ticks - heard
        verdict = liveness.silence_verdict(silence, keepalive, sent)
        if verdict == 'dead':
            return True
        if verdict == 'fine':
            self.probed.pop(key, None)
            return False
        probed = self.probed.get(key)
        if probed is None or probed < heard:
            self.probed[key] = ticks
            log('peer %s: silent for %.0f s%s, probing' % (self._name(key, self.last[1].peers if self.last else []),
                                                           silence, ' with data unanswered'
                                                           if liveness.unanswered(sent, silence, keepalive) else ''))
            self._probe(peer)
            return False
        return ticks - probed > PROBE_WAIT

    def _probe(self, peer):
        """One ICMPv6 echo request to the peer's mesh address (its first IPv6 /128), which the routing
        rules send into the tunnel while the peer is up. Best effort."""
        address = next((n.network_address for n in peer.allowed_ips if n.version == 6 and n.prefixlen == 128), None)
        if address is None:
            return
        self.probes += 1
        try:
            sock = socket.socket(socket.AF_INET6, socket.SOCK_RAW, socket.IPPROTO_ICMPV6)
        except OSError as exc:
            log('cannot probe peers: %s' % exc)
            return
        try:
            sock.setblocking(False)
            # type 128 (echo request), code 0, checksum (the kernel fills it in), identifier, sequence
            sock.sendto(struct.pack('!BBHHH', 128, 0, 0, 0x776c, self.probes & 0xFFFF) + b'wglan probe',
                        (str(address), 0))
        except OSError:
            pass
        finally:
            sock.close()

    def _favourites(self, seen):
        """{relayed peer: the endpoint its relay sees it at now}, or where it was last reached directly
        (Sweeper.endpoints tries it two slots of three: the likeliest path to open again)."""
        by_key = dict((r.public_key, r) for r in self.records or [])
        for key, endpoint in seen.items():  # (peers up, where the device sees them)
            if key not in (self.relays or {}) and endpoint:
                self.last_direct[key] = endpoint
        out = {}
        for key, via in (self.relays or {}).items():
            observer = by_key.get(via)
            endpoint = observer.observed.get(key) if observer is not None else None
            endpoint = endpoint or self.last_direct.get(key)
            if endpoint:
                out[key] = endpoint
        return out

    def _choose_relays(self, peers, candidates, up):
        """Relay a peer that is not up after a full sweep, through the relay both ends agree on
        (relay.agree); direct again once it is up and neither end asks for a relay."""
        keys = set(p.public_key for p in peers)
        now = time.monotonic()
        before = dict(self.relays)
        # A peer whose path just broke (stale) is relayed at once, through a relay that is up (warm),
        # while the sweep goes on; one never up is relayed after a full sweep.
        wanted = set(key for key in keys - up
                     if key in self.relays or key in self.stale
                     or self.sweeper.exhausted(key, len(candidates.get(key) or ()), now))
        # A path that just broke, or a relayed peer that answers directly again: the other end may
        # decide (or have decided) for the pair, and the news comes through the records. Fetch them
        # now, on a fresh connection (a NAT that changed may have dropped the watch's).
        answering = set(key for key in self.relays or {} if key in up)
        news = (self.stale - self.was_stale) | (answering - self.answering)
        self.answering, self.was_stale = answering, set(self.stale)
        if news:
            self.renew_watches('path of %s changed' % ', '.join(sorted(self._name(k, peers) for k in news)))
            self.trigger('paths changed')
        use, publish = relay.agree(self.own_key, wanted, [r for r in self.records or [] if r.public_key in keys
                                                          or r.public_key == self.own_key], up, self.relays)
        self.relays = dict((k, v) for k, v in use.items() if k in keys)
        if publish != self.relay_requests:
            self.relay_requests = publish
            self.trigger('relays changed')  # the reconcile publishes them
        for key in sorted(set(before) | set(self.relays)):
            if before.get(key) != self.relays.get(key):
                via = self.relays.get(key)
                log('peer %s: %s' % (self._name(key, peers), 'via %s' % self._name(via, peers) if via
                                     else 'direct' if key in up else 'no relay'))
        self._save_paths()

    def _save_paths(self):
        """The relays, what this node's record asks for, the port it moved to and the host's addresses
        (the watcher's state file, which it alone writes), for wglan_peers runs."""
        if self.params is None or self.relays is None:
            return
        wanted = watcher_state.WatcherState(self.relays, self.relay_requests or {},
                                            self.port if self.port != self.params['listen_port'] else None,
                                            self.node_ips)
        if wanted == self.relays_saved:
            return
        try:
            watcher_state.write(wanted, self.params['relays_path'])
            self.relays_saved = wanted
        except WglanError as exc:
            log('cannot save the watcher\'s state: %s' % exc)

    def _ensure_forwarding(self, ifname):
        """With relay on, forward what arrives on the interface for another peer back into it: the
        relay table (nftables.ensure_relay_table), IPv6 and IPv4 alike, needs no forwarding sysctl.
        The interface's IPv4 forwarding switch, which versions before 0.5 turned on, goes back off
        where the host itself does not forward (so it was them)."""
        if not self.options['relay']:
            self._ensure_relay_table(ifname, None, force=True)
            return
        if self.options['relay_ipv6'] and not self.relay_ipv6_noted:
            log('relay_ipv6 is no longer needed and does nothing: a relay forwards without the '
                'host\'s forwarding switches')
            self.relay_ipv6_noted = True
        own = 'ipv4/conf/%s/forwarding' % ifname
        if self._sysctl(own) == '1' and self._sysctl('ipv4/conf/all/forwarding') == '0':
            try:
                with open('/proc/sys/net/' + own, 'w') as handle:
                    handle.write('0')
                log('/proc/sys/net/%s set back to 0: the relay table forwards IPv4 without it' % own)
            except OSError as exc:
                if not self.forwarding_warned:
                    log('cannot turn /proc/sys/net/%s back off: %s' % (own, exc.strerror or exc))
                    self.forwarding_warned = True
        self._ensure_relay_table(ifname, self.relay_nets, force=True)

    def _ensure_relay_table(self, ifname, nets, force=False):
        """The relay table for the allowed IPs of the peers this node reaches directly (nets; None:
        no relay table). Only when they changed, unless force (a reconcile looks whether it is still there)."""
        wanted = None if nets is None else (ifname, tuple(nets))
        if not force and wanted == self.relay_table:
            return
        try:
            table = nft_objects.relay_table_name(self.options['table'])
            if nftables.ensure_relay_table(ifname, nets or [], nets is not None, table):
                log('relay table %s' % ('removed' if nets is None else 'set for %d prefixes' % len(nets)))
            self.relay_table = wanted
            self.relay_table_error = None
        except WglanError as exc:
            if str(exc) != self.relay_table_error:  # once, not every second
                log('cannot relay: %s' % exc)
                self.relay_table_error = str(exc)
            self.relay_table = None

    @staticmethod
    def _sysctl(name):
        try:
            with open('/proc/sys/net/' + name) as handle:
                return handle.read().strip()
        except OSError:
            return None

    @staticmethod
    def _name(public_key, peers):
        for peer in peers:
            if peer.public_key == public_key:
                return peer.name or public_key[:8]
        return public_key[:8]

    def _apply_targets(self, config, routed):
        if not self.options['manage_rules']:
            return False
        try:
            rules = nft_objects.RulesConfig(config.ifname, routed, self.options['table'], config.fwmark,
                                            self.options['route_mark'], self.options['mark_mask'], config.mtu)
            changed, before, _after = nftables.ensure_table(rules, True, False)
            if changed and before is None:  # the table was gone: a flush takes the admin's holes too
                self._ensure_host_firewall(config)
            routing = policy_routing.ensure(config.ifname, table=self.options['route_table'],
                                            priority=self.options['rule_priority'], mark=self.options['route_mark'],
                                            mask=self.options['mark_mask'], present=True, check_mode=False)
        except WglanError as exc:
            log('rules not updated: %s' % exc)
            return False
        return bool(changed or routing)

    def _ensure_host_firewall(self, config):
        if not self.options['host_firewall']:
            return
        # (no forwarding hole: a relay forwards at the link's ingress, before any firewall chain; one that
        # an older version made goes, as every rule of ours that is not wanted)
        holes = firewall.wanted_holes(config.ifname, self.options['firewall_udp_ports'] or [config.listen_port])
        try:
            changed, added = firewall.ensure_holes(config.ifname, holes, own_table=self.options['table'])[:2]
        except WglanError as exc:
            log('host firewall not updated: %s' % exc)
            return
        if changed:
            log('host firewall: put back %s' % ', '.join(added))

    def _relay_load(self, peers):
        """What this node forwarded as a relay, per pair of peers (the relay table's counters):
        [{from, to, packets, bytes}]. Read at most every RELAY_LOAD_EVERY s."""
        if not self.options['relay']:
            return []
        ticks = time.monotonic()
        if self.relay_load is not None and ticks - self.relay_load[0] < RELAY_LOAD_EVERY:
            return self.relay_load[1]
        owners = []
        for peer in peers:
            owners.extend((net, peer.name or peer.public_key[:8]) for net in peer.allowed_ips)

        def owner(text):
            try:
                address = ipaddress.ip_address(text)
            except ValueError:
                return text
            return next((name for net, name in owners if address in net), text)
        try:
            counted = nftables.relay_load(nft_objects.relay_table_name(self.options['table']))
        except WglanError:
            counted = {}
        load = {}
        for (source, destination), (packets, octets) in counted.items():
            pair = (owner(source), owner(destination))
            total = load.get(pair, (0, 0))
            load[pair] = (total[0] + packets, total[1] + octets)
        rows = [dict(source=s, destination=d, packets=p, bytes=b) for (s, d), (p, b) in sorted(load.items())]
        self.relay_load = (ticks, rows)
        return rows

    def _write_status(self, config, peers, found):
        now = time.time()
        stats = {}
        endpoints = {}
        if found is not None:
            state = found[2]
            for peer in state.peers:
                stats[peer.public_key] = state.stats_of(peer)
                endpoints[peer.public_key] = peer.endpoint
        rows = []
        for peer in sorted(peers, key=lambda p: p.name or p.public_key):
            st = stats.get(peer.public_key)
            handshake = st.last_handshake if st is not None else 0
            rows.append(dict(name=peer.name or peer.public_key[:8], public_key=peer.public_key,
                             address=_main_address(peer.allowed_ips),
                             endpoint=endpoints.get(peer.public_key) or peer.endpoint or '',
                             state='stale' if peer.public_key in self.stale
                             else st.state(now) if st is not None else 'unknown',
                             handshake_age=int(now - handshake) if handshake else None,
                             via=self._name(self.relays[peer.public_key], peers)
                             if peer.public_key in self.relays else None,
                             rx_bytes=st.rx_bytes if st is not None else 0,
                             tx_bytes=st.tx_bytes if st is not None else 0))
        for row in rows:
            row['path'] = 'via %s' % row['via'] if row['via'] else 'direct'
        status = dict(interface=config.ifname, time=int(now), reconciles=self.reconciles, peers=rows,
                      relayed=self._relay_load(peers), probes=self.probes)
        self.status = status
        path = self.options['status_path']
        try:
            os.makedirs(os.path.dirname(path), exist_ok=True)
            state_files.write_json_if_changed(path, status, 0o644)
        except (OSError, WglanError) as exc:
            log('cannot write the status: %s' % exc)

    # -- loop --------------------------------------------------------------
    def run(self, max_seconds=None):
        deadline = None if max_seconds is None else time.monotonic() + max_seconds
        if self.options['metrics_port']:
            try:
                self.metrics_server = serve_metrics(self, self.options['metrics_address'], self.options['metrics_port'])
                log('metrics on http://%s:%d/metrics' % (self.options['metrics_address'], self.options['metrics_port']))
            except (OSError, ValueError) as exc:
                log('no metrics: cannot listen on %s:%s: %s'
                    % (self.options['metrics_address'], self.options['metrics_port'], exc))
        seen = [None]
        self._files_changed(seen)
        self.reconcile('start')
        next_resync = time.monotonic() + self.options['resync']
        next_sweep = time.monotonic() + 1.0
        next_address_check = time.monotonic() + self.options['address_check']
        while not self.stop.is_set() and (deadline is None or time.monotonic() < deadline):
            why = None
            try:
                why = self.events.get(timeout=0.25)
            except queue.Empty:
                pass
            if self._files_changed(seen):
                why = 'settings changed'
            if why is None and time.monotonic() >= next_address_check:
                next_address_check = time.monotonic() + self.options['address_check']
                if self._addresses_changed():
                    why = 'addresses changed'
            if why is None and time.monotonic() >= next_resync:
                why = 'resync'
            if why is not None:
                while not self.events.empty():  # one reconcile for a burst of events
                    self.events.get_nowait()
                self.reconcile(why)
                next_resync = time.monotonic() + self.options['resync']
            elif time.monotonic() >= next_sweep:
                self.apply(purge=bool(self.params and self.params.get('purge')))
                next_sweep = time.monotonic() + 1.0
        self.stop.set()
        if self.metrics_server is not None:
            self.metrics_server.shutdown()
            self.metrics_server.server_close()


def _main_address(allowed):
    """The address to show for a peer: its mesh address (the IPv6 host route) before node IPs and CIDRs."""
    hosts = [n for n in allowed if n.version == 6 and n.prefixlen == 128]
    return str((hosts or list(allowed) or [''])[0])


def _place(place):
    ips, seen = place
    return '%s%s' % (', '.join(ips) or 'no address', ' (seen at %s)' % seen if seen else '')


def _label(value):
    return str(value).replace('\\', '\\\\').replace('"', '\\"').replace('\n', '\\n')


def format_metrics(status):
    """The status as Prometheus text exposition (version 0.0.4)."""
    lines = []

    def metric(name, kind, help_text, samples):
        lines.append('# HELP %s %s' % (name, help_text))
        lines.append('# TYPE %s %s' % (name, kind))
        for labels, value in samples:
            text = ','.join('%s="%s"' % (k, _label(v)) for k, v in labels)
            lines.append('%s%s %s' % (name, '{%s}' % text if text else '', value))

    peers = status.get('peers', []) if status else []
    ident = [(p, (('peer', p['name']), ('public_key', p['public_key']))) for p in peers]
    metric('wglan_peer_up', 'gauge', 'Whether the peer is up (handshake in the last 275 s, and not stale).',
           [(labels, 1 if p['state'] == 'up' else 0) for p, labels in ident])
    metric('wglan_peer_relayed', 'gauge', 'Whether the peer is reached through a relay (label via).',
           [(labels + (('via', p.get('via') or ''),), 1 if p.get('via') else 0) for p, labels in ident])
    metric('wglan_peer_last_handshake_age_seconds', 'gauge', 'Seconds since the latest handshake with the peer.',
           [(labels, p['handshake_age']) for p, labels in ident if p.get('handshake_age') is not None])
    metric('wglan_peer_receive_bytes_total', 'counter', 'Bytes received from the peer.',
           [(labels, p.get('rx_bytes', 0)) for p, labels in ident])
    metric('wglan_peer_transmit_bytes_total', 'counter', 'Bytes sent to the peer.',
           [(labels, p.get('tx_bytes', 0)) for p, labels in ident])
    relayed = status.get('relayed', []) if status else []
    metric('wglan_relay_forwarded_bytes_total', 'counter',
           'Bytes this node forwarded as a relay, by the peers they came from and went to.',
           [((('from', r['source']), ('to', r['destination'])), r['bytes']) for r in relayed])
    metric('wglan_relay_forwarded_packets_total', 'counter', 'Packets this node forwarded as a relay.',
           [((('from', r['source']), ('to', r['destination'])), r['packets']) for r in relayed])
    metric('wglan_peers', 'gauge', 'Peers configured.', [((), len(peers))])
    metric('wglan_reconciles_total', 'counter', 'Reconciles since the watcher started.',
           [((), status.get('reconciles', 0) if status else 0)])
    metric('wglan_probes_total', 'counter', 'Probes sent to peers that went silent (none at rest).',
           [((), status.get('probes', 0) if status else 0)])
    metric('wglan_status_timestamp_seconds', 'gauge', 'When the watcher last wrote its status.',
           [((), status.get('time', 0) if status else 0)])
    return '\n'.join(lines) + '\n'


def serve_metrics(watcher, address, port):
    """A thread serving GET /metrics from the watcher's last status. Returns the server."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the http.server API)
            if self.path.split('?')[0] != '/metrics':
                self.send_error(404, 'only /metrics here')
                return
            body = format_metrics(watcher.status).encode('utf-8')
            self.send_response(200)
            self.send_header('Content-Type', 'text/plain; version=0.0.4; charset=utf-8')
            self.send_header('Content-Length', str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):  # no access log in the journal
            return

    server = ThreadingHTTPServer((address, port), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, name='metrics', daemon=True)
    thread.start()
    return server


def format_status(status):
    rows = [('PEER', 'ADDRESS', 'ENDPOINT', 'STATE', 'HANDSHAKE', 'PATH')]
    for peer in status.get('peers', []):
        age = peer.get('handshake_age')
        rows.append((peer['name'], peer['address'], peer['endpoint'] or '-', peer['state'],
                     '-' if age is None else '%ds ago' % age, peer.get('path', 'direct')))
    widths = [max(len(str(row[i])) for row in rows) for i in range(len(rows[0]))]
    lines = ['  '.join(str(cell).ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows]
    relayed = status.get('relayed') or []
    if relayed:
        lines.append('')
        lines.append('relayed for others:')
        lines.extend('  %s -> %s: %d packets, %d bytes' % (r['source'], r['destination'], r['packets'], r['bytes'])
                     for r in relayed)
    return '\n'.join(['interface %s, status of %s' % (status.get('interface'), time.strftime(
        '%Y-%m-%d %H:%M:%S', time.localtime(status.get('time', 0))))] + lines)


def main(argv=None):
    parser = argparse.ArgumentParser(prog='wglan', description='wglan.mesh watcher')
    parser.add_argument('command', choices=['run', 'status'])
    parser.add_argument('--settings', default=SETTINGS)
    parser.add_argument('--config', default=CONFIG)
    parser.add_argument('--status-path', default=None)
    parser.add_argument('--json', action='store_true', help='status as JSON')
    args = parser.parse_args(argv)
    if args.command == 'status':
        path = args.status_path or load_options(args.config if os.path.exists(args.config) else None)['status_path']
        status = state_files.read_json(path)
        if status is None:
            out('no status at %s: is wglan-watcher running?' % path, sys.stderr)
            return 1
        out(json.dumps(status, indent=2) if args.json else format_status(status))
        return 0
    try:
        watcher = Watcher(args.settings, args.config)
    except WglanError as exc:
        out('wglan-watcher: %s' % exc, sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_args: watcher.stop.set())
    signal.signal(signal.SIGHUP, lambda *_args: watcher.trigger('SIGHUP'))
    log('started (settings %s, options %s)' % (args.settings, args.config))
    watcher.run()
    log('stopped')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
