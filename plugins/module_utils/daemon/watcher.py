# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The watcher: keeps the mesh current between Ansible runs, with the modules' own plan.

    python3 -m ansible_collections.wglan.mesh.plugins.module_utils.daemon.cli run [--settings F] [--config F]
    python3 -m ansible_collections.wglan.mesh.plugins.module_utils.daemon.cli status

It reads the settings the node role saved for wglan_peers (settings.json: the
interface, the sources, the token) and its own options (watcher.json, written
by wglan_watcher), then loops:
  - a reconcile (sources -> model.plan.topology) when a source reports a change
    (discovery-service long poll, Kubernetes Node watch: watches.py), when
    either file changes, and every `resync` seconds as a safety net;
  - every second, an apply: the device is read, the peers that are up found
    (liveness.py), each peer that is not up put on its next endpoint candidate
    after `sweep_interval` seconds without a handshake (sweeper.py), a peer
    still not up after a full sweep relayed through the node both ends agree
    on (relaying.py), then model.plan.plan gives the device peers and their
    operations, and the nftables targets (the allowed IPs of the peers that
    are up, all with force_routing); with `relay` on, this node forwards for
    others through a netdev table at the interface's ingress;
  - this node's record goes out with the endpoints its up peers are seen at
    (so NATed nodes find each other) when it changes, and again before its
    TTL runs out (publishing.py);
  - with metrics_port, Prometheus metrics of the status (status.py).
A source that fails leaves the last good state in place. Logs (stdout, the
journal under systemd) never contain secrets. The watcher writes its status
(status_path) and its own state file (relays, port, addresses: read by
wglan_peers runs) and nothing of the role's.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import queue
import threading
import time

from ansible_collections.wglan.mesh.plugins.module_utils.daemon import loop, rules, status as status_file
from ansible_collections.wglan.mesh.plugins.module_utils.daemon.common import Repeats, log, name_of
from ansible_collections.wglan.mesh.plugins.module_utils.daemon.liveness import Liveness
from ansible_collections.wglan.mesh.plugins.module_utils.daemon.naming import Names
from ansible_collections.wglan.mesh.plugins.module_utils.daemon.publishing import Publisher
from ansible_collections.wglan.mesh.plugins.module_utils.daemon.relaying import Relays, RelayTable
from ansible_collections.wglan.mesh.plugins.module_utils.daemon.rotating import KeyRotation
from ansible_collections.wglan.mesh.plugins.module_utils.daemon.sweeper import Sweeper
from ansible_collections.wglan.mesh.plugins.module_utils.daemon.watches import Watches
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.host import key_files, settings_file, state_files, watcher_state, wg_device
from ansible_collections.wglan.mesh.plugins.module_utils.model import keys, node_records, plan, settings
from ansible_collections.wglan.mesh.plugins.module_utils.model import liveness as liveness_model, watcher_options
from ansible_collections.wglan.mesh.plugins.module_utils.sources import gather

SETTINGS = settings.SETTINGS_PATH
CONFIG = settings.WATCHER_CONFIG
OPTIONS = watcher_options.DEFAULTS


def load_options(path):
    """The watcher's options file, validated (model.watcher_options: as wglan_watcher did at play time)."""
    data = state_files.read_json(path) if path else None
    if data is not None and not isinstance(data, dict):
        raise WglanError('%s is not a JSON object' % path)
    return watcher_options.validate(data or {}, '%s: ' % path)


class Watcher:
    def __init__(self, settings_path=SETTINGS, config_path=CONFIG):
        self.settings_path = settings_path
        self.config_path = config_path
        self.options = load_options(config_path)
        self.events = queue.Queue()
        self.stop = threading.Event()
        self.watches = Watches(self.trigger, self.stop, self.republish)
        self.sweeper = Sweeper(self.options['sweep_interval'])
        self.liveness = Liveness()
        self.publisher = Publisher()
        self.relays = Relays()
        notices = rules.kernel_notices_for_rules()  # (one subscription each, shared by the keepers)
        self.relay_table = RelayTable(rules.Keeper(notices[:1]))
        self.rules_keeper = rules.Keeper(notices)
        self.holes_keeper = rules.Keeper(notices[:1])
        self.names = Names()
        self.params = None
        self.last = None            # (config, topology, candidates) of the last good reconcile
        self.reconciles = 0
        self.saved_state = None     # what the watcher's state file holds
        self.status = None          # the last status written (also served as metrics)
        self.repeats = Repeats()    # the reconciles' warnings already logged
        self.rotation = KeyRotation(self.options['rotate_request'])
        self.applied_at = 0.0       # the wall-clock time of the last apply (peers' key switches are timed)
        self.switch_checks = []     # after this node's key switch: (its time, when to look for stalled pairs)
        self.refused = {}           # a mesh with certificates: what the last reconcile left out, by reason

    def trigger(self, why):
        self.events.put(why)

    def republish(self, why):
        """A discovery service lost this node's record (it restarted empty): the next reconcile
        publishes it again, to every service."""
        self.publisher.again = True
        self.trigger(why)

    # -- reconcile: sources -> topology --------------------------------------
    def reconcile(self, why):
        """Sources -> model -> device, state and targets. On any error the last good state stays."""
        started = time.monotonic()
        try:
            params = settings_file.load(self.settings_path)
            # (the run's records file is the run's: the watcher keeps its own)
            params['sources_state_path'] = settings.watcher_records_path(params['state_path'])
            self.options = load_options(self.config_path)
            self.sweeper.interval = self.options['sweep_interval']
        except WglanError as exc:
            log('not reconciling: %s' % exc)
            return False
        if not self.rotation.loaded:
            self.rotation.load(params['private_key_path'])
        self.refresh_node_ips(params)
        recorded4 = (params.get('publish') or {}).get('address4')
        params['address4_held'] = self.publisher.address4
        port = self._prepare_publish(params)
        warnings = []
        try:
            config, own_key = gather.device_config(params)
            topo, gathered = gather.mesh_topology(params, own_key, warnings.append)
            config = gather.with_overlay(config, params, gathered)
        except WglanError as exc:
            log('not reconciling: %s' % exc)
            return False
        for text in self.repeats.fresh(warnings):  # (the sources' and the topology's; once, not at each reconcile)
            log(text)
        self._take(params, config, topo, gathered)
        self.refused = gathered.refused
        if self.publisher.hold_ipv4(gathered.address4, recorded4):
            self.trigger('the IPv4 overlay address moves')  # the next reconcile publishes it
        if self.publisher.listen_port(params, topo.me, topo.records) != port:
            self.trigger('the listen port moves')  # the records say this node shares its NAT now (or no longer)
            self._save_state()
        self.publisher.sent(params['publish'])
        self._save_records(params, gathered)
        changed = self.apply(purge=params['purge'])
        self.names.ensure(params, config, gathered)  # (after the apply: the responder binds the interface's address)
        self.relay_table.ensure(config.ifname, self.options)
        rules.ensure_host_firewall(config, self.options, self.holes_keeper)
        self.watches.start(params, self.publisher.own_ips, own_key)
        self.reconciles += 1
        elapsed = (time.monotonic() - started) * 1000
        log('reconciled (%s) in %.0f ms: %d peers%s' % (why, elapsed, len(topo.peers),
                                                        ', changes applied' if changed else ''))
        return True

    def refresh_node_ips(self, params):
        """The host's addresses as they are now into the record to publish (and the watcher's state);
        after a move of this machine every peer must handshake again before it counts as up."""
        if self.publisher.refresh_node_ips(params, self.options):
            self.liveness.this_node_moved()
        self._save_state()

    def _prepare_publish(self, params):
        """The port to listen on, and this node's record with it (when it is due to go out)."""
        port = self.publisher.listen_port(params, self.last[1].me if self.last else None,
                                          self.last[1].records if self.last else None)
        self._save_state()
        params['effective_port'] = port
        if params.get('publish'):
            record = dict(params['publish'], port=port)
            for name in ('next_public_key', 'next_key_at'):
                record.pop(name, None)
            record.update(self.rotation.record_fields())
            own = self._own_public_key(params)
            if own:
                record['public_key'] = own  # (after a key switch, the role's record still has the old key)
            params['publish'] = record
        params['publish'] = self.publisher.record_to_publish(params, self.relays.requests, self.options)
        return port

    @staticmethod
    def _own_public_key(params):
        try:
            raw = key_files.read_private_key(params['private_key_path'])
        except WglanError:
            return None
        return keys.public_key_from_private(raw) if raw is not None else None

    def rotation_tick(self):
        """Key rotation, looked at every loop: a rotation asked for begins (the reconcile publishes the next
        key), this node's switch time passed (the device takes the next key now, the reconcile that publishes
        it is queued), a peer's switch time passed since the last apply (apply now). Returns why to reconcile
        now, or None."""
        params = self.params
        if params is None:
            return None
        key_path = params['private_key_path']
        try:
            why = self.rotation.requested(key_path, self.options['key_lifetime'])
            if why and not settings.live_source(params):
                log('key rotation (%s) not begun: it needs a live source (the discovery service or Kubernetes) '
                    'to tell the peers the next key before the switch' % why)
            elif why and self.rotation.begin(key_path, self.options['key_overlap'], why):
                self._save_state()
                return 'key rotation begins'
            if self.rotation.due():
                # (in a mesh with certificates, the old key signs the next one before it goes)
                self.rotation.switch(key_path, (params.get('publish') or {}).get('name')
                                     if params.get('ca_public_key') else None)
                self._switch_device(params)
                self._save_state()
                # (the reconcile that publishes the new key waits in the queue behind the first look
                # at the pairs, 0.3 s on: it reads the sources and takes most of a second, and a pair
                # whose handshakes crossed at the switch would wait for it. The peers know the key.)
                self.events.put('key switch')
                return None
        except WglanError as exc:
            log(str(exc))
        self._check_switch()
        if self.last is not None:
            at = plan.next_rotation(self.last[1], self.applied_at)
            if at is not None and time.time() >= at:
                self.apply(purge=bool(params.get('purge')))
        return None

    def _switch_device(self, params):
        """The device takes the new key at once, with the preshared keys it makes with each peer
        (wg_device.switch_key), from the last topology: the peers switch a moment later, and a reconcile
        (which reads the sources over the network) would come tens of milliseconds late."""
        if self.last is None:
            return
        config, topo, candidates = self.last
        raw = key_files.read_private_key(params['private_key_path'])
        if raw is None:
            return
        secret = params.get('cluster_token') if params.get('pair_preshared_keys') else None
        switched = plan.with_own_key(topo, keys.public_key_from_private(raw), secret)
        config = copy.copy(config)
        config.private_key = raw
        self.last = (config, switched, candidates)
        try:
            found = wg_device.read_device(config.ifname)
            running = found[2].peers if found else []
            # the peers as they are on the device now (a peer's key switch applied), with their new preshared keys
            now_peers = plan.rotated(switched.peers, switched.rotations, time.time(), running)
            on_device = set(p.public_key for p in running)
            psks = dict((p.public_key, p.preshared_key) for p in now_peers
                        if p.public_key in on_device and p.preshared_key)
            wg_device.switch_key(config, raw, psks)
            # a handshake with the new key to every peer now: none waits for traffic
            wg_device.kick(config, [p for p in now_peers if p.public_key in on_device])
            switched = time.time()
            self.switch_checks = [(switched, switched + after) for after in liveness_model.SWITCH_CHECKS]
        except WglanError as exc:
            log('key switch: %s' % exc)
        self.apply(purge=bool(params.get('purge')))

    def _check_switch(self):
        """A moment after this node's key switch: each pair with no handshake since (its handshake and the
        peer's crossed, model.liveness.SWITCH_CHECKS) is started again from this end, at once."""
        if not self.switch_checks or time.time() < self.switch_checks[0][1] or self.last is None:
            return
        switched, _when = self.switch_checks.pop(0)
        config, topo = self.last[0], self.last[1]
        stalled = []
        try:
            found = wg_device.read_device(config.ifname)
            if found is None:
                return
            # (the peers that route addresses: a peer's next key standing by has none, and no handshake yet)
            stalled = liveness_model.stalled_since([p for p in found[2].peers if p.allowed_text()], found[2].stats,
                                                   switched)
            if stalled:
                log('key switch: no handshake with %s %.1f s after the switch; starting again'
                    % (', '.join(sorted(name_of(p.public_key, topo.peers) for p in stalled)), time.time() - switched))
                wg_device.restart_handshakes(config, stalled)
        except WglanError as exc:
            log('key switch: %s' % exc)
        if not stalled:
            self.switch_checks = []

    def next_moment(self):
        """Seconds until the next key switch (this node's or a peer's) or look after this node's, or None."""
        times = [self.rotation.pending[1]] if self.rotation.pending else []
        times.extend(when for _switched, when in self.switch_checks[:1])
        if self.last is not None:
            at = plan.next_rotation(self.last[1], time.time())
            if at is not None:
                times.append(at)
        return max(0.0, min(times) - time.time()) if times else None

    def _take(self, params, config, topo, gathered):
        """The reconcile's result becomes the one the applies work from."""
        self.liveness.notice_moves(gathered.me, gathered.records or [], topo.peers)
        candidates = plan.candidates_of(topo, moved=self.liveness.moved())
        self.params = params
        if self.relays.relays is None:  # the first reconcile: a restart keeps the relays it had
            self.relays.restore(watcher_state.read(params['relays_path']))
        self.last = (config, topo, candidates)

    def _save_records(self, params, gathered):
        try:
            if gathered.saved is not None:
                state_files.write_json_if_changed(params['sources_state_path'], gathered.saved, 0o644, False,
                                                  node_records.without_observations)
        except WglanError as exc:
            log('cannot save the records: %s' % exc)

    def _save_state(self):
        """The relays, what this node's record asks for, the port it moved to, the host's addresses, the
        next key and the IPv4 overlay address it moved to (the watcher's state file, which it alone
        writes), for wglan_peers runs."""
        params = self.params
        if params is None or self.relays.relays is None:
            return
        port = self.publisher.port
        wanted = watcher_state.WatcherState(self.relays.relays, self.relays.requests or {},
                                            port if port is not None and port != params['listen_port'] else None,
                                            self.publisher.node_ips, self.rotation.record_fields(),
                                            self.publisher.address4 if params.get('ipv4_prefix') else None)
        if wanted == self.saved_state:
            return
        try:
            watcher_state.write(wanted, params['relays_path'])
            self.saved_state = wanted
        except WglanError as exc:
            log('cannot save the watcher\'s state: %s' % exc)

    # -- apply: every second -------------------------------------------------
    def apply(self, purge=True):
        """The plan of the last topology with this second's observations, onto the device; then the targets."""
        if self.last is None:
            return False
        config, topo, candidates = self.last
        found = wg_device.read_device(config.ifname)
        up = self.liveness.alive(found, candidates)
        seen, changed = self.publisher.seen(found, up)
        if changed:
            self.trigger('observations changed')  # the reconcile publishes the fresh observations
        swept, moved = self.sweeper.endpoints(candidates, up, time.monotonic(),
                                              self.relays.favourites(seen, topo.records))
        self._choose_relays(topo, candidates, up)
        observations = plan.Observations(alive=up, stale=self.liveness.stale, swept=swept, relays=self.relays.relays)
        self.applied_at = time.time()
        the_plan = plan.plan(topo, found[2] if found else None, observations, self.applied_at, purge=purge,
                             force_routing=self.options['force_routing'])
        try:
            outcome = wg_device.apply_device(config, the_plan.peers, purge=purge, current=found, ops=the_plan.ops)
            wg_device.kick(config, [p for p in the_plan.peers
                                    if p.public_key in moved or p.public_key in self.liveness.heard_again])
        except WglanError as exc:
            log('device not updated: %s' % exc)
            return False
        for op in outcome.ops:
            if op.action == 'update' and set(op.fields) == set(['endpoint']):
                log('peer %s: trying endpoint %s' % (name_of(op.public_key, topo.peers), op.fields['endpoint']))
        self._relay_for_others(config, the_plan, outcome.created)
        targets_changed = rules.apply_targets(config, the_plan.routed, self.options, topo.allow, self.rules_keeper,
                                              self.holes_keeper)
        self._write_status(config, topo.peers, found, the_plan.states)
        return outcome.changed or targets_changed

    def _choose_relays(self, topo, candidates, up):
        """A peer whose path just broke (stale) is relayed at once, through a relay that is up (warm),
        while the sweep goes on; one never up is relayed after a full sweep."""
        keys = set(p.public_key for p in topo.peers)
        now = time.monotonic()
        stale = self.liveness.stale
        known = self.relays.relays or {}
        wanted = set(key for key in keys - up if key in known or key in stale
                     or self.sweeper.exhausted(key, len(candidates.get(key) or ()), now))
        own_key = topo.me.public_key if topo.me is not None else None
        news, asked = self.relays.choose(own_key, topo.peers, topo.records, wanted, up, stale)
        if news:
            # A path that just broke, or a relayed peer that answers directly again: the other end may
            # decide (or have decided) for the pair, and the news comes through the records. Fetch them
            # now, on a fresh connection (a NAT that changed may have dropped the watch's).
            self.watches.renew('path of %s changed' % ', '.join(sorted(name_of(k, topo.peers) for k in news)))
            self.trigger('paths changed')
        if asked:
            self.trigger('relays changed')  # the reconcile publishes them
        self._save_state()

    def _relay_for_others(self, config, the_plan, created):
        if self.options['relay']:
            self.relay_table.nets = the_plan.relay_nets
        if created:  # a new interface starts with the kernel's defaults
            self.relay_table.ensure(config.ifname, self.options)
        if self.options['relay']:
            self.relay_table.update(config.ifname, the_plan.relay_nets, self.options['table'])

    def _write_status(self, config, peers, found, states):
        now = time.time()
        self.status = dict(interface=config.ifname, time=int(now), reconciles=self.reconciles,
                           peers=status_file.peer_rows(peers, found, states, self.relays.relays or {}, now),
                           relayed=self.relay_table.forwarded(peers, self.options), probes=self.liveness.probes,
                           names=self.names.status(), refused=dict(self.refused))
        status_file.write(self.options['status_path'], self.status)

    # -- loop --------------------------------------------------------------
    def run(self, max_seconds=None):
        try:
            loop.run(self, max_seconds)
        finally:
            self.names.close()
