# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The plan: everything known in, one value out (pure).

Two steps, both pure values, so that the watcher can redo the second every
second without the first:

    topology(...)  the records and the explicit peers -> the mesh's peers, each
                   one's endpoint candidates and the endpoint chosen, the
                   prefixes a peer had to give up;
    plan(...)      the topology, the device as read and the watcher's
                   observations (sweep position, liveness, relays) -> the final
                   device peers, the operations that make the device so, the
                   nftables targets, each peer's state and the relay table's
                   prefixes; record_to_publish makes the record that goes out.

wglan_peers and the watcher are shells around these: they gather the inputs
(sources, device, files), call them, apply the result and report (wglan_info,
which changes nothing, reports the device with model.liveness's definitions).
Check and diff mode come from the plan's operations.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy

from ansible_collections.wglan.mesh.plugins.module_utils.model import liveness, segments
from ansible_collections.wglan.mesh.plugins.module_utils.model.keys import pair_preshared_key
from ansible_collections.wglan.mesh.plugins.module_utils.model.peers import Peer, diff_peers, resolve_overlaps
from ansible_collections.wglan.mesh.plugins.module_utils.model.relay import apply_relays
from ansible_collections.wglan.mesh.plugins.module_utils.model.topology import allowed_ips_of, build_mesh, endpoint_candidates

# The order of a moved peer's endpoint candidates, by the reason they are one: observations of a peer
# that moved may be of its old place, so the address the service saw its new record come from, and its
# own addresses, come first.
AFTER_A_MOVE = {'same-link': 0, 'announced': 1, 'discovery': 2, 'own-address': 3, 'observed': 4}


class Topology:
    """The mesh as the records describe it, before any observation."""

    __slots__ = ('peers', 'candidates', 'choices', 'dropped', 'warnings', 'me', 'records', 'rotations', 'allow')

    def __init__(self, peers, candidates, choices, dropped, warnings, me=None, records=None, rotations=None,
                 allow=None):
        self.peers = peers              # [Peer]: explicit peers and peers built from records
        self.candidates = candidates    # {public key: [(endpoint, reason)]} of peers built from records
        self.choices = choices          # {name: {'endpoint', 'reason'}} (wglan_peers' `endpoints`)
        self.dropped = dropped          # [(peer, prefix, reason)] given up to a peer that holds them
        self.warnings = warnings        # [text]
        self.me = me                    # this node's record (None: no record sources)
        self.records = records          # the records the peers came from (None: no record sources)
        self.rotations = rotations or {}  # {public key: (next public key, unix time, its preshared key)}
        self.allow = allow              # [segments.Allow] the segment filter lets in (None: no filter)


def topology(explicit, me=None, records=None, own_key=None, pod_networking=False,
             keepalive=25, psk_secret=None, policy=None):
    """The Topology of explicit peers ([Peer]) and of the records (None: none given) for this node
    (me, own_key). psk_secret: derive each pair's preshared key from it (the cluster token).
    policy: segments.parse_policy's (None: no segment filter)."""
    peers, candidates, choices, warnings = list(explicit), {}, {}, []
    if records is not None:
        # a node that switched to its next key published a record with it: the one with the old key
        # (kept by a service until its TTL) no longer stands for it
        present = set(r.public_key for r in records) | set([own_key])
        records = [r for r in records if r.next_key is None or r.next_key[0] not in present]
        built, chosen, warnings = build_mesh(me, records, pod_networking, keepalive)
        if me is not None and segments.segmented(me, records):
            # a full mesh inside each segment, the other segments' nodes through a gateway (model.segments)
            route = segments.routes(me, records)
            built = segments.through_gateways(built, route)
            direct_names = set(r.name for r in records if r.public_key in route.direct)
            chosen = dict((name, c) for name, c in chosen.items() if name in direct_names)
        if psk_secret and own_key:
            built = [p.replace(preshared_key=pair_preshared_key(psk_secret, own_key, p.public_key)) for p in built]
        by_key = dict((r.public_key, r) for r in records)
        for peer in built:
            if peer.public_key in by_key and me is not None:
                candidates[peer.public_key] = endpoint_candidates(me, by_key[peer.public_key], records)
        choices = dict((name, dict(endpoint=e, reason=r)) for name, (e, r) in sorted(chosen.items()))
        given = set(p.public_key for p in peers)
        peers.extend(p for p in built if p.public_key not in given)
    if own_key is not None:
        peers = [p for p in peers if p.public_key != own_key]
    peers, dropped = resolve_overlaps(peers)
    rotations = {}
    for record in records or ():
        if record.next_key is not None and record.public_key != own_key and record.next_key[0] != own_key:
            psk = pair_preshared_key(psk_secret, own_key, record.next_key[0]) if psk_secret and own_key else None
            rotations[record.public_key] = (record.next_key[0], record.next_key[1], psk)
    allow = None
    if policy is not None and me is not None and records is not None:
        allow = segments.allowed(me, records, policy, lambda r: allowed_ips_of(r, pod_networking))
    return Topology(peers, candidates, choices, dropped, warnings, me, records, rotations, allow)


# The peers move a node's addresses onto its next key this long after the node's switch time. The
# node and its peers switch at the same moment: the watchers start no reconcile just before it
# (daemon/loop.py), so each is on time to a few milliseconds. A peer a little ahead sends its
# handshake to a node still on the old key, which drops it (WireGuard tries again only 5 s later), but
# its packets wait in WireGuard's queue: the node sends a handshake with its new key to every peer as it
# switches, and the queue goes out with it. What is lost is what the node sends in between (to an
# entry the peer no longer has, or to the stand-by, which has no addresses yet).
PEER_SWITCH_LAG = 0.0


def with_own_key(topo, own_key, psk_secret):
    """topo after this node switched to own_key (a key rotation): the preshared key of every pair it makes
    with a peer from the records, and with a peer's next key, made again with the new key."""
    switched = copy.copy(topo)
    if psk_secret:
        switched.peers = [p.replace(preshared_key=pair_preshared_key(psk_secret, own_key, p.public_key))
                          if p.public_key in topo.candidates else p for p in topo.peers]
        switched.rotations = dict((old, (key, at, pair_preshared_key(psk_secret, own_key, key)))
                                  for old, (key, at, _psk) in topo.rotations.items())
    return switched


def rotated(peers, rotations, now, running=()):
    """The peers with each key rotation applied at time now (model of a node's key rotation):
    before the node's switch time, its next key stands by beside its key (no allowed IPs: both ends can
    handshake with it the moment the node switches); from that time on (PEER_SWITCH_LAG after it), the
    next key takes the peer's place, allowed IPs and all. A stand-by or a switched peer keeps the endpoint the device has for the
    peer (where WireGuard roamed it)."""
    if not rotations:
        return peers
    endpoints = dict((p.public_key, p.endpoint) for p in running if p.endpoint)
    out = []
    for peer in peers:
        if peer.public_key not in rotations:
            out.append(peer)
            continue
        key, at, psk = rotations[peer.public_key]
        endpoint = endpoints.get(peer.public_key) or endpoints.get(key) or peer.endpoint
        if now >= at + PEER_SWITCH_LAG:
            out.append(peer.replace(public_key=key, preshared_key=psk, endpoint=endpoint))
        else:
            out.append(peer)
            out.append(Peer(key, endpoint, (), psk, 0, peer.name))
    return out


def switched_keys(relays, rotations, now):
    """The relays ({peer key: relay key}) with the keys of the nodes that switched keys at now replaced by
    their new ones: a relayed pair stays relayed through a key switch, also one of the relay's."""
    if not rotations:
        return relays
    new = dict((old, key) for old, (key, at, _psk) in rotations.items() if now >= at + PEER_SWITCH_LAG)
    return dict((new.get(peer, peer), new.get(via, via)) for peer, via in relays.items())


def next_rotation(topo, now):
    """The next time a peer switches keys (a plan made after it differs), or None."""
    times = [at + PEER_SWITCH_LAG for _key, at, _psk in topo.rotations.values() if at + PEER_SWITCH_LAG > now]
    return min(times) if times else None


class Observations:
    """What the watcher knows beyond the records. The default is what a run of a module knows: nothing."""

    __slots__ = ('alive', 'stale', 'swept', 'relays', 'keep_endpoints')

    def __init__(self, alive=None, stale=(), swept=None, relays=None, keep_endpoints=False):
        self.alive = alive                  # keys of peers up by the watcher's look; None: judge by handshakes
        self.stale = set(stale)             # up by their handshake, but silent (liveness)
        self.swept = dict(swept or {})      # {key: endpoint} the sweep has each peer that is not up on
        self.relays = dict(relays or {})    # {key: relay key} in use
        self.keep_endpoints = keep_endpoints  # a run beside a watcher: running peers keep their endpoints


class Plan:
    """One value: what the device, the rules and the record should be. The device peers, their
    operations and the states are made at once; the rest when asked for (a watcher asks every second
    for the routed prefixes only, a run for the targets only). Endpoint candidates: candidates_of.."""

    __slots__ = ('peers', 'ops', 'up', 'topology', '_seen', '_force', '_device', '_now', '_cache')

    def __init__(self, peers, ops, up, topology, seen, force_routing, device, now):
        self.peers = peers              # the device peers, sweeps and relays applied
        self.ops = ops                  # the operations that make the device so
        self.up = up                    # keys of the peers up (by the watcher's look, or by handshake)
        self.topology = topology
        self._seen, self._force, self._device, self._now, self._cache = seen, force_routing, device, now, {}

    def _once(self, name, make):
        if name not in self._cache:
            self._cache[name] = make()
        return self._cache[name]

    @property
    def states(self):
        """{public key: 'up' | 'down' | 'unknown' | 'stale'} of every peer of the topology."""
        return self._once('states', self._states)

    def _states(self):
        device, states = self._device, {}
        for peer in self.topology.peers:
            handshake = device.stats_of(peer).last_handshake if device is not None and device.stats else 0
            states[peer.public_key] = liveness.peer_state(handshake, self._now, peer.public_key in self._seen.stale)
        return states

    @property
    def targets(self):
        """Every allowed IP on the device's peers (text; allowed_text is made once per peer, shared with the diff)."""
        return self._once('targets', lambda: sorted(set(t for p in self.peers for t in p.allowed_text())))

    @property
    def routed(self):
        """The prefixes to route into the tunnel: those of the peers up (all with force_routing, or for a run)."""
        if self._force or self._seen.alive is None:
            return self.targets
        return self._once('routed', lambda: sorted(set(t for p in self.peers if p.public_key in self.up
                                                       for t in p.allowed_text())))

    @property
    def relay_nets(self):
        """What this node, as a relay, forwards: the addresses of the peers it reaches directly."""
        return self._once('relay_nets', lambda: sorted(set(
            t for p in self.topology.peers if p.public_key not in self._seen.relays for t in p.allowed_text())))


def candidates_of(topo, moved=()):
    """Each peer's endpoint candidates, a moved peer's reordered (AFTER_A_MOVE)."""
    out = {}
    for key, options in topo.candidates.items():
        options = list(options)
        if key in moved:
            options.sort(key=lambda option: AFTER_A_MOVE.get(option[1], len(AFTER_A_MOVE)))
        out[key] = options
    return out


def needs_handshakes(topo, observations=None):
    """Whether plan() needs the device's handshake times: for the peers whose endpoint is a fallback
    guess, unless a watcher's observations (or keep_endpoints) decide instead."""
    seen = observations or Observations()
    return seen.alive is None and not seen.keep_endpoints and any(p.endpoint_fallback for p in topo.peers)


def plan(topo, device=None, observations=None, now=0.0, purge=False, force_routing=False):
    """The Plan for topo on device (a DeviceState as read; None: no interface yet) at time now."""
    seen = observations or Observations()
    running_up = liveness.peers_up(device, now)
    up = set(p.public_key for p in running_up) if seen.alive is None else set(seen.alive)
    running = device.peers if device is not None else []
    peers = rotated(topo.peers, topo.rotations, now, running)
    if seen.swept:
        peers = [p.replace(endpoint=seen.swept[p.public_key], endpoint_fallback=False)
                 if p.public_key in seen.swept else p for p in peers]
    if seen.relays:
        peers = apply_relays(peers, switched_keys(seen.relays, topo.rotations, now))
    # An endpoint that is only a fallback guess does not replace the one a peer is up at (it may have
    # roamed there); beside a watcher, not the one of any running peer (the watcher sweeps those).
    kept = running if seen.keep_endpoints else running_up
    ops = diff_peers(peers, running, purge=purge, up=set(p.key_hex for p in kept))
    return Plan(peers, ops, up, topo, seen, force_routing, device, now)


def record_to_publish(record, observed, relay_requests, port=None):
    """This node's record as it goes out: with where its peers are seen now, the relays it asks for and
    the port it listens on (None: the record's own)."""
    if not record:
        return None
    fresh = dict(record, observed=dict(observed or {}), relays=dict(relay_requests or {}))
    if port is not None:
        fresh['port'] = port
    return fresh
