# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The `wglan` command: `wglan run` is the watcher service, `wglan status` shows its view.

    python3 -m ansible_collections.wglan.mesh.plugins.module_utils.daemon.cli run|status [...]
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import json
import os
import signal
import sys

from ansible_collections.wglan.mesh.plugins.module_utils.daemon.common import log, out
from ansible_collections.wglan.mesh.plugins.module_utils.daemon.status import format_status
from ansible_collections.wglan.mesh.plugins.module_utils.daemon.watcher import CONFIG, SETTINGS, Watcher, load_options
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.host import state_files


def show_status(args):
    path = args.status_path or load_options(args.config if os.path.exists(args.config) else None)['status_path']
    status = state_files.read_json(path)
    if status is None:
        out('no status at %s: is wglan-watcher running?' % path, sys.stderr)
        return 1
    out(json.dumps(status, indent=2) if args.json else format_status(status))
    return 0


def main(argv=None):
    parser = argparse.ArgumentParser(prog='wglan', description='wglan.mesh watcher')
    parser.add_argument('command', choices=['run', 'status'])
    parser.add_argument('--settings', default=SETTINGS)
    parser.add_argument('--config', default=CONFIG)
    parser.add_argument('--status-path', default=None)
    parser.add_argument('--json', action='store_true', help='status as JSON')
    args = parser.parse_args(argv)
    if args.command == 'status':
        return show_status(args)
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
