"""wireguard-go outlives the session that asked for it.

Without pipelining, Ansible runs each module over `ssh -tt`: the module is in a
session with a controlling terminal, and when the task ends the terminal hangs
up and everything left in that session's foreground process group gets SIGHUP.
This reproduces exactly that with a real pseudo-terminal: the backend's start()
runs as the leader of a session on a pty, the leader exits, and the interface
must still be there. (This machine runs no systemd, so the path under test is
the new-session one; the systemd-owned path is tested in the lab, over SSH
with a tty, where systemd runs the machines.)
"""
import os
import pty
import select
import sys
import time
import uuid

import pytest

from netns import COLLECTIONS, Namespace, wait_for

STARTER = '''
import sys
sys.path.insert(0, %r)
from ansible_collections.wglan.mesh.plugins.module_utils.host.wg_uapi import UapiBackend
UapiBackend(sys.argv[1]).start()
print("started", flush=True)
'''


@pytest.fixture
def namespace():
    ns = Namespace('wglan-%s-po' % uuid.uuid4().hex[:6])
    try:
        yield ns
    finally:
        ns.destroy()


def start_on_a_terminal(ns, ifname):
    """Run start() as a session leader with a pty as its controlling terminal; return once it exited."""
    pid, master = pty.fork()
    if pid == 0:  # the child: a new session whose controlling terminal is the pty (like sshd's)
        try:
            os.execvp('ip', ['ip', 'netns', 'exec', ns.name, sys.executable, '-c', STARTER % COLLECTIONS, ifname])
        finally:
            os._exit(127)
    output = b''
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        ready = select.select([master], [], [], 0.5)[0]
        if ready:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        if os.waitpid(pid, os.WNOHANG)[0]:
            break
    else:
        os.kill(pid, 9)
    os.close(master)  # the terminal hangs up, as when sshd closes the session
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass
    return output.decode('utf-8', 'replace')


def test_wireguard_go_survives_the_end_of_a_terminal_session(namespace):
    ifname = 'wgpo%s' % uuid.uuid4().hex[:4]
    namespace.interfaces.append(ifname)
    output = start_on_a_terminal(namespace, ifname)
    assert 'started' in output, output
    time.sleep(1.0)  # SIGHUP is delivered at once; give a killed daemon time to take its link along
    shown = namespace.sh('ip link show %s' % ifname, check=False)
    assert shown.returncode == 0, 'the interface died with the session: %s' % output
    daemons = namespace.sh('pgrep -x wireguard-go', check=False).stdout.split()
    assert daemons, 'no wireguard-go left'
    for pid in daemons:
        assert os.getsid(int(pid)) != os.getsid(0), 'wireguard-go shares a session it did not start'
    # and it still answers on its socket
    assert wait_for(lambda: os.path.exists('/var/run/wireguard/%s.sock' % ifname), timeout=5)
