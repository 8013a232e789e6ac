"""Replies leave the way the request came, on real nftables, policy routing and wireguard-go.

A node's rules route a peer's node IP into the tunnel. When that peer (or any
host at that address) reaches a service on the node over the underlay (its
control-plane connection to a discovery service on a mesh member, say, while
the node routes it through a relay or before the two can handshake), the
answers must go back over the underlay: sent into the tunnel they are lost,
and the peer can never learn what it needs to handshake.

Two namespaces on one veth: "node" with a WireGuard interface (wireguard-go)
whose one peer holds the client's address and has no endpoint (the tunnel to
it leads nowhere), and "client", a plain host at that address.
"""
import base64
import os
import shutil
import subprocess
import sys
import tempfile
import uuid

import pytest

from netns import Namespace, Playbook, veth, wait_for

NODE_IP, CLIENT_IP = '198.51.100.1', '198.51.100.2'
NODE_IP6, CLIENT_IP6 = 'fd00:5::1', 'fd00:5::2'
SERVER = '''
import socket, sys
family = socket.AF_INET6 if ':' in sys.argv[1] else socket.AF_INET
s = socket.socket(family)
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
s.bind((sys.argv[1], 8443))
s.listen(8)
while True:
    c, _ = s.accept()
    c.sendall(b'hello\\n')
    c.close()
'''
FETCH = '''
import socket, sys
c = socket.create_connection((sys.argv[1], 8443), timeout=3)
print(c.recv(16).decode().strip())
'''


@pytest.fixture(scope='module')
def world():
    tag = uuid.uuid4().hex[:6]
    workdir = tempfile.mkdtemp(prefix='wglan-replies-')
    spaces, servers = [], []
    try:
        node = Namespace('wglan-%s-node' % tag)
        spaces.append(node)
        client = Namespace('wglan-%s-cli' % tag)
        spaces.append(client)
        veth(node, 'eth0', client, 'eth0')
        node.sh('ip addr add %s/24 dev eth0 && ip -6 addr add %s/64 dev eth0 nodad' % (NODE_IP, NODE_IP6))
        client.sh('ip addr add %s/24 dev eth0 && ip -6 addr add %s/64 dev eth0 nodad' % (CLIENT_IP, CLIENT_IP6))
        ifname = 'wg%s' % tag
        node.interfaces.append(ifname)
        nowhere = base64.b64encode(os.urandom(32)).decode()  # a peer key nobody holds
        targets = [CLIENT_IP + '/32', CLIENT_IP6 + '/128']
        results = Playbook(node, workdir).run([
            ('wglan.mesh.wglan_keys', dict(path=os.path.join(workdir, 'private.key')), False),
            ('wglan.mesh.wglan_peers', dict(interface=ifname, backend='userspace', addresses=['fd77:1::1/64'],
                                            private_key_path=os.path.join(workdir, 'private.key'),
                                            peers=[dict(name='client', public_key=nowhere, allowed_ips=targets)]),
             False),
            ('wglan.mesh.wglan_rules', dict(interface=ifname, targets=targets), False)])
        assert all(not r.get('failed') for r in results), results
        for address in (NODE_IP, NODE_IP6):
            servers.append(subprocess.Popen(['ip', 'netns', 'exec', node.name, sys.executable, '-c', SERVER, address],
                                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        assert wait_for(lambda: node.sh('ss -ltn | grep -c ":8443 "', check=False).stdout.strip() == '2',
                        timeout=10)
        yield dict(node=node, client=client, ifname=ifname)
    finally:
        for server in servers:
            if server.poll() is None:
                server.kill()
        for space in reversed(spaces):
            space.destroy()
        shutil.rmtree(workdir, ignore_errors=True)


def fetch(ns, address):
    return ns.cmd([sys.executable, '-c', FETCH, address], check=False, timeout=20)


@pytest.mark.parametrize('server', [NODE_IP, NODE_IP6])
def test_a_client_routed_into_the_tunnel_still_gets_answers_over_the_underlay(world, server):
    node = world['node']
    # the client's address is a target: what the node sends there by itself goes into the tunnel
    route = node.sh('ip route get %s mark 0x40' % (CLIENT_IP if ':' not in server else CLIENT_IP6)).stdout
    assert world['ifname'] in route, route
    proc = fetch(world['client'], server)
    assert proc.returncode == 0 and proc.stdout.strip() == 'hello', proc.stderr[-500:]


def test_what_the_node_starts_itself_still_goes_into_the_tunnel(world):
    node, client = world['node'], world['client']
    client.sh('nft add table inet count && '
              "nft 'add chain inet count in { type filter hook input priority 0; }' && "
              'nft add rule inet count in tcp dport 9 counter')
    node.cmd([sys.executable, '-c', 'import socket\ntry:\n socket.create_connection(("%s", 9), 1)\n'
              'except OSError:\n pass' % CLIENT_IP], check=False)
    counted = client.sh('nft list table inet count').stdout
    assert 'packets 0 ' in counted, counted  # the SYN went into the (dead) tunnel, not onto the underlay
