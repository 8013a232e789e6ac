"""wglan_firewall against a real admin firewall: nftables in two namespaces, real UDP packets.

The admin of `host` has their own table whose input and forward chains drop by
default, and an iptables-style table (upper-case chains, as iptables-nft makes
them) where the admin opened the port themselves, which must be left alone
(a packet must pass every base chain on its hook). A client namespace sends UDP to the WireGuard
port: it arrives only once the module opened it, the admin's rules stay as they
were, a flush + reload (what `systemctl restart nftables` does) is repaired by
the next call, and state=absent takes away exactly what was added.
"""
import subprocess
import uuid

import pytest

from netns import Namespace, Playbook, veth

ADMIN = '''
table inet admin {
  chain input { type filter hook input priority filter; policy drop;
    ct state established,related accept
    iifname "lo" accept
    tcp dport 22 accept
  }
  chain forward { type filter hook forward priority filter; policy drop;
  }
  chain output { type filter hook output priority filter; policy accept;
  }
}
table ip filter {
  chain INPUT { type filter hook input priority filter; policy drop;
    udp dport 51820 accept
  }
}
'''
PORT = 51820
LISTENER = '''
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.bind(("0.0.0.0", %d)); s.settimeout(1.5)
try:
    print(s.recv(100).decode())
except socket.timeout:
    print("nothing")
''' % PORT


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    tag = uuid.uuid4().hex[:6]
    spaces = []
    try:
        host = Namespace('wglan-%s-fh' % tag)
        spaces.append(host)
        client = Namespace('wglan-%s-fc' % tag)
        spaces.append(client)
        veth(host, 'eth0', client, 'eth0')
        host.sh('ip addr add 198.51.100.1/24 dev eth0')
        client.sh('ip addr add 198.51.100.2/24 dev eth0')
        host.cmd(['nft', '-f', '-'], input=ADMIN)
        workdir = str(tmp_path_factory.mktemp('fw'))
        yield dict(host=host, client=client, pb=Playbook(host, workdir))
    finally:
        for ns in spaces:
            ns.destroy()


def packet_arrives(world):
    """Send one UDP datagram from the client to the port; True if the host's socket got it."""
    listener = subprocess.Popen(['ip', 'netns', 'exec', world['host'].name, 'python3', '-c', LISTENER],
                                stdout=subprocess.PIPE, universal_newlines=True)
    try:
        for _attempt in range(3):
            world['client'].sh('python3 -c "import socket,time; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM); '
                               's.sendto(b\'hello\', (\'198.51.100.1\', %d))"; sleep 0.2' % PORT)
        out = listener.communicate(timeout=10)[0]
    finally:
        if listener.poll() is None:
            listener.kill()
    return out.strip() == 'hello'


def admin_rules(world):
    """The admin's own rules (without ours), as text: must never change."""
    text = world['host'].sh('nft list table inet admin').stdout
    return [line.strip() for line in text.splitlines() if 'wglan.mesh' not in line and 'handle' not in line]


ARGS = dict(owner='wgfw0', udp_ports=[PORT], forward_interface='wgfw0')


def test_the_port_is_closed_until_the_module_opens_it(world):
    before = admin_rules(world)
    assert not packet_arrives(world), 'the admin firewall should drop the port before'
    check, first, second = world['pb'].run([('wglan.mesh.wglan_firewall', ARGS, True),
                                            ('wglan.mesh.wglan_firewall', ARGS, False),
                                            ('wglan.mesh.wglan_firewall', ARGS, False)])
    assert check['changed'] and first['changed'] and not second['changed'], (check, first, second)
    assert first['manager'] == 'nftables'
    assert sorted(first['added']) == ['inet admin forward: wglan.mesh:wgfw0 relay',
                                      'inet admin input: wglan.mesh:wgfw0 udp/51820'], first
    assert first['skipped'] == ['ip filter INPUT (managed by iptables)'], first
    assert packet_arrives(world)
    assert admin_rules(world) == before
    # at the top of the chain, so none of the admin's own drops comes first
    chain = world['host'].sh('nft list chain inet admin input').stdout
    assert chain.index('wglan.mesh') < chain.index('ct state'), chain
    assert 'wglan.mesh' not in world['host'].sh('nft list table ip filter').stdout


def test_a_flush_and_reload_is_repaired_by_the_next_run(world):
    world['host'].sh('nft flush ruleset')
    world['host'].cmd(['nft', '-f', '-'], input=ADMIN)
    assert not packet_arrives(world)
    repaired = world['pb'].one('wglan.mesh.wglan_firewall', ARGS)
    assert repaired['changed'], repaired
    assert packet_arrives(world)


def test_a_changed_port_moves_the_rule(world):
    moved = world['pb'].one('wglan.mesh.wglan_firewall', dict(ARGS, udp_ports=[51821]))
    assert moved['added'] == ['inet admin input: wglan.mesh:wgfw0 udp/51821'], moved
    assert moved['removed'] == ['inet admin input: wglan.mesh:wgfw0 udp/51820'], moved
    assert not packet_arrives(world)


def test_absent_removes_exactly_ours(world):
    before = admin_rules(world)
    gone = world['pb'].one('wglan.mesh.wglan_firewall', dict(owner='wgfw0', state='absent'))
    assert gone['changed'] and len(gone['removed']) == 2, gone
    ruleset = world['host'].sh('nft list ruleset').stdout
    assert 'wglan.mesh' not in ruleset
    assert admin_rules(world) == before


def test_bad_input_is_refused_and_changes_nothing(world):
    before = world['host'].sh('nft list ruleset').stdout
    result = world['pb'].one('wglan.mesh.wglan_firewall', dict(owner='wgfw0', udp_ports=[70000]))
    assert result.get('failed') and 'between 1 and 65535' in result['msg'], result
    result = world['pb'].one('wglan.mesh.wglan_firewall', dict(owner='two words', udp_ports=[1]))
    assert result.get('failed') and 'one word' in result['msg'], result
    assert world['host'].sh('nft list ruleset').stdout == before
