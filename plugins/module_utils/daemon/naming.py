# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The watcher's names: where systemd-resolved is the host's resolver, a responder on the mesh address
(names_server) that the mesh interface names as its DNS server for ~<domain> (host.resolved); elsewhere,
or when that cannot be set up, the managed block in the hosts file. One of the two at a time: the other
is taken away, so a name never answers from a stale place."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress

from ansible_collections.wglan.mesh.plugins.module_utils.daemon import names_server
from ansible_collections.wglan.mesh.plugins.module_utils.daemon.common import log
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.host import hosts_file, resolved
from ansible_collections.wglan.mesh.plugins.module_utils.model import peer_names


def mesh_address(config, gathered):
    """This node's IPv6 mesh address (the responder's), or None."""
    if gathered.me is not None and gathered.me.address is not None:
        return ipaddress.ip_address(str(gathered.me.address).split('/', 1)[0])
    for net in config.addresses or ():
        if net.version == 6:
            return net.ip
    return None


class Names:
    def __init__(self):
        self.responder = None
        self.link = None        # the interface whose DNS settings are ours
        self.via = None         # 'resolved' or 'hosts': where the names are now
        self.why_not = None     # why not through resolved (logged once per reason)

    def ensure(self, params, config, gathered):
        """The names of this reconcile where they belong; logs what changed. Never raises: the names
        must not stop the watcher keeping the mesh."""
        try:
            self._ensure(params, config, gathered)
        except Exception as exc:  # (a bug here costs the names until the next reconcile, not the mesh)
            log('names: %s: %s' % (type(exc).__name__, exc))

    def _ensure(self, params, config, gathered):
        entries = gathered.names
        if entries is None:
            self._off()
            self._hosts(params, None, config.ifname)
            self.via = None
            return
        domain = peer_names.parse_domain(params.get('names_domain') or peer_names.DEFAULT_DOMAIN)
        via = params.get('names_via') or 'auto'
        if via != 'hosts':
            reason = self._through_resolved(params, config, gathered, domain, via)
            if reason is None:
                self._hosts(params, None, config.ifname)
                self._now('resolved', 'names: %d answered on [%s]:%d for ~%s (systemd-resolved)'
                          % (len(set(n for _ip, n in entries)), self.responder.address, self.responder.port, domain))
                return
            if reason != self.why_not:
                log('names: not through systemd-resolved (%s); in %s' % (reason, params['hosts_path']))
                self.why_not = reason
        self._off()
        self._hosts(params, entries, config.ifname)
        self._now('hosts', None)

    def _now(self, via, text):
        if via != self.via and text:
            log(text)
        self.via = via

    def _through_resolved(self, params, config, gathered, domain, via):
        """None when the names are served through systemd-resolved now, else why not."""
        if not resolved.in_use():
            return 'it is not the host\'s resolver' if via == 'auto' else 'names_via resolved: it is not the host\'s resolver'
        if not names_server.HAS_DNSPYTHON:
            return 'python3-dnspython is not installed'
        address = mesh_address(config, gathered)
        if address is None:
            return 'no mesh address'
        port = int(params.get('names_port') or 53)
        if self.responder is None or (self.responder.address, self.responder.port) != (str(address), port):
            self._stop_responder()
            try:
                self.responder = names_server.Responder(address, port, domain, gathered.names)
            except OSError as exc:
                return 'cannot listen on [%s]:%d: %s' % (address, port, exc.strerror or exc)
        else:
            self.responder.update(gathered.names, domain)
        try:
            if self.link is not None and self.link != config.ifname:
                resolved.revert(self.link)
            self.link = config.ifname
            if resolved.ensure(config.ifname, address, port, domain):
                log('names: %s asks [%s]:%d for ~%s' % (config.ifname, address, port, domain))
        except WglanError as exc:
            return str(exc)
        self.why_not = None
        return None

    def _hosts(self, params, entries, tag):
        try:
            changed, _before, _after = hosts_file.ensure(params['hosts_path'], entries, tag)
        except WglanError as exc:
            log('cannot write the names: %s' % exc)
            return
        if changed and entries is None:
            log('names: none in %s' % params['hosts_path'])
        elif changed:
            log('names: %d in %s' % (len(set(n for _ip, n in entries)), params['hosts_path']))

    def _stop_responder(self):
        if self.responder is not None:
            self.responder.close()
            self.responder = None

    def _off(self):
        self._stop_responder()
        if self.link is not None:
            try:
                resolved.revert(self.link)
            except WglanError as exc:
                log('names: %s' % exc)
            self.link = None

    def close(self):
        """The watcher stops: nothing answers the names any more, so the link stops asking."""
        self._off()

    def status(self):
        if self.via is None:
            return None
        row = dict(via=self.via)
        if self.via == 'resolved' and self.responder is not None:
            row.update(server='[%s]:%d' % (self.responder.address, self.responder.port), **self.responder.counts)
        return row
