# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""systemd-resolved as the host's resolver for the mesh's names: the mesh interface's per-link DNS
server (the watcher's responder, daemon.names_server) and its routing domain (~<domain>: only names
under the domain go there, and the link is never the default route for other names). Through
resolvectl, which every systemd-resolved ships; read before set, so an unchanged link is not touched
(a set resets the link's server state in resolved)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import shutil
import socket
import subprocess

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError

STUB = '127.0.0.53'


def _run(args, check=True):
    try:
        done = subprocess.run(args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              timeout=15, check=False, universal_newlines=True)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise WglanError('%s: %s' % (' '.join(args[:3]), exc))
    if check and done.returncode != 0:
        raise WglanError('%s: %s' % (' '.join(args[:3]), (done.stderr or done.stdout).strip()[:300]))
    return done


def in_use(resolv_conf='/etc/resolv.conf', nsswitch='/etc/nsswitch.conf'):
    """Whether systemd-resolved runs and is the host's resolver: programs reach it through its stub
    (resolv.conf names 127.0.0.53) or through nss-resolve (nsswitch.conf)."""
    if not shutil.which('resolvectl') or not shutil.which('systemctl'):
        return False
    try:
        if _run(['systemctl', 'is-active', '--quiet', 'systemd-resolved.service'], check=False).returncode != 0:
            return False
    except WglanError:
        return False
    return _names_in(resolv_conf, 'nameserver', STUB) or _names_in(nsswitch, 'hosts:', 'resolve')


def _names_in(path, key, word):
    try:
        with open(path) as handle:
            return any(line.split()[:1] == [key] and word in line.split()[1:] for line in handle)
    except OSError:
        return False


def _values(ifname, verb):
    """The words resolvectl shows for the link (`Link 5 (wg0): a b`)."""
    text = _run(['resolvectl', verb, ifname]).stdout
    head, sep, tail = text.partition('):')
    return tail.split() if sep else []


def server_text(address, port):
    return str(address) if int(port) == 53 else '[%s]:%d' % (address, int(port))


def _server(word):
    """(address, port) of a server as resolvectl shows it: a, [a]:p, a:p for IPv4, a%if, a#name."""
    word = word.split('#', 1)[0]
    port = 53
    if word.startswith('['):
        host, _sep, rest = word[1:].partition(']')
        if rest.startswith(':') and rest[1:].isdigit():
            port = int(rest[1:])
        word = host
    elif word.count(':') == 1:
        word, _sep, text = word.partition(':')
        port = int(text) if text.isdigit() else 53
    try:
        return (ipaddress.ip_address(word.split('%', 1)[0]), port)
    except ValueError:
        return (word, port)


def exists(ifname):
    # (by the kernel's index, not /sys/class/net, which a container's sysfs may not show the tunnel in)
    try:
        return socket.if_nametoindex(ifname) > 0
    except OSError:
        return False


def link(ifname):
    """What resolved has for the link: dict(servers=[(address, port)], domains=[...], default_route=bool)."""
    if not exists(ifname):
        raise WglanError('no interface %s' % ifname)
    default = _values(ifname, 'default-route')
    return dict(servers=sorted(map(_server, _values(ifname, 'dns')), key=str), domains=sorted(_values(ifname, 'domain')),
                default_route=default[:1] != ['no'])


def ensure(ifname, address, port, domain, check_mode=False):
    """The link asks the responder at address:port for ~domain and nothing else. Returns whether it changed."""
    now = link(ifname)
    want = dict(servers=[(ipaddress.ip_address(str(address)), int(port))], domains=['~' + domain], default_route=False)
    if now == want:
        return False
    if not check_mode:
        if now['servers'] != want['servers']:
            _run(['resolvectl', 'dns', ifname, server_text(address, port)])
        if now['domains'] != want['domains']:
            _run(['resolvectl', 'domain', ifname, '~' + domain])
        if now['default_route']:
            _run(['resolvectl', 'default-route', ifname, 'false'])
    return True


def revert(ifname):
    """The link's DNS settings back to none (the watcher stops answering, or names go to the hosts file)."""
    if exists(ifname):
        _run(['resolvectl', 'revert', ifname], check=False)
