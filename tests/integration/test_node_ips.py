"""Which of a host's addresses become its node IPs: the kernel's own address flags, in a namespace.

The kernel makes a privacy address itself from an address added with
`mngtmpaddr` when use_tempaddr is 2 (as SLAAC would), marks one added with
preferred_lft 0 deprecated, one a neighbour already holds "dadfailed", and a
second IPv4 address in a subnet "secondary" (the same bit as IPv6's
"temporary"). wglan_record (and the watcher, through the same function)
publishes the stable ones only.
"""
import ipaddress
import os
import shutil
import tempfile
import uuid

import pytest

from netns import Namespace, Playbook, veth, wait_for


@pytest.fixture
def host():
    tag = uuid.uuid4().hex[:6]
    spaces = []
    workdir = tempfile.mkdtemp(prefix='wglan-ips-')
    try:
        spaces.append(Namespace('wgt-ips-%s' % tag))
        spaces.append(Namespace('wgt-nbr-%s' % tag))
        ns, neighbour = spaces
        veth(ns, 'v0', neighbour, 'v1')
        ns.sh('sysctl -q -w net.ipv6.conf.v0.use_tempaddr=2 && ip link set v0 up')
        neighbour.sh('ip link set v1 up && ip addr add fd00:80::1/64 dev v1 nodad')
        yield ns, workdir
    finally:
        for space in spaces:
            space.destroy()
        shutil.rmtree(workdir, ignore_errors=True)


def addresses(ns, flag):
    out = ns.sh('ip -o addr show dev v0').stdout
    return [line.split()[3] for line in out.splitlines() if flag in line.split()]


def test_privacy_deprecated_and_duplicate_addresses_are_not_node_ips(host):
    ns, workdir = host
    ns.sh('ip addr add 192.0.2.5/24 dev v0 && ip addr add 192.0.2.6/24 dev v0')
    ns.sh('ip addr add fd00:77::1/64 dev v0 nodad')
    ns.sh('ip addr add fd00:78::1/64 dev v0 mngtmpaddr nodad')
    ns.sh('ip addr add fd00:79::1/64 dev v0 nodad preferred_lft 0')
    ns.sh('ip addr add fd00:80::1/64 dev v0')  # the neighbour has it: duplicate address detection fails
    temporary = wait_for(lambda: addresses(ns, 'temporary'), timeout=10)
    assert temporary and all(a.startswith('fd00:78:') for a in temporary), 'the kernel made no privacy address'
    assert addresses(ns, 'deprecated') == ['fd00:79::1/64']
    assert addresses(ns, 'secondary') == ['192.0.2.6/24']
    assert wait_for(lambda: addresses(ns, 'dadfailed'), timeout=10) == ['fd00:80::1/64']
    fact = os.path.join(workdir, 'wglan.fact')
    result = Playbook(ns, workdir).one('wglan.mesh.wglan_record', dict(name='n1', fact_path=fact))
    assert not result.get('failed'), result
    node_ips = result['record']['node_ips']
    assert sorted(node_ips) == sorted(['192.0.2.5/24', '192.0.2.6/24', 'fd00:77::1/64', 'fd00:78::1/64'])
    for text in temporary:
        assert str(ipaddress.ip_interface(text)) not in node_ips
