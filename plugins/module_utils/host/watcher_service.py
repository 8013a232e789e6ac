# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The watcher as a service: its program (this very library, packed into one zip Python imports
from), the `wglan` command, the systemd unit, and the unit kept enabled and running.

The library is taken from the module that runs: Ansible ships a module with every file of
module_utils it imports, and wglan_watcher imports the watcher's entry point, so the running
module holds exactly the watcher's code, and nothing has to be packed and copied beside it.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import io
import os
import subprocess
import zipfile

from ansible_collections.wglan.mesh.plugins.module_utils import errors
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.host import state_files

PACKAGE = 'ansible_collections/wglan/mesh/plugins/module_utils'
LIBRARY_PATH = '/usr/local/lib/wglan/wglan-library.zip'
COMMAND_PATH = '/usr/local/sbin/wglan'
UNIT = 'wglan-watcher.service'
UNIT_DIR = '/etc/systemd/system'
UNIT_PATH = UNIT_DIR + '/' + UNIT
WRITTEN_BY = 'Written by wglan.mesh (wglan_watcher): changes made here are replaced at the next run.'

UNIT_TEXT = '''# %(written_by)s
[Unit]
Description=wglan.mesh watcher: keeps the WireGuard mesh current
After=network-online.target
Wants=network-online.target

[Service]
Type=simple
Environment=PYTHONPATH=%(library)s
ExecStart=/usr/bin/python3 -m %(entry)s run --settings %(settings)s --config %(config)s
ExecReload=/bin/kill -HUP $MAINPID
Restart=on-failure
RestartSec=1
# wireguard-go, when the watcher starts it (after a reboot), is the mesh itself:
# a restart or stop of the watcher must not take the interface down with it.
KillMode=process
# Runs as root for the interface, nftables and routes, but with only the
# capability that needs (and NET_RAW/NET_BIND for wireguard-go's sockets).
CapabilityBoundingSet=CAP_NET_ADMIN CAP_NET_RAW CAP_NET_BIND_SERVICE
NoNewPrivileges=yes
ProtectSystem=strict
ReadWritePaths=/etc/wglan
# the mesh's names (wglan_names): its own block of the hosts file, written in place
ReadWritePaths=-/etc/hosts
# /run/wglan (status, relays) and /run/wireguard (wireguard-go's sockets): made at
# every start, also at boot, when /run is empty.
RuntimeDirectory=wglan wireguard
RuntimeDirectoryPreserve=yes
ProtectHome=yes
PrivateTmp=yes
ProtectControlGroups=yes
ProtectKernelTunables=yes
# ...except the forwarding switches a relay sets (wglan_relay).
ReadWritePaths=-/proc/sys/net/ipv4/conf -/proc/sys/net/ipv6/conf
RestrictAddressFamilies=AF_UNIX AF_INET AF_INET6 AF_NETLINK
RestrictNamespaces=yes
LockPersonality=yes
SystemCallArchitectures=native

[Install]
WantedBy=multi-user.target
'''

COMMAND_TEXT = '''#!/bin/sh
# %(written_by)s
# wglan status: the watcher's view of the mesh (peer, address, endpoint, state, handshake age, path).
PYTHONPATH=%(library)s exec /usr/bin/python3 -m %(entry)s "$@"
'''


def _entry(name):
    info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))
    info.external_attr = 0o644 << 16
    info.compress_type = zipfile.ZIP_DEFLATED
    return info


def library_sources():
    """{path inside the package: bytes} of every module of this library the running process has,
    read where Python found it: the module's own zip (as Ansible runs it) or a folder."""
    loader = getattr(errors, '__loader__', None)
    archive = getattr(loader, 'archive', None)
    files = {}
    if archive:
        with zipfile.ZipFile(archive) as payload:
            for name in payload.namelist():
                if name.startswith(PACKAGE + '/') and name.endswith('.py'):
                    files[name[len(PACKAGE) + 1:]] = payload.read(name)
    else:
        root = os.path.dirname(os.path.abspath(errors.__file__))
        for folder, subfolders, names in os.walk(root):
            subfolders[:] = sorted(d for d in subfolders if d != '__pycache__')
            for name in names:
                if name.endswith('.py'):
                    path = os.path.join(folder, name)
                    with open(path, 'rb') as handle:
                        files[os.path.relpath(path, root).replace(os.sep, '/')] = handle.read()
    if 'daemon/cli.py' not in files:
        raise WglanError('this module was shipped without the watcher\'s code (daemon/cli.py): cannot install it')
    return files


def pack(files):
    """The library as one zip Python imports from: deterministic (sorted names, fixed times), so the
    same code gives the same bytes and an unchanged library is not rewritten."""
    folders = set([''])
    for name in files:
        parts = name.split('/')[:-1]
        folders.update('/'.join(parts[:depth]) for depth in range(1, len(parts) + 1))
    entries = dict((name, content) for name, content in files.items() if not name.endswith('/__init__.py')
                   and name != '__init__.py')
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, 'w') as archive:
        parts = PACKAGE.split('/')
        for depth in range(1, len(parts)):
            archive.writestr(_entry('/'.join(parts[:depth]) + '/__init__.py'), '')
        for folder in sorted(folders):
            archive.writestr(_entry('/'.join(p for p in (PACKAGE, folder) if p) + '/__init__.py'), '')
        for name in sorted(entries):
            archive.writestr(_entry(PACKAGE + '/' + name), entries[name])
    return buffer.getvalue()


def texts(entry, settings_path, config_path):
    """The unit and the command, which run entry (the watcher's module) from the library."""
    values = dict(written_by=WRITTEN_BY, library=LIBRARY_PATH, entry=entry, settings=settings_path,
                  config=config_path)
    return (UNIT_TEXT % values).encode('utf-8'), (COMMAND_TEXT % values).encode('utf-8')


def _systemctl(*args):
    try:
        return subprocess.run(('systemctl',) + args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                              stderr=subprocess.PIPE, universal_newlines=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise WglanError('systemctl %s failed: %s' % (' '.join(args), exc))


def _must(*args):
    proc = _systemctl(*args)
    if proc.returncode != 0:
        raise WglanError('systemctl %s failed: %s' % (' '.join(args), (proc.stderr or proc.stdout).strip()))


def unit_path(unit):
    return '%s/%s' % (UNIT_DIR, unit)


def other_units(unit):
    """The watcher units of the host's other meshes (wglan-watcher.service, wglan-watcher@<mesh>.service)."""
    try:
        names = os.listdir(UNIT_DIR)
    except OSError:
        return []
    return sorted(n for n in names if n != unit and (n == UNIT or (n.startswith('wglan-watcher@') and n.endswith('.service'))))


def ensure(entry, settings_path, config_path, check_mode=False, unit_name=UNIT):
    """The program, the command and the unit (running entry, the watcher's module) in place, the unit
    enabled and running (restarted when its program or unit changed). Returns the list of what changed.
    unit_name: the mesh's unit (a host in several meshes runs one watcher per mesh, from one program)."""
    unit, command = texts(entry, settings_path, config_path)
    changed = []
    if state_files.write_bytes_if_changed(LIBRARY_PATH, pack(library_sources()), 0o644, check_mode):
        changed.append('library')
    if state_files.write_bytes_if_changed(COMMAND_PATH, command, 0o755, check_mode):
        changed.append('command')
    unit_changed = state_files.write_bytes_if_changed(unit_path(unit_name), unit, 0o644, check_mode)
    if unit_changed:
        changed.append('unit')
    if check_mode:
        enabled = _systemctl('is-enabled', unit_name).stdout.strip() == 'enabled'
        active = _systemctl('is-active', unit_name).stdout.strip() == 'active'
        return changed + ([] if enabled else ['enabled']) + ([] if active else ['started'])
    if unit_changed:
        _must('daemon-reload')
    if _systemctl('is-enabled', unit_name).stdout.strip() != 'enabled':
        _must('enable', unit_name)
        changed.append('enabled')
    # --no-block: the unit waits for network-online.target, which a host without a wait-online
    # service reaches only after its timeout; the watcher starts then, nothing here needs to wait
    state = _systemctl('is-active', unit_name).stdout.strip()
    if state not in ('active', 'activating', 'reloading'):
        _must('start', '--no-block', unit_name)
        changed.append('started')
    elif 'library' in changed or unit_changed:
        _must('restart', '--no-block', unit_name)
        changed.append('restarted')
    if 'library' in changed:
        # the host's other meshes' watchers run from the same program: the new one, from now on
        for other in other_units(unit_name):
            if _systemctl('is-active', other).stdout.strip() in ('active', 'activating', 'reloading'):
                _must('restart', '--no-block', other)
    return changed


def removable(unit_name=UNIT):
    """The files a removal of unit_name takes: its unit; the program and command too when it is the last."""
    there = [path for path in (unit_path(unit_name),) if os.path.exists(path)]
    if not other_units(unit_name):
        there += [path for path in (COMMAND_PATH, LIBRARY_PATH) if os.path.exists(path)]
    return there


def remove(check_mode=False, unit_name=UNIT):
    """The unit stopped and disabled, and its file gone; the program and the command too when no other
    mesh's watcher is left. Returns whether anything was there."""
    there = removable(unit_name)
    if check_mode or not there:
        return bool(there)
    _systemctl('disable', '--now', unit_name)
    for path in there:
        os.unlink(path)
    _systemctl('daemon-reload')
    return True
