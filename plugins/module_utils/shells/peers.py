# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""wglan_peers: the interface and its peers, from every source, through the one plan."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import time

from ansible_collections.wglan.mesh.plugins.module_utils.host import hosts_file, settings_file, state_files, watcher_state, wg_device
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.model import address, node_records, plan, settings
from ansible_collections.wglan.mesh.plugins.module_utils.module_support import require_libs, run_or_fail
from ansible_collections.wglan.mesh.plugins.module_utils.sources import discovery, gather

PEER_OPTIONS = dict(
    public_key=dict(type='str', required=True),
    name=dict(type='str'),
    endpoint=dict(type='str'),
    allowed_ips=dict(type='list', elements='str', default=[]),
    preshared_key=dict(type='str', no_log=True),
    persistent_keepalive=dict(type='int'),
)
ARGUMENTS = dict(
    interface=dict(type='str'),
    state=dict(type='str', choices=['present', 'absent'], default='present'),
    backend=dict(type='str', choices=list(wg_device.BACKENDS)),
    private_key_path=dict(type='path'),
    listen_port=dict(type='int'),
    listen_port_auto=dict(type='bool'),
    fwmark=dict(type='int'),
    mtu=dict(type='int'),
    addresses=dict(type='list', elements='str'),
    peers=dict(type='list', elements='dict', options=PEER_OPTIONS),
    persistent_keepalive=dict(type='int'),
    purge=dict(type='bool'),
    members=dict(type='list', elements='str'),
    records=dict(type='list', elements='raw'),
    self_name=dict(type='str'),
    pod_networking=dict(type='bool'),
    state_path=dict(type='path'),
    discovery_url=dict(type='str'),
    discovery_urls=dict(type='list', elements='str'),
    cluster_token=dict(type='str', no_log=True),
    cluster_id=dict(type='str'),
    discovery_ca=dict(type='path'),
    discovery_ca_pem=dict(type='str'),
    discovery_ttl=dict(type='int'),
    ipv4_prefix=dict(type='str'),
    segment_policy=dict(type='list', elements='dict'),
    ca_public_key=dict(type='str'),
    mesh_name=dict(type='str'),
    admission_transition=dict(type='bool'),
    revocations=dict(type='list', elements='str'),
    certificate=dict(type='str'),
    certificate_path=dict(type='path'),
    names=dict(type='bool'),
    names_domain=dict(type='str'),
    names_via=dict(type='str', choices=['auto', 'resolved', 'hosts']),
    names_port=dict(type='int'),
    hosts_path=dict(type='path'),
    publish=dict(type='dict'),
    pair_preshared_keys=dict(type='bool'),
    peer_selector=dict(type='str'),
    kubernetes=dict(type='bool'),
    kubeconfig=dict(type='path'),
    kube_context=dict(type='str'),
    node_name=dict(type='str'),
    watcher=dict(type='bool'),
    automatic=dict(type='bool', default=True),
    relays_path=dict(type='path'),
    settings_path=dict(type='path', default=settings.SETTINGS_PATH),
    save_settings=dict(type='bool', default=False),
)


def _in_overlay(text, prefix):
    """text when it is an address of the IPv4 overlay prefix (not one of an overlay the mesh had before)."""
    if not text or not prefix:
        return None
    try:
        return text if ipaddress.IPv4Address(text) in address.parse_ipv4_prefix(prefix) else None
    except (ValueError, WglanError):
        return None


def with_certificate(params, check_mode):
    """In a mesh with a CA: the node's certificate (given now, and then kept in certificate_path; else the one
    kept there) goes into the record it publishes. A certificate is no secret (it travels in the record)."""
    if not params.get('ca_public_key'):
        return
    text = params.get('certificate')
    if text:
        text = text.strip()
        state_files.write_bytes_if_changed(params['certificate_path'], (text + '\n').encode('ascii', 'replace'),
                                           0o644, check_mode)
    else:
        text = state_files.read_text(params['certificate_path'])
    if text and isinstance(params.get('publish'), dict):
        params['publish'] = dict(params['publish'], certificate=text)


def in_transition(params):
    """Whether this call admits by the transition from the token to certificates (settings.in_transition);
    the saved settings are read only when it asks for it, with a CA."""
    asked, ca_public_key, saved = params['admission_transition'], params.get('ca_public_key'), None
    if asked and ca_public_key:
        try:
            saved = settings_file.read(params['settings_path'])
        except WglanError:
            saved = None
    return settings.in_transition(asked, ca_public_key, saved)


def beside_the_watcher(params):
    """What the watcher decided stands (read from its state file): the port it moved to, the host's
    addresses as it saw them, the relays it asks for (its record) and those it uses, the next key of a
    rotation and the IPv4 overlay address it holds."""
    state = watcher_state.read(params['relays_path'])
    held4 = _in_overlay(state.address4, params.get('ipv4_prefix'))
    if params['listen_port_auto']:
        # the port the watcher moved to behind a shared NAT (topology.shared_nat_port) stands
        # (listen_port stays the base the saved settings hold)
        params['effective_port'] = state.port or params['listen_port']
    if isinstance(params.get('publish'), dict):
        publish = dict(params['publish'])
        if params['listen_port_auto']:
            publish['port'] = params['effective_port']
        if state.node_ips:
            publish['node_ips'] = state.node_ips
        if state.published is not None:
            # what the watcher asked of its peers stays in the record a run publishes (relay.agree)
            publish['relays'] = state.published
        if state.next_key:
            # a key rotation the watcher began: the record keeps announcing the next key
            publish.update(state.next_key)
        if held4:
            # the IPv4 overlay address the watcher moved to (a smaller key claimed the recorded one):
            # a run publishing the recorded one would claim it again, and every peer would route it back
            publish['address4'] = state.address4
        params['publish'] = publish
    if held4:
        params['address4_held'] = held4
    return plan.Observations(relays=state.relays, keep_endpoints=True)


def remove(module, params):
    # first the live sources (the peers drop this node at once), then the interface and the names
    withdrawn = run_or_fail(module, gather.withdraw, params, module.warn, module.check_mode)
    existed = run_or_fail(module, wg_device.remove_device, params['interface'], check_mode=module.check_mode)
    named = run_or_fail(module, hosts_file.ensure, params['hosts_path'], None, params['interface'], module.check_mode)[0]
    result = dict(changed=existed or named or bool(withdrawn), interface=params['interface'], names_changed=named,
                  withdrawn_from=withdrawn)
    if module._diff:
        result['diff'] = dict(before={'interface': params['interface'] if existed else None},
                              after={'interface': None})
    return result


def report(module, config, the_plan, gathered, outcome, params):
    summary = outcome.summary()
    result = dict(changed=outcome.changed, targets=the_plan.targets, interface=config.ifname,
                  live_sources=settings.live_source(params),
                  admission_transition=bool(params.get('ca_public_key') and params.get('admission_transition')),
                  dropped_allowed_ips=[dict(peer=p, prefix=n, reason=r) for p, n, r in the_plan.topology.dropped])
    for name in ('backend', 'public_key', 'created', 'peers_added', 'peers_changed', 'peers_removed',
                 'peer_operations', 'device_changes', 'addresses_added', 'addresses_removed'):
        result[name] = summary[name]
    if gathered.records is not None:
        result['endpoints'] = the_plan.topology.choices
    result.update(gathered.reports)
    if params['ipv4_prefix']:
        result['address4'] = str(gathered.address4) if gathered.address4 else None
    for peer, prefix, reason in the_plan.topology.dropped:
        module.warn('peer %s: allowed IP %s %s; only the free part is kept' % (peer, prefix, reason))
    if module._diff:
        result['diff'] = dict(before=outcome.before, after=outcome.after)
    return result


def run(module):
    require_libs(module, 'pyroute2', 'cryptography')
    params = module.params
    if not params['automatic']:
        settings.without_record_sources(params)
    if params.get('admission_transition') is not None:
        params['admission_transition'] = run_or_fail(module, in_transition, params)
    run_or_fail(module, settings_file.apply_settings, params)
    run_or_fail(module, with_certificate, params, module.check_mode)
    seen = beside_the_watcher(params) if params['watcher'] else plan.Observations()
    if params.get('segment_policy') is not None and not params['watcher']:
        module.warn('segment_policy: the segment filter is the watcher\'s to keep (watcher: true); none is made')
    if params['peer_selector']:
        require_libs(module, 'jmespath')
    if params['kubernetes']:
        require_libs(module, 'kubernetes')
    if params['state'] == 'absent':
        return remove(module, params)
    config, own_key = run_or_fail(module, gather.device_config, params, module.check_mode)
    if params['cluster_token']:
        for text in filter(None, map(discovery.in_clear, settings.discovery_urls(params))):
            module.warn(text)
    topo, gathered = run_or_fail(module, gather.mesh_topology, params, own_key, module.warn, module.check_mode)
    config = run_or_fail(module, gather.with_overlay, config, params, gathered)
    # handshake times matter only where an endpoint is a fallback guess (it does not replace a live one)
    found = run_or_fail(module, wg_device.read_device, config.ifname, plan.needs_handshakes(topo, seen))
    the_plan = plan.plan(topo, found[2] if found else None, seen, time.time(), purge=params['purge'])
    outcome = run_or_fail(module, wg_device.apply_device, config, the_plan.peers, purge=params['purge'],
                          check_mode=module.check_mode, want_diff=module._diff, current=found, ops=the_plan.ops)
    result = report(module, config, the_plan, gathered, outcome, params)
    if not params['watcher']:
        # (beside a watcher, the watcher owns the names: it keeps them current between runs)
        named, before, after = run_or_fail(module, hosts_file.ensure, params['hosts_path'], gathered.names,
                                           config.ifname, module.check_mode)
        result['names_changed'] = named
        result['changed'] = result['changed'] or named
        if named and module._diff:
            result['diff'] = [result['diff'], dict(before=before, after=after, before_header=params['hosts_path'],
                                                   after_header=params['hosts_path'])]
    if gathered.names is not None:
        result['names'] = dict((name, sorted(set(str(ip) for ip, n in gathered.names if n == name)))
                               for name in sorted(set(n for _ip, n in gathered.names)))
    if gathered.saved is not None and params['members']:
        result['records_used'] = dict((name, node_records.digest(raw, name))
                                      for name, raw in (gathered.saved.get('records') or {}).items())
    if gathered.saved is not None:
        # Saved after the device took the peers: the last good set is what stands in next time.
        result['records_saved'] = run_or_fail(module, state_files.write_json_if_changed, params['state_path'],
                                              gathered.saved, 0o644, module.check_mode,
                                              node_records.without_observations)
    if params['save_settings']:
        run_or_fail(module, settings_file.save, params, module.check_mode)
    return result
