"""Helpers for the watcher's namespace tests: the discovery service and watchers as processes in namespaces.

Every process started here runs inside a namespace the test made; the tests
kill them (and destroy the namespaces) in their fixtures' teardown.
"""
import contextlib
import os
import subprocess
import sys
import uuid

from netns import COLLECTIONS, DISCOVERY_SERVER, switched, wait_for

PROBE = 'python3 -c "import socket; socket.create_connection((\'198.51.100.100\', 8443), 1)"'


def start_service(ns, address, workdir, *args, **kw):
    """The discovery service in namespace ns, listening on address:8443, its database in workdir; args:
    more options; kw: stderr (its log: by default none)."""
    return subprocess.Popen(['ip', 'netns', 'exec', ns.name, sys.executable, DISCOVERY_SERVER,
                             '--listen', '%s:8443' % address, '--db', os.path.join(workdir, 'db')] + list(args),
                            env=dict(os.environ, PYTHONPATH=COLLECTIONS), stdout=subprocess.DEVNULL,
                            stderr=kw.get('stderr', subprocess.DEVNULL))


def watcher_cmd(ns, *args):
    return ['ip', 'netns', 'exec', ns.name, sys.executable, '-m',
            'ansible_collections.wglan.mesh.plugins.module_utils.daemon.cli'] + list(args) + [
        '--settings', os.path.join(ns.workdir, 'settings.json'), '--config', os.path.join(ns.workdir, 'watcher.json')]


class Watchers:
    def __init__(self):
        self.procs = {}

    def start(self, ns, env=None):
        """ns's watcher; env: more of its environment."""
        log = open(os.path.join(ns.workdir, 'watcher.log'), 'a')
        self.procs[ns.name] = subprocess.Popen(watcher_cmd(ns, 'run'), stdout=log, stderr=subprocess.STDOUT,
                                               env=dict(os.environ, PYTHONPATH=COLLECTIONS, WGLAN_LOG_TIME='1',
                                                        **(env or {})))
        return self.procs[ns.name]

    def kill(self, ns):
        proc = self.procs.pop(ns.name, None)
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(10)

    def stop_all(self):
        for proc in self.procs.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)


@contextlib.contextmanager
def service_world(workdir, members, wireguard):
    """Namespaces on one switch (see netns.switched) plus 'srv' at 198.51.100.100 running the discovery
    service. Yields (tag, nodes, server, watchers); on the way out, whatever happened, the watchers
    and the service are killed and every namespace made is destroyed."""
    tag = uuid.uuid4().hex[:6]
    spaces, server, watchers = [], None, Watchers()
    try:
        nodes = switched(tag, ((100, 'srv'),) + tuple(members), wireguard, workdir, spaces)
        server = start_service(nodes['srv'], '198.51.100.100', workdir)
        assert wait_for(lambda: nodes[wireguard[0]].sh(PROBE, check=False).returncode == 0, timeout=15)
        yield tag, nodes, server, watchers
    finally:
        watchers.stop_all()
        if server is not None and server.poll() is None:
            server.kill()
        for ns in reversed(spaces):
            ns.destroy()
