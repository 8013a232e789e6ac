# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The `wglan` command: `wglan run` is the watcher service, `wglan status` shows its view, `wglan graph`
draws it (SVG, with Graphviz), `wglan rotate-key` asks the watcher for a key rotation.

    python3 -m ansible_collections.wglan.mesh.plugins.module_utils.daemon.cli run|status [...]
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import json
import os
import signal
import socket
import sys
import time

from ansible_collections.wglan.mesh.plugins.module_utils.daemon.common import log, out
from ansible_collections.wglan.mesh.plugins.module_utils.daemon.status import format_status
from ansible_collections.wglan.mesh.plugins.module_utils.daemon.watcher import CONFIG, SETTINGS, Watcher, load_options
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.host import graph_render, key_files, state_files
from ansible_collections.wglan.mesh.plugins.module_utils.model import meshes, mesh_graph, settings
from ansible_collections.wglan.mesh.plugins.module_utils.model.keys import public_key_from_private


def _status_path(args):
    if args.status_path:
        path = args.status_path
    elif os.path.exists(args.config):
        path = load_options(args.config)['status_path']
    else:
        path = meshes.paths(args.mesh)['status']
    return path


def _read_status(args):
    path = _status_path(args)
    status = state_files.read_json(path)
    if status is None:
        out('no status at %s: is wglan-watcher running?' % path, sys.stderr)
    return status


def show_status(args):
    status = _read_status(args)
    if status is None:
        return 1
    out(json.dumps(status, indent=2) if args.json else format_status(status))
    return 0


def draw(args):
    """This node's view of the mesh (its peers and their paths) as a picture: --output FILE, or stdout."""
    status = _read_status(args)
    if status is None:
        return 1
    name = socket.gethostname().split('.')[0] or 'this node'
    the_graph = mesh_graph.graph({name: (None, None, status.get('peers') or [])})
    try:
        picture = graph_render.render(the_graph, graph_render.format_of(args.output, args.format),
                                      'wglan.mesh as %s sees it' % name)
        if args.output == '-':
            sys.stdout.buffer.write(picture)
            sys.stdout.flush()
        else:
            state_files.replace(args.output, picture, 0o644)
            out('%s: %d peers of %s' % (args.output, len(the_graph.nodes) - 1, name))
    except WglanError as exc:
        out('wglan graph: %s' % exc, sys.stderr)
        return 1
    return 0


def _public_key(path):
    raw = key_files.read_private_key(path)
    return public_key_from_private(raw) if raw is not None else None


def rotate_key(args):
    """Ask the running watcher to rotate this node's key; with --wait, until it switched (bounded)."""
    options = load_options(args.config if os.path.exists(args.config) else None)
    settings_data = state_files.read_json(args.settings) or {}
    key_path = settings_data.get('private_key_path') or key_files.DEFAULT_KEY_PATH
    before = _public_key(key_path)
    refused = settings.rotation_refused(dict(dict(watcher=True), **settings_data))
    if refused:
        out('%s: nothing was asked of the watcher' % refused, sys.stderr)
        return 1
    try:
        with open(options['rotate_request'], 'w') as handle:
            handle.write('rotate\n')
    except OSError as exc:
        out('cannot ask the watcher: %s: %s' % (options['rotate_request'], exc.strerror or exc), sys.stderr)
        return 1
    if not args.wait:
        out('asked the watcher to rotate the key of %s' % before)
        return 0
    deadline = time.monotonic() + args.wait
    while time.monotonic() < deadline:
        now = _public_key(key_path)
        if now != before and not os.path.exists(key_path + '.next'):
            out('key rotated: %s -> %s' % (before, now))
            return 0
        time.sleep(0.2)
    out('the key was not rotated within %d s (is wglan-watcher running, with a live source?)' % args.wait, sys.stderr)
    return 1


def main(argv=None):
    parser = argparse.ArgumentParser(prog='wglan', description='wglan.mesh watcher')
    parser.add_argument('command', choices=['run', 'status', 'graph', 'rotate-key'])
    parser.add_argument('--output', '-o', default='-', help='graph: the file to write (default: stdout)')
    parser.add_argument('--format', choices=graph_render.FORMATS, default=None,
                        help='graph: the format (default: from the file name, else svg)')
    parser.add_argument('--wait', type=int, default=0, help='rotate-key: wait this many seconds for the switch')
    parser.add_argument('--mesh', default='', help='the mesh, on a host in several (default: the default mesh)')
    parser.add_argument('--settings', default=None)
    parser.add_argument('--config', default=None)
    parser.add_argument('--status-path', default=None)
    parser.add_argument('--json', action='store_true', help='status as JSON')
    args = parser.parse_args(argv)
    try:
        paths = meshes.paths(args.mesh)
    except WglanError as exc:
        parser.error(str(exc))
    args.settings = args.settings or (paths['settings'] if args.mesh else SETTINGS)
    args.config = args.config or (paths['watcher_config'] if args.mesh else CONFIG)
    if args.command == 'status':
        return show_status(args)
    if args.command == 'graph':
        return draw(args)
    if args.command == 'rotate-key':
        return rotate_key(args)
    try:
        watcher = Watcher(args.settings, args.config)
    except WglanError as exc:
        out('wglan-watcher: %s' % exc, sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, lambda *_args: watcher.stop.set())
    signal.signal(signal.SIGHUP, lambda *_args: watcher.trigger('SIGHUP'))
    log('started (settings %s, options %s)' % (args.settings, args.config))
    watcher.run()
    log('stopped')
    return 0


if __name__ == '__main__':
    raise SystemExit(main())
