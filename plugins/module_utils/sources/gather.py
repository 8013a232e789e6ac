# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Gathering the plan's inputs from the sources, for every front end alike.

wglan_peers (one run) and the watcher (in a loop, on events) call the same
functions with the same parameters (the module's options; the watcher reads
them from the settings the role saved): the key and the device settings,
the records of every source, then model.plan.topology. Neither has
networking logic of its own.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import copy
import ipaddress
import time

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.host import key_files, names, state_files, wg_device
from ansible_collections.wglan.mesh.plugins.module_utils.host.links import parse_interface_address
from ansible_collections.wglan.mesh.plugins.module_utils.model import address, certificates, keys, node_records, plan
from ansible_collections.wglan.mesh.plugins.module_utils.model import segments, source_merge
from ansible_collections.wglan.mesh.plugins.module_utils.model import peer_names
from ansible_collections.wglan.mesh.plugins.module_utils.model import peers as peer_model
from ansible_collections.wglan.mesh.plugins.module_utils.model import settings
from ansible_collections.wglan.mesh.plugins.module_utils.sources import inventory, kubernetes_api
from ansible_collections.wglan.mesh.plugins.module_utils.sources import kubernetes as kubernetes_source
from ansible_collections.wglan.mesh.plugins.module_utils.sources.discovery import DiscoveryClient, from_discovery, in_parallel


class Gathered:
    """What the sources gave: this node's record, every record (None: no record sources), what to
    save for next time (None: nothing), and each live source's report."""

    __slots__ = ('me', 'records', 'saved', 'reports', 'address4', 'names', 'refused')

    def __init__(self, me=None, records=None, saved=None, reports=None):
        self.me, self.records, self.saved, self.reports = me, records, saved, reports or {}
        self.address4 = None  # this node's address in the IPv4 overlay (None: no overlay, or it is full)
        self.names = None     # [(address, host name)] for the hosts file (None: names are off)
        self.refused = {}     # a mesh with certificates: {reason: records (or claims) left out}


def kubernetes_client(params):
    return kubernetes_api.connect(params['kubeconfig'], params['kube_context'], mark=params.get('fwmark'))


def _merged(records, found, warn, source, reached, successors):
    """records with those of a source they do not cover, and what to keep of the source's (its own records)."""
    before = len(records)
    records = source_merge.merge(records, found, warn, source, live=reached, successors=successors)
    return records, dict((r.name, r.as_dict()) for r in records[before:])


def _from_kubernetes(params, publish, state, warn, check_mode):
    node_name = params['node_name'] or kubernetes_api.default_node_name()
    found, published, reached = kubernetes_source.from_kubernetes(
        kubernetes_client(params), node_name, publish, state.get('kubernetes', {}), warn, check_mode)
    return found, reached, dict(reached=reached, node=node_name, published=published, records=len(found))


def discovery_clients(params):
    """A client for each discovery service, signing with this node's key (derived from its WireGuard key)."""
    if not params['cluster_token']:
        raise WglanError('discovery_url needs cluster_token')
    private_key = None
    if params.get('publish'):
        private_key, _created = key_files.load_or_create_private_key(params['private_key_path'], check_mode=True)
    return [DiscoveryClient(url, params['cluster_token'], params['cluster_id'], params['discovery_ca'],
                            mark=params.get('fwmark'), signing=private_key, ca_data=params.get('discovery_ca_pem'))
            for url in settings.discovery_urls(params)]


def _from_discovery(params, publish, state, warn, check_mode, admit=None):
    outcome = from_discovery(discovery_clients(params), publish, params['discovery_ttl'],
                             state.get('discovery', {}), warn, check_mode, seen=state.get('discovery_seen'), admit=admit)
    published = outcome.published
    return outcome, dict(reached=outcome.reached, observed=published.get('observed') if published else None,
                         records=len(outcome.records), services=outcome.services)


def kept_records(params):
    """The records kept from the last time each source answered: the run's file (state_path); for a
    watcher, its own copy of its live sources' records (sources_state_path), newer, over it."""
    state = state_files.read_json(params['state_path']) or {}
    if not isinstance(state, dict):
        raise WglanError('%s is not a records file this collection wrote' % params['state_path'])
    if params.get('sources_state_path'):
        try:
            kept = state_files.read_json(params['sources_state_path'])
        except WglanError:
            kept = None  # the watcher's cache only: it is written again at this reconcile
        if isinstance(kept, dict):
            state.update((name, kept[name]) for name in ('discovery', 'kubernetes', 'discovery_seen')
                         if isinstance(kept.get(name), dict))
            # (the revocation lists of both files: the newest is taken where it is used)
            state['revocations'] = [t for t in (state.get('revocations'), kept.get('revocations')) if isinstance(t, str)]
            # (the key rotations and withdrawals either file learned: both; checked where they are used)
            for name in ('successors', 'withdrawn'):
                both = {}
                for part in (state.get(name), kept.get(name)):
                    if isinstance(part, dict):
                        both.update(part)
                state[name] = both
    return state


def with_own_key(publish, own_key):
    """The record to publish with this node's key as the key file has it now: a record kept from before a
    key rotation (the settings an ad-hoc run reads were saved by the run before it) would publish the
    old key, and take the node back to it on every peer."""
    if not isinstance(publish, dict) or not own_key or publish.get('public_key') == own_key:
        return publish
    fresh = dict(publish, public_key=own_key)
    if fresh.get('next_public_key') == own_key:  # (the rotation it announced is done)
        fresh.pop('next_public_key', None)
        fresh.pop('next_key_at', None)
    return fresh


def gather_records(params, own_key, warn, check_mode=False):
    """The records of the group members, the Kubernetes Nodes and the discovery service (in that order
    of precedence), and what to keep of them for a run that cannot reach a source.

    Every source is read before any is merged: a key rotation a live source announces (kept, so that
    it outlives the record that announced it) lets that node's new key stand for it in every source of
    higher precedence, whose records are older (the inventory's are from the last run)."""
    state = kept_records(params)
    records, used = inventory.records_for_members(params['members'] or [], params['records'],
                                                  state.get('records', {}), warn)
    saved = dict(version=node_records.RECORD_VERSION, records=used)
    reports, found = {}, []
    trust = admission(params, state, records, warn)
    refused = {}
    if trust is not None:
        records = certificates.admit(records, trust, time.time(), warn, refused)
    fresh = source_merge.announced(records)
    publish = signed(params, with_own_key(params['publish'], own_key), trust)
    if params['kubernetes']:
        nodes, reached, reports['kubernetes'] = _from_kubernetes(params, publish, state, warn, check_mode)
        nodes = _admitted(trust, nodes, warn, refused)
        found.append(('kubernetes', nodes, reached))
        fresh.update(source_merge.announced(nodes))
    if settings.discovery_urls(params):
        outcome, reports['discovery'] = _from_discovery(
            params, publish, state, warn, check_mode,
            admit=None if trust is None else (lambda records: _admitted(trust, records, warn, refused)))
        found.append(('discovery', outcome.records, outcome.reached))
        saved['discovery_seen'] = outcome.seen
        fresh.update(outcome.announced)
    successors = source_merge.kept_successors(state.get('successors'), fresh)
    if successors:
        saved['successors'] = successors
    # nodes that left the mesh: their own withdrawal, from a source that answered now, or kept from before
    withdrawn = source_merge.withdrawals(state.get('withdrawn'), [r for _s, nodes, reached in found if reached
                                                                  for r in nodes], time.time())
    if withdrawn:
        saved['withdrawn'] = withdrawn
    records = source_merge.without_withdrawn(records, withdrawn)
    for source, nodes, reached in found:
        records, saved[source] = _merged(records, source_merge.without_withdrawn(nodes, withdrawn), warn, source,
                                         reached, successors)
    me = next((r for r in reversed(records) if r.name == params['self_name']
               or (own_key and r.public_key == own_key)), None)
    if me is None:
        me = node_records.NodeRecord(params['self_name'] or '', own_key, None)
    if params['peer_selector']:
        records = source_merge.select(records, me, params['peer_selector'])
    if trust is not None:
        newest = certificates.newest_revocations([r.revocations for _s, nodes, _r in found for r in nodes],
                                                 trust.ca_public, trust.mesh, trust.revocations, warn)
        if newest is not None:
            saved['revocations'] = newest.text
            if newest is not trust.revocations:  # learned now: it applies at once (and the next publish passes it on)
                trust.revocations = newest
                kept = [r for r in records if not newest.revokes(r)]
                refused['not_admitted'] = refused.get('not_admitted', 0) + len(records) - len(kept)
                records = kept
    gathered = Gathered(me, records, saved, reports)
    gathered.refused = refused
    return gathered


def admission(params, state, records, warn):
    """The Trust records are checked against (certificates), or None (the cluster token admits: admission
    token). The newest revocation list of the settings, of the records kept and of the inventory's applies."""
    if not params.get('ca_public_key'):
        return None
    try:
        trust = certificates.Trust(params.get('mesh_name') or params['interface'], params['ca_public_key'],
                                   uncertified=bool(params.get('admission_transition')))
    except WglanError as exc:
        raise WglanError('ca_public_key: %s' % exc)
    texts = list(params.get('revocations') or [])
    kept = state.get('revocations')
    texts.extend([kept] if isinstance(kept, str) else [t for t in kept or [] if isinstance(t, str)])
    texts.extend(r.revocations for r in records)
    trust.revocations = certificates.newest_revocations(texts, trust.ca_public, trust.mesh, None, warn)
    return trust


def _admitted(trust, records, warn, refused):
    return records if trust is None else certificates.admit(records, trust, time.time(), warn, refused)


def signed(params, publish, trust):
    """The record to publish, its claims signed with this node's key and carrying the newest revocation
    list this node holds (so that the list reaches every node), when the mesh admits by certificates."""
    if trust is None or not isinstance(publish, dict):
        return publish
    private_key = key_files.read_private_key(params['private_key_path'])
    if private_key is None:
        return publish
    publish = dict((k, v) for k, v in publish.items() if k != 'succession')
    if trust.revocations is not None:
        publish['revocations'] = trust.revocations.text
    grant = certificates.grant_of(publish.get('certificate')) if publish.get('certificate') else None
    if grant is not None and grant.public_key != publish.get('public_key'):
        # the node rotated its key since its certificate was signed: the steps from the certified key on
        steps = key_files.read_succession(params['private_key_path'])
        start = next((i for i, step in enumerate(steps) if step[0] == grant.public_key), None)
        if start is not None:
            publish['succession'] = [step[1:] for step in steps[start:]]
    return certificates.sign_claims(publish, private_key)


def withdrawal_record(publish, own_key):
    """The last record of a node that leaves the mesh: its name and key, withdrawn, nowhere to be reached."""
    record = dict(with_own_key(publish, own_key), withdrawn=True, node_ips=[], extra_endpoints=[], observed={},
                  relays={}, pod_cidrs=[])
    for name in ('next_public_key', 'next_key_at', 'address4', 'segments'):
        record.pop(name, None)
    return record


def withdraw(params, warn, check_mode=False):
    """Tell every live source of the saved settings that this node leaves the mesh (its withdrawal record,
    signed with its key, so that its peers drop it at once, over the records they keep from earlier runs).
    Returns where it was told (or would be, in check mode). A source that cannot be reached is named in
    a warning: its copy of the node's record then lasts until its TTL."""
    if not isinstance(params.get('publish'), dict) or not params['publish'].get('name'):
        return []
    private_key = key_files.read_private_key(params['private_key_path'])
    if private_key is None:
        return []
    record = withdrawal_record(params['publish'], keys.public_key_from_private(private_key))
    record = signed(params, record, admission(params, {}, [], warn))
    told = []
    if settings.discovery_urls(params) and params.get('cluster_token'):
        clients = discovery_clients(params)
        answers = in_parallel(clients, lambda client: None if check_mode else client.publish(
            record, ttl=params['discovery_ttl']))
        for client, (_answer, error) in zip(clients, answers):
            if error is None:
                told.append(client.url)
            else:
                warn('this node\'s withdrawal did not reach %s (its record there lasts until its TTL): %s'
                     % (client.url, error))
    if params.get('kubernetes'):
        node_name = params['node_name'] or kubernetes_api.default_node_name()
        try:
            client = kubernetes_client(params)
            if client.get_node(node_name) is not None:
                if not check_mode:
                    client.patch_node(node_name, kubernetes_source.annotation_patch(record))
                told.append('kubernetes')
        except WglanError as exc:
            warn('this node\'s withdrawal did not reach Kubernetes: %s' % exc)
    return told


def device_config(params, check_mode=False):
    """(DeviceConfig, own public key or None): the key is made on the first run (not in check mode)."""
    private_key, _created = key_files.load_or_create_private_key(params['private_key_path'], check_mode=check_mode)
    addresses = None
    if params['addresses'] is not None:
        addresses = [parse_interface_address(a) for a in params['addresses']]
    # effective_port: where the watcher moved the port behind a shared NAT (listen_port_auto)
    port = params.get('effective_port') or params['listen_port']
    config = wg_device.DeviceConfig(params['interface'], private_key, port, params['fwmark'],
                                    params['mtu'], addresses, params['backend'])
    own = keys.public_key_from_private(private_key) if private_key is not None else None
    return config, own


def mesh_topology(params, own_key, warn, check_mode=False):
    """(Topology, Gathered): every source read, and the mesh they describe. Validates everything
    before anything on the host is touched."""
    explicit = peer_model.parse_peers(params['peers'], resolve=names.resolve,
                                      default_keepalive=params['persistent_keepalive'])
    gathered = Gathered()
    if settings.uses_records(params):
        gathered = gather_records(params, own_key, warn, check_mode)
    if params.get('ipv4_prefix') and own_key:
        _hold_ipv4(params, own_key, gathered, warn)
    psk = params['cluster_token'] if params['pair_preshared_keys'] else None
    topo = plan.topology(explicit, gathered.me, gathered.records, own_key, params['pod_networking'],
                         params['persistent_keepalive'], psk, segments.parse_policy(params.get('segment_policy')))
    for text in topo.warnings:
        warn(text)
    if params.get('names'):
        domain = peer_names.parse_domain(params.get('names_domain') or peer_names.DEFAULT_DOMAIN)
        if topo.records is not None:
            gathered.names, skipped = peer_names.entries(gathered.me, topo.peers, topo.records, domain,
                                                         gathered.address4)
            for name in skipped:
                warn('node %s gets no name in %s: its name is not a DNS name' % (name, domain))
    return topo, gathered


def _ip4(text):
    try:
        return ipaddress.IPv4Address(str(text)) if text else None
    except ValueError:
        return None


def _hold_ipv4(params, own_key, gathered, warn):
    """This node's address in the IPv4 overlay, held against what the records claim (model.address.choose_ipv4):
    into gathered (and its own record there, so that the address is never routed to a peer)."""
    net = address.parse_ipv4_prefix(params['ipv4_prefix'])
    current = _ip4(params.get('address4_held') or (params.get('publish') or {}).get('address4'))
    if current is None and gathered.me is not None:
        current = gathered.me.address4
    chosen = address.choose_ipv4(net, own_key, current, address.ipv4_claims(gathered.records, own_key, params.get('self_name')))
    if chosen is None:
        warn('the IPv4 overlay %s is full: this node has no address in it' % net)
    elif current is not None and chosen != current:
        warn('IPv4 overlay: %s is also claimed by a node with a smaller key, which keeps it; this node moves to %s'
             % (current, chosen))
    gathered.address4 = chosen
    if gathered.me is not None:
        me = copy.copy(gathered.me)
        me.address4 = chosen
        gathered.me = me
        if gathered.records is not None:
            gathered.records = [me if r.public_key == me.public_key else r for r in gathered.records]


def with_overlay(config, params, gathered):
    """config with this node's IPv4 overlay address on the interface (the prefix's length: the whole overlay
    is on the link), when the interface's addresses are managed (given)."""
    if gathered.address4 is None or config.addresses is None:
        return config
    net = address.parse_ipv4_prefix(params['ipv4_prefix'])
    wanted = parse_interface_address('%s/%d' % (gathered.address4, net.prefixlen))
    config.addresses = [a for a in config.addresses if not (a.version == 4 and a.ip in net)] + [wanted]
    return config
