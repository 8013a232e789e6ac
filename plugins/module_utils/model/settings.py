# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Defaults, in one place, and the decisions that follow from options alone (pure)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError

DEFAULT_PORT = 51820
DEFAULT_FWMARK = 0x20
DEFAULT_MTU = 1420
DEFAULT_KEEPALIVE = 25
DEFAULT_KEY_PATH = '/etc/wglan/private.key'
SETTINGS_PATH = '/etc/wglan/settings.json'      # written by wglan_peers (save_settings) only
STATE_PATH = '/etc/wglan/mesh.json'             # the records last used (no secrets)
CERTIFICATE_PATH = '/etc/wglan/certificate'     # the node's certificate (no secret), in a mesh with a CA
WATCHER_CONFIG = '/etc/wglan/watcher.json'      # written by wglan_watcher only
WATCHER_STATE = '/run/wglan/paths.json'         # written by the watcher only
STATUS_PATH = '/run/wglan/status.json'          # written by the watcher only

ROUTE_TABLE = 180       # the routing table the marked packets take
RULE_PRIORITY = 32500   # the ip rule's priority

# wglan_peers' options a saved-settings file can supply, and their defaults when it does not.
DEFAULTS = dict(
    interface='wglan0', backend='auto', private_key_path=DEFAULT_KEY_PATH, listen_port=DEFAULT_PORT,
    fwmark=DEFAULT_FWMARK, mtu=DEFAULT_MTU, addresses=None, peers=[],
    persistent_keepalive=DEFAULT_KEEPALIVE, purge=False, members=None, self_name=None,
    pod_networking=False, state_path=STATE_PATH, discovery_url=None, discovery_urls=None, cluster_token=None,
    cluster_id=None, discovery_ca=None, discovery_ca_pem=None, discovery_ttl=1800, publish=None, pair_preshared_keys=True,
    peer_selector=None, kubernetes=False, kubeconfig=None, kube_context=None, node_name=None, watcher=False,
    relays_path=WATCHER_STATE, listen_port_auto=False, ipv4_prefix=None,
    names=False, names_domain='wglan.internal', names_via='auto', names_port=53, hosts_path='/etc/hosts',
    segment_policy=None, ca_public_key=None, mesh_name=None, revocations=None, certificate_path=CERTIFICATE_PATH,
    admission_transition=False,
)
# Giving any of these makes a call self-contained: the saved settings are not read.
SOURCE_OPTIONS = ('peers', 'members', 'records', 'discovery_url', 'discovery_urls', 'kubernetes', 'kubeconfig')


def in_transition(asked, ca_public_key, saved):
    """Whether a call admits by the transition from the token to certificates (admission_transition): it asks
    for it, with a CA, and the saved settings (None or {}: none, or unreadable) had no CA (the mesh admitted
    by the token) or were in the transition already. A node without settings (a new node) never enters it."""
    if not asked or not ca_public_key or not isinstance(saved, dict) or not saved:
        return False
    return not saved.get('ca_public_key') or bool(saved.get('admission_transition'))


def complete(params, saved):
    """params with every option not given taken from saved (the settings file's content), then the
    defaults; a kubeconfig implies the Kubernetes source."""
    for name, default in DEFAULTS.items():
        if params.get(name) is None:
            params[name] = saved.get(name, default)
    if params.get('kubeconfig'):
        params['kubernetes'] = True
    check_names(params)
    return params


NAMES_VIA = ('auto', 'resolved', 'hosts')


def check_names(params):
    """names_via and names_port as the module's spec allows them (the settings file can be edited by hand)."""
    if params.get('names_via') not in NAMES_VIA:
        raise WglanError('names_via must be one of %s, not %r' % (', '.join(NAMES_VIA), params.get('names_via')))
    port = params.get('names_port')
    if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
        raise WglanError('names_port must be a UDP port (1-65535), not %r' % (port,))
    if params.get('names') and params['names_via'] == 'resolved' and not params.get('watcher'):
        raise WglanError('names_via resolved: the watcher answers the names (watcher: true), and it is off; '
                         'names_via auto or hosts writes them into the hosts file')


def without_record_sources(params):
    """No peers from records (wglan_peers' automatic: false): only the explicit peers apply."""
    params.update(members=[], records=[], discovery_url=None, discovery_urls=None, kubernetes=False, kubeconfig=None)
    return params


def uses_records(params):
    """Whether the peers come from node records (the group's, the discovery service's, Kubernetes')."""
    return params.get('members') is not None or params.get('records') is not None \
        or bool(discovery_urls(params)) or bool(params.get('kubernetes'))


def live_source(params):
    """Whether a source tells other nodes of a change at once (discovery service, Kubernetes)."""
    return bool((discovery_urls(params) and params.get('cluster_token')) or params.get('kubernetes'))


def rotation_refused(params):
    """Why a key rotation (the role's wglan_rotate_keys, `wglan rotate-key`) cannot keep this node's peers,
    or None when it can: the watcher makes and announces the next key, and only a live source carries the
    announcement to the peers before the switch (with the inventory alone they would learn it at the next
    run, after the node switched, and lose it meanwhile)."""
    if not params.get('watcher'):
        return ('key rotation needs the watcher (wglan_watcher: true): it makes the next key, announces it and '
                'switches at the announced time')
    if not live_source(dict(params, kubernetes=params.get('kubernetes') or bool(params.get('kubeconfig')))):
        return ('key rotation needs a live source to announce the next key to the peers before the switch: a '
                'discovery service (group wglan_discovery, or wglan_discovery_url, with wglan_cluster_token) or '
                'Kubernetes (wglan_kubernetes: true); with the inventory alone the peers would learn the new key only '
                'at the next run, and lose this node until then')
    return None


def discovery_urls(params):
    """Every discovery service a node uses (discovery_url, then discovery_urls), each once."""
    urls = []
    for url in [params.get('discovery_url')] + list(params.get('discovery_urls') or []):
        if url and str(url).rstrip('/') not in urls:
            urls.append(str(url).rstrip('/'))
    return urls


def watcher_records_path(state_path):
    """Where the watcher keeps the records its live sources gave: next to the run's (state_path), in a
    file of its own (one writer per file), read back over the run's copy."""
    head, sep, tail = state_path.rpartition('/')
    return '%s%swatcher-%s' % (head, sep, tail)


def saved(params):
    """What the settings file keeps of a call (holds the cluster token: written 0600)."""
    out = dict((name, params[name]) for name in DEFAULTS)
    out['version'] = 1
    return out
