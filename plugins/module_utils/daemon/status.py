# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The watcher's status: what it writes for `wglan status` and wglan_info, the Prometheus metrics
of it, and the text `wglan status` prints."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import threading
import time

from ansible_collections.wglan.mesh.plugins.module_utils.daemon.common import log, name_of
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.host import state_files
from ansible_collections.wglan.mesh.plugins.module_utils.model import liveness


def peer_rows(peers, found, states, relays, now):
    """One row per peer: name, key, address, endpoint (where the device sends now), state (model.plan's),
    handshake age, counters and path (direct, or via its relay)."""
    stats, endpoints = {}, {}
    if found is not None:
        for peer in found[2].peers:
            stats[peer.public_key] = found[2].stats_of(peer)
            endpoints[peer.public_key] = peer.endpoint
    rows = []
    for peer in sorted(peers, key=lambda p: p.name or p.public_key):
        st = stats.get(peer.public_key)
        handshake = st.last_handshake if st is not None else 0
        via = name_of(relays[peer.public_key], peers) if peer.public_key in relays else None
        rows.append(dict(name=peer.name or peer.public_key[:8], public_key=peer.public_key,
                         address=_main_address(peer.allowed_ips),
                         endpoint=endpoints.get(peer.public_key) or peer.endpoint or '',
                         state=states.get(peer.public_key, liveness.UNKNOWN),
                         handshake_age=int(now - handshake) if handshake else None, via=via,
                         rx_bytes=st.rx_bytes if st is not None else 0,
                         tx_bytes=st.tx_bytes if st is not None else 0,
                         path='via %s' % via if via else 'direct'))
    return rows


def write(path, status):
    try:
        os.makedirs(os.path.dirname(path), exist_ok=True)
        state_files.write_json_if_changed(path, status, 0o644)
    except (OSError, WglanError) as exc:
        log('cannot write the status: %s' % exc)


def _main_address(allowed):
    """The address to show for a peer: its mesh address (the IPv6 host route) before node IPs and CIDRs."""
    hosts = [n for n in allowed if n.version == 6 and n.prefixlen == 128]
    return str((hosts or list(allowed) or [''])[0])


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
    names = (status.get('names') if status else None) or {}
    metric('wglan_names_queries_total', 'counter',
           'Datagrams to the names responder, by what became of them (answered, dropped, not_local, over_rate).',
           [((('result', k),), names[k]) for k in ('answered', 'dropped', 'not_local', 'over_rate') if k in names])
    refused = (status.get('refused') if status else None) or {}
    metric('wglan_records_refused', 'gauge',
           'A mesh with certificates: records the last reconcile did not admit (not_admitted: no valid certificate, '
           'revoked) and claims it left out (claim_dropped: not granted by the certificate).',
           [((('reason', k),), refused.get(k, 0)) for k in ('not_admitted', 'claim_dropped')])
    metric('wglan_status_timestamp_seconds', 'gauge', 'When the watcher last wrote its status.',
           [((), status.get('time', 0) if status else 0)])
    return '\n'.join(lines) + '\n'


def serve_metrics(status_of, address, port):
    """A thread serving GET /metrics from the last status (status_of() gives it). Returns the server."""
    from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the http.server API)
            if self.path.split('?')[0] != '/metrics':
                self.send_error(404, 'only /metrics here')
                return
            body = format_metrics(status_of()).encode('utf-8')
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
    names = status.get('names')
    if names:
        lines.append('')
        if names.get('via') == 'resolved':
            lines.append('names: answered on %s for systemd-resolved (%d answered, %d kept out)'
                         % (names.get('server'), names.get('answered', 0), names.get('not_local', 0) + names.get('over_rate', 0)))
        else:
            lines.append('names: in the hosts file')
    return '\n'.join(['interface %s, status of %s' % (status.get('interface'), time.strftime(
        '%Y-%m-%d %H:%M:%S', time.localtime(status.get('time', 0))))] + lines)
