# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Kubernetes Node objects <-> node records (pure; the API calls come separately).

Each node publishes its record as annotations on its own Node, all under the
prefix "wglan.mesh/", with a merge patch that touches only those keys:

  wglan.mesh/public-key          base64 WireGuard public key
  wglan.mesh/address             the node's mesh address (IPv6)
  wglan.mesh/node-ips            comma-separated node addresses with prefix length
  wglan.mesh/endpoints           comma-separated announced endpoints (ip:port)
  wglan.mesh/assigned-prefixes   comma-separated extra prefixes routed to the node
  wglan.mesh/port                WireGuard port
  wglan.mesh/observed            JSON {peer public key: endpoint} of the peers it sees up
  wglan.mesh/relay               "true" (or "preferred") when the node relays for peers that cannot meet directly
  wglan.mesh/relays              JSON {peer public key: relay public key}: the relays it uses or asks for
  wglan.mesh/address4            its address in the IPv4 overlay ('' when the mesh has none)
  wglan.mesh/next-public-key     during a key rotation, the key the node switches to ('' otherwise)
  wglan.mesh/next-key-at         ...and when (seconds since 1970)

Read back, spec.podCIDRs (and spec.podCIDR) become pod CIDRs and, when
node-ips is absent, status.addresses (InternalIP, ExternalIP) the node addresses.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import json

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.model.node_records import RECORD_VERSION, parse_known, parse_record

PREFIX = 'wglan.mesh/'
KEYS = ('public-key', 'address', 'node-ips', 'endpoints', 'assigned-prefixes', 'port', 'observed', 'relay',
        'relays', 'address4', 'next-public-key', 'next-key-at', 'segments', 'withdrawn')


def _split(value):
    return [item.strip() for item in str(value or '').split(',') if item.strip()]


def annotations_for_record(record):
    """A record (dict) -> the annotations that publish it."""
    values = {
        'public-key': record.get('public_key') or '',
        'address': record.get('address') or '',
        'node-ips': ','.join(record.get('node_ips') or []),
        'endpoints': ','.join(record.get('extra_endpoints') or []),
        'assigned-prefixes': ','.join(record.get('pod_cidrs') or []),
        'port': str(record.get('port', 51820)),
        'observed': json.dumps(record.get('observed') or {}, sort_keys=True, separators=(',', ':')),
        'relay': 'true' if record.get('relay') is True else 'preferred' if record.get('relay') == 'preferred' else 'false',
        # '' when the node publishes no relays (no watcher): each end of a pair then decides alone
        'relays': '' if record.get('relays') is None else json.dumps(
            record['relays'], sort_keys=True, separators=(',', ':')),
        'address4': record.get('address4') or '',
        'next-public-key': record.get('next_public_key') or '',
        'next-key-at': str(record['next_key_at']) if record.get('next_public_key') else '',
        'segments': ','.join(record.get('segments') or []),
        'withdrawn': 'true' if record.get('withdrawn') else '',
    }
    return dict((PREFIX + key, value) for key, value in values.items())


def annotation_patch(record):
    """A JSON merge patch (also a valid strategic-merge patch) setting only wglan's annotations."""
    return {'metadata': {'annotations': annotations_for_record(record)}}


def needs_patch(node, record):
    """Whether the Node's annotations differ from what the record would set."""
    current = ((node or {}).get('metadata') or {}).get('annotations') or {}
    return any(current.get(key) != value for key, value in annotations_for_record(record).items())


def record_from_node(node):
    """A Node object (dict, as the API returns it) -> NodeRecord, None when it has no wglan annotation
    (the node does not run wglan, or has not joined yet), or WglanError naming the node."""
    if not isinstance(node, dict):
        raise WglanError('a Node object is not a mapping')
    metadata = node.get('metadata') or {}
    name = metadata.get('name')
    if not name or not isinstance(name, str):
        raise WglanError('a Node object has no name')
    annotations = metadata.get('annotations') or {}
    if not any(key.startswith(PREFIX) for key in annotations):
        return None
    if not annotations.get(PREFIX + 'public-key'):
        raise WglanError('it has wglan annotations but no %spublic-key' % PREFIX)
    spec = node.get('spec') or {}
    status = node.get('status') or {}
    pods = list(spec.get('podCIDRs') or ([spec['podCIDR']] if spec.get('podCIDR') else []))
    pods += _split(annotations.get(PREFIX + 'assigned-prefixes'))
    node_ips = _split(annotations.get(PREFIX + 'node-ips'))
    if not node_ips:
        for entry in status.get('addresses') or []:
            if isinstance(entry, dict) and entry.get('type') in ('InternalIP', 'ExternalIP'):
                try:
                    node_ips.append(str(ipaddress.ip_interface(entry.get('address'))))
                except ValueError:
                    raise WglanError('status address %r is not an IP address' % (entry.get('address'),))
    try:
        observed = json.loads(annotations.get(PREFIX + 'observed') or '{}')
    except ValueError:
        raise WglanError('%sobserved is not JSON' % PREFIX)
    if not isinstance(observed, dict):
        raise WglanError('%sobserved is not a JSON object' % PREFIX)
    port = annotations.get(PREFIX + 'port') or '51820'
    if not str(port).isdigit():
        raise WglanError('%sport %r is not a number' % (PREFIX, port))
    raw = dict(version=RECORD_VERSION, name=name, public_key=annotations.get(PREFIX + 'public-key'),
               address=annotations.get(PREFIX + 'address') or None, node_ips=node_ips, port=int(port),
               extra_endpoints=_split(annotations.get(PREFIX + 'endpoints')), pod_cidrs=pods, observed=observed)
    if annotations.get(PREFIX + 'relay') in ('true', 'preferred'):
        raw['relay'] = True if annotations[PREFIX + 'relay'] == 'true' else 'preferred'
    if annotations.get(PREFIX + 'address4'):
        raw['address4'] = annotations[PREFIX + 'address4']
    if annotations.get(PREFIX + 'segments'):
        raw['segments'] = _split(annotations[PREFIX + 'segments'])
    if annotations.get(PREFIX + 'withdrawn') == 'true':
        raw['withdrawn'] = True
    if annotations.get(PREFIX + 'next-public-key'):
        at = annotations.get(PREFIX + 'next-key-at') or ''
        if not at.isdigit():
            raise WglanError('%snext-key-at %r is not a time' % (PREFIX, at))
        raw.update(next_public_key=annotations[PREFIX + 'next-public-key'], next_key_at=int(at))
    if annotations.get(PREFIX + 'relays'):
        try:
            raw['relays'] = json.loads(annotations[PREFIX + 'relays'])
        except ValueError:
            raise WglanError('%srelays is not JSON' % PREFIX)
    return parse_record(raw, name)  # validates everything, raising with the node's name


def records_from_nodes(nodes, warn, last_good=None):
    """Valid records of every Node; each invalid one is skipped with a warning naming it.

    Nodes without any wglan annotation are not members (yet) and are skipped quietly.
    When a Node's annotations turn bad, the record last read from it (last_good,
    by name) stays in use, so a broken annotation never removes a working peer.
    """
    records = []
    for node in nodes:
        try:
            record = record_from_node(node)
        except WglanError as exc:
            name = ((node.get('metadata') or {}).get('name') if isinstance(node, dict) else None) or '(no name)'
            if name in (last_good or {}):
                kept = parse_known({name: last_good[name]}, warn, 'kubernetes')
                if kept:
                    warn('kubernetes: node %s: %s; its last good record stays in use' % (name, exc))
                records.extend(kept)
            else:
                warn('kubernetes: node %s skipped: %s' % (name, exc))
            continue
        if record is not None:
            records.append(record)
    return records


def from_kubernetes(client, node_name, publish_record, saved, warn, check_mode):
    """(NodeRecords, published, reached): publish this node's annotations, read every Node.

    published is True when the annotations were patched (or would be, in check
    mode), False when they were already current, None when this node has no Node
    object (it is not a Kubernetes node, or not registered yet). When the API
    cannot be reached, the records it gave last time stand in (reached False).
    """
    published = None
    try:
        if publish_record and publish_record.get('public_key') and node_name:
            node = client.get_node(node_name)
            if node is None:
                warn('kubernetes: there is no Node named %s; this node\'s record is not published '
                     '(set node_name if the kubelet registered another name)' % node_name)
            else:
                published = needs_patch(node, publish_record)
                if published and not check_mode:
                    client.patch_node(node_name, annotation_patch(publish_record))
        nodes, _version = client.list_nodes()
    except WglanError as exc:
        warn('%s; keeping the %d records it gave last time' % (exc, len(saved or {})))
        return parse_known(saved, warn, 'kubernetes'), None, False
    return records_from_nodes(nodes, warn, saved), published, True
