# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""wglan_record: this node's record, written as a local fact."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.host import host_addresses, key_files, meshes_on_host, state_files
from ansible_collections.wglan.mesh.plugins.module_utils.model import certificates, keys, node_records, settings
from ansible_collections.wglan.mesh.plugins.module_utils.model.address import choose_ipv4, held_ipv4, ipv4_claims, parse_ipv4_prefix, parse_prefix
from ansible_collections.wglan.mesh.plugins.module_utils.model.keys import normalize_key
from ansible_collections.wglan.mesh.plugins.module_utils.module_support import require_libs, run_or_fail

ARGUMENTS = dict(
    name=dict(type='str', required=True),
    public_key=dict(type='str'),
    address=dict(type='str'),
    interface=dict(type='str', default='wglan0'),
    port=dict(type='int', default=51820),
    prefix=dict(type='str', default='0200:1001::/64'),
    extra_endpoints=dict(type='list', elements='str', default=[]),
    exclude_prefixes=dict(type='list', elements='str', default=[]),
    pod_cidrs=dict(type='list', elements='str', default=[]),
    relay=dict(type='bool', default=False),
    relay_preferred=dict(type='bool', default=False),
    segments=dict(type='list', elements='str', default=[]),
    fact_path=dict(type='path', default=host_addresses.DEFAULT_FACT_PATH),
    fact_name=dict(type='str', default='wglan_record'),
    ipv4_prefix=dict(type='str'),
    state_path=dict(type='path', default=settings.STATE_PATH),
    private_key_path=dict(type='path'),
    certificate_path=dict(type='path'),
    certificate=dict(type='str'),
)


def known_records(state_path):
    """The records this host kept from the last time each source answered (the run's and the watcher's
    copies), as NodeRecords; none when there are none or they cannot be read."""
    found = []
    for path in (state_path, settings.watcher_records_path(state_path)):
        try:
            state = state_files.read_json(path)
        except WglanError:
            continue
        if not isinstance(state, dict):
            continue
        for section in ('records', 'kubernetes', 'discovery'):
            found.extend(node_records.parse_known(state.get(section) if isinstance(state.get(section), dict) else {},
                                                  lambda text: None, section))
    return found


def overlay_ipv4(p, public_key):
    """This node's IPv4 overlay address: the one its last record held, unless a node with a smaller key
    claims it in the records this host knows; else the first free place of its key (model.address)."""
    if not p['ipv4_prefix']:
        return None
    net = parse_ipv4_prefix(p['ipv4_prefix'])
    if not public_key:
        return None
    try:
        before = state_files.read_json(p['fact_path'])
    except WglanError:
        before = None
    current = held_ipv4(before, p['name'])
    claims = ipv4_claims(known_records(p['state_path']), public_key, p['name'])
    chosen = choose_ipv4(net, public_key, current, claims)
    if chosen is None:
        raise WglanError('the IPv4 overlay %s is full: no address is left for this node' % net)
    return chosen


def certified(p, record, private_key):
    """In a mesh with a CA: the record with the node's certificate (given, else the one kept in certificate_path),
    when it holds one, and its claims signed with the node's key, so that its peers admit it from the
    inventory too."""
    text = p['certificate'] or (state_files.read_text(p['certificate_path']) if p['certificate_path'] else None)
    if not text or private_key is None:
        return record
    return certificates.sign_claims(dict(record, certificate=text.strip()), private_key)


def make(module, private_key=None):
    p = module.params
    prefix = parse_prefix(p['prefix'])
    try:
        exclude = [ipaddress.ip_network(n, strict=False) for n in p['exclude_prefixes']]
    except ValueError as exc:
        raise WglanError('invalid exclude_prefixes: %s' % exc)
    try:
        # A pod CIDR's address (a CNI bridge) is not where the node is.
        exclude.extend(ipaddress.ip_network(n, strict=False) for n in p['pod_cidrs'])
    except ValueError as exc:
        raise WglanError('invalid pod_cidrs: %s' % exc)
    public_key = normalize_key(p['public_key'], 'public_key') if p['public_key'] else None
    address = None
    if p['address']:
        try:
            address = ipaddress.IPv6Address(p['address'])
        except ValueError:
            raise WglanError('address %r is not an IPv6 address' % p['address'])
    address4 = overlay_ipv4(p, public_key)
    if p['ipv4_prefix']:
        exclude.append(parse_ipv4_prefix(p['ipv4_prefix']))  # (the overlay's addresses are not where the node is)
    # (the host's other meshes' interfaces are not where this node is either)
    node_ips = host_addresses.local_node_ips(p['interface'], prefix, exclude, meshes_on_host.mesh_interfaces())
    observed = host_addresses.observed_endpoints(p['interface'])
    record = node_records.build_record(p['name'], public_key, address, node_ips, p['port'],
                                       p['extra_endpoints'], p['pod_cidrs'], observed,
                                       'preferred' if p['relay'] and p['relay_preferred'] else p['relay'], address4,
                                       p['segments'])
    record = certified(p, record, private_key)
    before = state_files.read_json(p['fact_path']) if module._diff else None
    changed = state_files.write_json_if_changed(p['fact_path'], record, check_mode=module.check_mode,
                                                significant=node_records.without_observations)
    return record, changed, before


def run(module):
    require_libs(module, 'pyroute2')
    private_key = None
    if module.params['private_key_path']:
        private_key = run_or_fail(module, key_files.read_private_key, module.params['private_key_path'])
    record, changed, before = run_or_fail(module, make, module, private_key)
    result = dict(changed=changed, record=record, digest=node_records.digest(record),
                  ansible_facts={module.params['fact_name']: record})
    if module.params['private_key_path']:
        # the public half of the node's signing key, for its certificate (wglan_certificate)
        result['signer'] = keys.public_signer(keys.signing_key(private_key)) if private_key is not None else None
    if module._diff:
        result['diff'] = dict(before=before or {}, after=record)
    return result
