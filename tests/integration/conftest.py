import os
import shutil
import tempfile
import uuid

import pytest

from collection import skip_without
from netns import Namespace, veth

REQUIRED = ('ip', 'nft', 'wg', 'wireguard-go', 'ansible-playbook')


def pytest_configure(config):
    # `make integration` runs the suite on two workers (a module per worker: most of a namespace test is
    # waiting on timers), then the modules marked serial alone: what they measure (packets lost in the
    # milliseconds of a key switch) depends on when a watcher gets the CPU.
    config.addinivalue_line('markers', 'serial: run alone, after the rest (make integration)')


def pytest_collection_modifyitems(config, items):
    skip_without(items, REQUIRED, 'integration tests (network namespaces)')


class Node:
    """One end of the two-node lab: a namespace plus what the tests need to know about it."""

    def __init__(self, ns, letter, index, workdir):
        self.ns = ns
        self.letter = letter
        self.ifname = 'wg%s%s' % (uuid.uuid4().hex[:6], letter)
        ns.interfaces.append(self.ifname)
        self.underlay4 = '198.51.100.%d' % index
        self.underlay6 = 'fd00:5::%d' % index
        self.service4 = '192.0.2.%d' % index
        self.workdir = os.path.join(workdir, letter)
        os.makedirs(self.workdir)
        self.key_path = os.path.join(self.workdir, 'keys', 'private.key')


@pytest.fixture(scope='module')
def two_nodes():
    """Two namespaces joined by a veth 'internet' that drops plain pings.

    Each node has an underlay address (198.51.100.x, fd00:5::x) and a service
    address on lo (192.0.2.x). The underlay drops ICMP echo requests that arrive
    on it directly, so a ping between the nodes only works through the tunnel.
    """
    workdir = tempfile.mkdtemp(prefix='wglan-it-')
    tag = uuid.uuid4().hex[:6]
    namespaces = []
    try:
        a = Namespace('wglan-%s-a' % tag)
        namespaces.append(a)
        b = Namespace('wglan-%s-b' % tag)
        namespaces.append(b)
        veth(a, 'veth0', b, 'veth0')
        nodes = []
        for ns, letter, index, other in ((a, 'a', 1, 2), (b, 'b', 2, 1)):
            node = Node(ns, letter, index, workdir)
            ns.sh('ip addr add %s/24 dev veth0 && ip -6 addr add %s/64 dev veth0 nodad'
                  % (node.underlay4, node.underlay6))
            ns.sh('ip addr add %s/32 dev lo' % node.service4)
            ns.sh('ip route add default via 198.51.100.%d && ip -6 route add default via fd00:5::%d'
                  % (other, other))
            ns.sh("nft add table inet labfilter && nft 'add chain inet labfilter in { type filter hook input priority 0; }' && "
                  "nft add rule inet labfilter in iifname veth0 icmp type echo-request drop && "
                  "nft add rule inet labfilter in iifname veth0 icmpv6 type echo-request drop")
            nodes.append(node)
        yield nodes
    finally:
        for ns in namespaces:
            ns.destroy()
        shutil.rmtree(workdir, ignore_errors=True)
