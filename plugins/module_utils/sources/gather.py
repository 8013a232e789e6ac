# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The pipeline both front ends run: sources -> model -> desired device state.

wglan_peers (one run) and the watcher (in a loop, on events) call the same
functions with the same parameters (the module's options; the watcher reads
them from the settings the role saved), so neither has networking logic of
its own.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.wglan.mesh.plugins.module_utils.host import key_files
from ansible_collections.wglan.mesh.plugins.module_utils.model import keys
from ansible_collections.wglan.mesh.plugins.module_utils.model import node_records
from ansible_collections.wglan.mesh.plugins.module_utils.model import topology
from ansible_collections.wglan.mesh.plugins.module_utils.sources import inventory
from ansible_collections.wglan.mesh.plugins.module_utils.host import state_files
from ansible_collections.wglan.mesh.plugins.module_utils.model import peers as peer_model
from ansible_collections.wglan.mesh.plugins.module_utils.model import source_merge
from ansible_collections.wglan.mesh.plugins.module_utils.host import wg_device
from ansible_collections.wglan.mesh.plugins.module_utils.sources import kubernetes_api
from ansible_collections.wglan.mesh.plugins.module_utils.sources import kubernetes as kubernetes_source
from ansible_collections.wglan.mesh.plugins.module_utils.host import watcher_state
from ansible_collections.wglan.mesh.plugins.module_utils.sources.discovery import DiscoveryClient, from_discovery
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.host import names
from ansible_collections.wglan.mesh.plugins.module_utils.host.links import parse_interface_address

# Options a saved-settings file can supply, and their defaults when it does not.
DEFAULTS = dict(
    interface='wglan0', backend='auto', private_key_path=key_files.DEFAULT_KEY_PATH, listen_port=wg_device.DEFAULT_PORT,
    fwmark=wg_device.DEFAULT_FWMARK, mtu=wg_device.DEFAULT_MTU, addresses=None, peers=[],
    persistent_keepalive=peer_model.DEFAULT_KEEPALIVE, purge=False, members=None, self_name=None,
    pod_networking=False, state_path='/etc/wglan/mesh.json', discovery_url=None, cluster_token=None,
    cluster_id=None, discovery_ca=None, discovery_ttl=1800, publish=None, pair_preshared_keys=True,
    peer_selector=None, kubernetes=False, kubeconfig=None, kube_context=None, node_name=None, watcher=False,
    relays_path=watcher_state.PATHS, listen_port_auto=False,
)
# Giving any of these makes a call self-contained: the saved settings are not read.
SOURCE_OPTIONS = ('peers', 'members', 'records', 'discovery_url', 'kubernetes', 'kubeconfig')


def apply_settings(params):
    """Fill the options not given from the saved settings (for a call that names no source), then the defaults."""
    saved = {}
    if all(params[name] is None for name in SOURCE_OPTIONS):
        saved = state_files.read_json(params['settings_path'])
        if saved is None:
            saved = {}
        elif not isinstance(saved, dict) or saved.get('version') != 1:
            raise WglanError('%s is not a settings file this module wrote; run the role again or remove it'
                             % params['settings_path'])
    for name, default in DEFAULTS.items():
        if params[name] is None:
            params[name] = saved.get(name, default)
    return bool(saved)


def save_settings(params, check_mode=False):
    settings = dict((name, params[name]) for name in DEFAULTS)
    settings['version'] = 1
    # Holds the cluster token: root only, like the private key.
    state_files.write_json_if_changed(params['settings_path'], settings, 0o600, check_mode)


def kubernetes_client(params):
    return kubernetes_api.connect(params['kubeconfig'], params['kube_context'], mark=params.get('fwmark'))


def peers_from_records(params, own_public_key, warn, check_mode=False, mesh_out=None):
    """Peers built from the node records of the group, the Kubernetes Nodes and the discovery service.

    Returns (peers, state to save, endpoint choices, discovery report, kubernetes report).
    """
    state = state_files.read_json(params['state_path']) or {}
    members = params['members'] or []
    records, used = inventory.records_for_members(members, params['records'], state.get('records', {}), warn)
    discovery, kubernetes = None, None
    saved_kubernetes = state.get('kubernetes', {})
    if params['kubernetes']:
        node_name = params['node_name'] or kubernetes_api.default_node_name()
        client = kubernetes_client(params)
        found, published, reached = kubernetes_source.from_kubernetes(
            client, node_name, params['publish'], saved_kubernetes, warn, check_mode)
        before = len(records)
        records = source_merge.merge(records, found, warn, 'kubernetes', live=reached)
        saved_kubernetes = dict((r.name, r.as_dict()) for r in records[before:])
        kubernetes = dict(reached=reached, node=node_name, published=published, records=len(found))
    discovery = None
    saved_discovery = state.get('discovery', {})
    if params['discovery_url']:
        if not params['cluster_token']:
            raise WglanError('discovery_url needs cluster_token')
        client = DiscoveryClient(params['discovery_url'], params['cluster_token'], params['cluster_id'],
                                 params['discovery_ca'], mark=params['fwmark'])
        found, published, reached = from_discovery(client, params['publish'], params['discovery_ttl'],
                                                           saved_discovery, warn, check_mode)
        before = len(records)
        records = source_merge.merge(records, found, warn, 'discovery', live=reached)
        saved_discovery = dict((r.name, r.as_dict()) for r in records[before:])
        discovery = dict(reached=reached, observed=published.get('observed') if published else None,
                         records=len(found))
    me = None
    for record in records:
        if record.name == params['self_name'] or (own_public_key and record.public_key == own_public_key):
            me = record
    if me is None:
        me = node_records.NodeRecord(params['self_name'] or '', own_public_key, None)
    if params['peer_selector']:
        records = source_merge.select(records, me, params['peer_selector'])
    peers, choices, warnings = topology.build_mesh(me, records, params['pod_networking'], params['persistent_keepalive'])
    if mesh_out is not None:  # the watcher sweeps endpoint candidates from these
        mesh_out.update(me=me, records=records)
    for text in warnings:
        warn(text)
    if params['cluster_token'] and params['pair_preshared_keys'] and own_public_key:
        peers = [p.replace(preshared_key=keys.pair_preshared_key(params['cluster_token'], own_public_key,
                                                                 p.public_key)) for p in peers]
    endpoints = dict((name, dict(endpoint=e, reason=r)) for name, (e, r) in sorted(choices.items()))
    saved = dict(version=node_records.RECORD_VERSION, records=used)
    if params['discovery_url']:
        saved['discovery'] = saved_discovery
    if params['kubernetes']:
        saved['kubernetes'] = saved_kubernetes
    return peers, saved, endpoints, discovery, kubernetes


def desired_state(params, warn, check_mode=False, mesh_out=None):
    """Validate everything before touching the host: key, settings, peers.

    Returns (device config, peers, dropped allowed IPs, state to save, endpoint choices, source reports);
    mesh_out, a dict, receives this node's record and the records the peers came from.
    """
    private_key, _created = key_files.load_or_create_private_key(params['private_key_path'], check_mode=check_mode)
    addresses = None
    if params['addresses'] is not None:
        addresses = [parse_interface_address(a) for a in params['addresses']]
    # effective_port: where the watcher moved the port behind a shared NAT (listen_port_auto)
    port = params.get('effective_port') or params['listen_port']
    config = wg_device.DeviceConfig(params['interface'], private_key, port, params['fwmark'],
                                    params['mtu'], addresses, params['backend'])
    peer_list = peer_model.parse_peers(params['peers'], resolve=names.resolve, default_keepalive=params['persistent_keepalive'])
    own = keys.public_key_from_private(private_key) if private_key is not None else None
    used, endpoints, reports = None, None, {}
    if params['members'] is not None or params['records'] is not None or params['discovery_url'] \
            or params['kubernetes']:
        from_records, used, endpoints, reports['discovery'], reports['kubernetes'] = peers_from_records(
            params, own, warn, check_mode, mesh_out)
        explicit = set(p.public_key for p in peer_list)
        peer_list.extend(p for p in from_records if p.public_key not in explicit)
    if own is not None:
        peer_list = [p for p in peer_list if p.public_key != own]
    peer_list, dropped = peer_model.resolve_overlaps(peer_list)
    return config, peer_list, dropped, used, endpoints, reports
