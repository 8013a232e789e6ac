# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""This node's record as the watcher publishes it: the host's addresses as they are now, the port it
listens on behind a shared NAT, where it sees its peers, and the relays it asks for; published when
it changed and again before its TTL runs out."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import time

from ansible_collections.wglan.mesh.plugins.module_utils.daemon.common import log
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.host import host_addresses, meshes_on_host
from ansible_collections.wglan.mesh.plugins.module_utils.model import node_records, plan, settings, topology


class Publisher:
    def __init__(self):
        self.last_publish = 0.0
        self.published = None       # (record without observations, observations, relays) last published
        self.observed = None        # {public key: endpoint} of the peers up at the last apply
        self.own_ips = None         # the node IPs this node last published (None: not looked at yet)
        self.node_ips = None        # this host's addresses, when they differ from the role's record
        self.address_exclude = []   # prefixes whose addresses are not node IPs (options, mesh prefix, pod CIDRs)
        self.port = None            # the listen port chosen (topology.shared_nat_port with listen_port_auto)
        self.public = None          # where the internet saw this node last (kept through a key switch)
        self.again = False          # publish at the next reconcile (a service lost this node's record)
        self.address4 = None        # the IPv4 overlay address held, when it is not the role's record's

    def local_ips(self, params):
        """This host's addresses as a record's node_ips (what wglan_record publishes), or None."""
        try:
            return [str(i) for i in host_addresses.local_node_ips(params['interface'], None, self.address_exclude,
                                                                  meshes_on_host.mesh_interfaces())]
        except WglanError as exc:
            log('cannot read this host\'s addresses: %s' % exc)
            return None

    def refresh_node_ips(self, params, options):
        """Publish the node IPs the host has now (kept in the watcher's state file, whence a wglan_peers
        run publishes them too). Returns True when this machine moved (another site, a new lease):
        every peer must handshake again before it counts as up, since NAT mappings and paths made for
        the old address are gone."""
        record = params.get('publish')
        if not record or not options['refresh_node_ips']:
            return False
        exclude = [ipaddress.ip_network(str(n), strict=False) for n in options['endpoint_exclude']]
        # the mesh's own prefix, and the pod CIDRs (a CNI bridge's address is not where this node is)
        for text in list(params.get('addresses') or []) + list(record.get('pod_cidrs') or []):
            try:
                exclude.append(ipaddress.ip_interface(str(text)).network)
            except ValueError:
                continue
        self.address_exclude = exclude
        ips = self.local_ips(params)
        if not ips:
            return False  # no address at all (network not up yet): keep what the role saw
        self.node_ips = ips if ips != record.get('node_ips') else None
        if self.node_ips is not None:
            params['publish'] = dict(record, node_ips=ips)
        moved = self.own_ips is not None and ips != self.own_ips
        if moved:
            log('this node\'s addresses changed: %s -> %s; handshaking with every peer again'
                % (', '.join(self.own_ips) or '-', ', '.join(ips)))
        self.own_ips = ips
        return moved

    def addresses_changed(self, params, options):
        if self.own_ips is None or params is None or not options['refresh_node_ips']:
            return False
        ips = self.local_ips(params)
        return bool(ips) and ips != self.own_ips

    def listen_port(self, params, me, records):
        """The configured port; with listen_port_auto and a live source (others learn a new port from it
        at once), a port of this node's own while it shares its public address with other members."""
        base = params['listen_port']
        port = base
        if params.get('listen_port_auto') and settings.live_source(params) and me is not None and records:
            self.public = topology.public_address(me, records) or self.public
            port = topology.shared_nat_port(me, records, base, self.public)
        if port != self.port:
            if self.port is not None or port != base:
                shared = self.public if port != base else None
                log('listen port %d%s' % (port, ' (other members share this node\'s public address %s)' % shared
                                          if shared else ''))
            self.port = port
        return port

    def hold_ipv4(self, chosen, recorded):
        """The IPv4 overlay address the reconcile chose (gather: held against the records' claims; recorded:
        the role's record's). True when it is not the one this node publishes: the record must go out again."""
        held = self.address4 or recorded
        if chosen is None or str(chosen) == held:
            return False
        log('IPv4 overlay address %s (it was %s)' % (chosen, held or 'none'))
        self.address4 = str(chosen)
        return True

    def record_to_publish(self, params, requests, options):
        """This node's record with fresh observations, when it changed or is due for a TTL refresh; else None."""
        record = params.get('publish')
        if not record:
            return None
        if self.address4 is not None and params.get('ipv4_prefix'):
            record = dict(record, address4=self.address4)
        if self.observed is not None:
            # The peers it receives from now (a handshake alone can be minutes old): other nodes
            # take these as paths that work, and choose relays by them.
            observed = dict((k, e) for k, e in self.observed.items() if e)
        else:
            try:
                observed = host_addresses.observed_endpoints(params['interface'])
            except WglanError:
                observed = record.get('observed') or {}
        fresh = plan.record_to_publish(record, observed, requests)
        due = time.monotonic() - self.last_publish >= options['publish_every'] or self.last_publish == 0 or self.again
        self.again = False
        if due or self.published != (node_records.without_observations(fresh), observed, fresh['relays']):
            return fresh
        return None

    def sent(self, record):
        """record (the publish of a reconcile that went through) is what the sources have now."""
        if record is not None:
            self.last_publish = time.monotonic()
            self.published = (node_records.without_observations(record), record.get('observed'), record.get('relays'))

    def seen(self, found, up):
        """Where the peers that are up are seen (found: the device as read). True when that changed (a
        peer came up, went down, or roamed behind its NAT): the record must go out again."""
        seen = dict((p.public_key, p.endpoint) for p in found[2].peers if p.public_key in up) if found else {}
        changed = seen != self.observed and self.observed is not None
        self.observed = seen
        return seen, changed
