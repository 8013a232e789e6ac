"""The NAT shapes users meet, built in network namespaces: two meshes on one discovery service.

Shared by tests/integration/test_nat_shapes.py and benchmarks/convergence.py (--shapes).
Everything runs for real: wireguard-go, the watcher with the role's default timers
(keepalive 25 s, 6 s per endpoint candidate), nftables NAT on Linux routers, the
discovery service. Addresses: 198.51.100.0/24 is the public switch (and fd00:5::/64 its
IPv6), the sites' LANs are /28s of 192.0.2.0/24, the carrier network of the CGNAT is
192.0.2.128/28.

Mesh A, "both ends behind symmetric NAT": xa and ya each sit behind a router that maps
every destination to a new random port (masquerade fully-random, as carrier-grade and
many cloud NATs do), so no direct path between them can exist. The only relay
candidate, ra, is itself behind a home router: port-preserving, and with the WireGuard
ports mapped to ra (endpoint-independent filtering, what a full-cone router or a UPnP
mapping gives).

Mesh B: pb is public and dual-stack (the relay); hb sits behind a home router behind a
carrier-grade NAT (two levels of port-preserving masquerade); sb and tb sit behind two
routers that keep the port but let in only what answers a flow (address- and
port-dependent filtering: Linux masquerade with conntrack), so they meet by punching
holes; vb is IPv6-only, and reaches the IPv4-only machines through the mesh only.

Every process runs inside a namespace made here; World.close() (called by the context
manager whatever happens) kills them and destroys every namespace.
"""
import concurrent.futures
import contextlib
import json
import os
import subprocess
import time
import uuid

from netns import Namespace, Playbook, identity, veth, wait_for
from watchlab import PROBE, Watchers, start_service

KEEPALIVE = 25  # the role's default (wglan_persistent_keepalive)

# name: (mesh, router it sits behind or None for the public switch, IPv4 address or None, IPv6 or None)
NODES = {
    'xa': ('A', 'rxa', '192.0.2.2/28', None),
    'ya': ('A', 'rya', '192.0.2.18/28', None),
    'ra': ('A', 'rra', '192.0.2.34/28', None),
    'pb': ('B', None, '198.51.100.11/24', 'fd00:5::11/64'),
    'hb': ('B', 'rhm', '192.0.2.146/28', None),
    'sb': ('B', 'rsb', '192.0.2.50/28', None),
    'tb': ('B', 'rtb', '192.0.2.66/28', None),
    'vb': ('B', None, None, 'fd00:5::21/64'),
}
RELAYS = ('ra', 'pb')
# router: (upstream router or None for the switch, WAN address/prefix, its gateway or None, LAN gateway, NAT)
ROUTERS = {
    'rxa': (None, '198.51.100.61/24', None, '192.0.2.1/28', 'symmetric'),
    'rya': (None, '198.51.100.62/24', None, '192.0.2.17/28', 'symmetric'),
    'rra': (None, '198.51.100.63/24', None, '192.0.2.33/28', 'full-cone'),
    'rsb': (None, '198.51.100.64/24', None, '192.0.2.49/28', 'port-restricted'),
    'rtb': (None, '198.51.100.65/24', None, '192.0.2.65/28', 'port-restricted'),
    'rcg': (None, '198.51.100.70/24', None, '192.0.2.129/28', 'port-restricted'),      # the carrier's NAT
    'rhm': ('rcg', '192.0.2.130/28', '192.0.2.129', '192.0.2.145/28', 'port-restricted'),  # the home router
}
# The shapes, as the table of benchmarks/convergence.py names them: (title, mesh, nodes whose pairs it is
# about, the paths expected: {(a, b): 'direct' | 'via <relay>'} for the pairs that matter)
SHAPES = [
    ('both ends behind symmetric NAT, the relay behind a port-preserving NAT', 'A', ('xa', 'ya', 'ra'),
     {('xa', 'ya'): 'via ra', ('xa', 'ra'): 'direct', ('ya', 'ra'): 'direct'}),
    ('carrier-grade NAT in front of a home NAT (two levels)', 'B', ('hb', 'pb', 'sb', 'tb'),
     {('hb', 'pb'): 'direct', ('hb', 'sb'): 'direct', ('hb', 'tb'): 'direct'}),
    ('port kept, filtered by address and port, on both sides', 'B', ('sb', 'tb'),
     {('sb', 'tb'): 'direct', ('sb', 'pb'): 'direct', ('tb', 'pb'): 'direct'}),
    ('IPv6-only site to IPv4-only machines', 'B', ('vb', 'pb', 'hb', 'sb', 'tb'),
     {('vb', 'pb'): 'direct', ('vb', 'hb'): 'via pb', ('vb', 'sb'): 'via pb', ('vb', 'tb'): 'via pb'}),
]


def nat_rules(mode, lan_host=None):
    """A router's nftables: masquerade on wan0 (fully random ports for 'symmetric'), the LAN let out,
    only answers let in; 'full-cone' also maps the WireGuard ports (51820-51851) to lan_host."""
    inbound = ''
    if mode == 'full-cone':
        inbound = '    iifname "wan0" udp dport 51820-51851 dnat ip to %s\n' % lan_host
    return '''
table inet nat
delete table inet nat
table inet nat {
  chain prerouting { type nat hook prerouting priority dstnat; policy accept;
%s  }
  chain postrouting { type nat hook postrouting priority srcnat; policy accept;
    oifname "wan0" masquerade%s
  }
  chain forward { type filter hook forward priority filter; policy drop;
    ct state established,related accept
    ct status dnat accept
    iifname "lan" oifname "wan0" accept
  }
  chain input { type filter hook input priority filter; policy accept;
    ct state established,related accept
    iifname "wan0" drop
  }
}
''' % (inbound, ' fully-random' if mode == 'symmetric' else '')


class World:
    """The namespaces, the discovery service and the watchers of both meshes."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.tag = uuid.uuid4().hex[:6]
        self.tokens = dict(A='shapes-A-%s' % uuid.uuid4().hex, B='shapes-B-%s' % uuid.uuid4().hex)
        self.spaces, self.server, self.watchers = [], None, Watchers()
        self.nodes, self.routers, self.state = {}, {}, {}
        self.started = None

    def _ns(self, name):
        ns = Namespace('wglan-%s-%s' % (self.tag, name))
        self.spaces.append(ns)
        return ns

    def build(self):
        sw = self.sw = self._ns('sw')
        sw.sh('ip link add br0 type bridge && ip link set br0 up')
        srv = self.srv = self._ns('srv')
        self._plug(sw, 'br0', srv, 'eth0')
        srv.sh('ip addr add 198.51.100.100/24 dev eth0 && ip -6 addr add fd00:5::100/64 dev eth0 nodad')
        self.server = start_service(srv, '', self.workdir)  # (no address: both families)
        for name in ('rcg',) + tuple(r for r in ROUTERS if r != 'rcg'):
            upstream, wan, gateway, lan, mode = ROUTERS[name]
            router = self.routers[name] = self._ns(name)
            if upstream is None:
                self._plug(sw, 'br0', router, 'wan0')
            else:
                self._plug(self.routers[upstream], 'lan', router, 'wan0')
            router.sh('ip addr add %s dev wan0 && ip link add lan type bridge && ip link set lan up && '
                      'ip addr add %s dev lan && sysctl -qw net.ipv4.ip_forward=1' % (wan, lan))
            if gateway:
                router.sh('ip route add default via %s' % gateway)
            inside = [n for n, spec in NODES.items() if spec[1] == name]
            host = NODES[inside[0]][2].split('/')[0] if inside else None
            self.set_nat(name, mode, host)
        for name, (mesh, router, ip4, ip6) in NODES.items():
            ns = self.nodes[name] = self._ns(name)
            if router is None:
                self._plug(sw, 'br0', ns, 'eth0')
            else:
                self._plug(self.routers[router], 'lan', ns, 'eth0')
            if ip4:
                ns.sh('ip addr add %s dev eth0' % ip4)
                gateway = ROUTERS[router][3].split('/')[0] if router else None
                # public machines get a default route too, as real ones have (it leads nowhere here)
                ns.sh('ip route add default via %s' % gateway if gateway else 'ip route add default dev eth0')
            if ip6:
                ns.sh('ip -6 addr add %s dev eth0 nodad && ip -6 route add default dev eth0' % ip6)
            elif ip4:
                ns.sh('ip -6 route add default dev eth0')  # (the first route lookup needs one)
            ns.ifname = 'wg%s%s' % (self.tag, name)
            ns.interfaces.append(ns.ifname)
            ns.workdir = os.path.join(self.workdir, name)
            os.makedirs(ns.workdir)
            ns.key_path = os.path.join(ns.workdir, 'private.key')
        assert wait_for(lambda: self.nodes['pb'].sh(PROBE, check=False).returncode == 0, timeout=15)

    def _plug(self, upstream, bridge, ns, name):
        port = 'p%s' % uuid.uuid4().hex[:8]
        veth(upstream, port, ns, name)
        upstream.sh('ip link set %s master %s' % (port, bridge))

    def set_nat(self, router, mode, lan_host=None, flush=True):
        """(Re)write a router's NAT; flush: forget its mappings, so running flows take the new one."""
        self.routers[router].cmd(['nft', '-f', '-'], input=nat_rules(mode, lan_host))
        if flush:
            self.routers[router].sh('conntrack -F 2>/dev/null || true', check=False)

    def url(self, name):
        return 'http://[fd00:5::100]:8443' if NODES[name][2] is None else 'http://198.51.100.100:8443'

    def configure(self):
        """Keys, addresses and the interface on every node (wglan_peers, as the role runs it), in parallel."""
        for name in NODES:
            ns = self.nodes[name]
            with open(os.path.join(ns.workdir, 'watcher.json'), 'w') as handle:
                json.dump(dict(table='wglan%s' % self.tag, relay=name in RELAYS,
                               status_path=os.path.join(ns.workdir, 'status.json')), handle)
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            for name, result in zip(NODES, pool.map(self._configure_one, NODES)):
                assert not result.get('failed'), (name, result)

    def _configure_one(self, name):
        ns = self.nodes[name]
        mesh, _router, ip4, ip6 = NODES[name]
        public_key, addr = identity(ns)
        node_ips = [ip for ip in (ip4, ip6) if ip]  # as the interface holds them, the way the role publishes
        record = dict(version=1, name=name, public_key=public_key, address=addr['address'], node_ips=node_ips,
                      port=51820, extra_endpoints=[], pod_cidrs=[], observed={}, relay=name in RELAYS)
        self.state[name] = dict(public_key=public_key, address=addr['address'], cidr=addr['cidr'],
                                ip4=ip4.split('/')[0] if ip4 else None)
        return Playbook(ns, ns.workdir).one('wglan.mesh.wglan_peers', dict(
            interface=ns.ifname, backend='userspace', private_key_path=ns.key_path,
            addresses=[addr['cidr']], purge=True, self_name=name, discovery_url=self.url(name),
            cluster_token=self.tokens[mesh], publish=record, state_path=os.path.join(ns.workdir, 'mesh.json'),
            persistent_keepalive=KEEPALIVE, watcher=True, listen_port_auto=True,
            settings_path=os.path.join(ns.workdir, 'settings.json'), save_settings=True,
            relays_path=os.path.join(ns.workdir, 'paths.json')))

    def start(self):
        for name in NODES:
            self.watchers.start(self.nodes[name])
        self.started = time.monotonic()

    def close(self):
        self.watchers.stop_all()
        if self.server is not None and self.server.poll() is None:
            self.server.kill()
        for ns in reversed(self.spaces):
            ns.destroy()

    def background(self, name, command):
        """A process in name's namespace (the caller kills it; close() would too, with the namespace)."""
        return subprocess.Popen(['ip', 'netns', 'exec', self.nodes[name].name, 'sh', '-c', 'exec ' + command],
                                stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    # what the tests and the benchmark look at

    def members(self, mesh):
        return [n for n, spec in NODES.items() if spec[0] == mesh]

    def targets(self, source, destination):
        """The addresses source pings destination at: its mesh address, and its node IPv4 address when
        both have IPv4 (an IPv6-only machine has no IPv4 address to ping from)."""
        out = [self.state[destination]['address']]
        if self.state[source]['ip4'] and self.state[destination]['ip4']:
            out.append(self.state[destination]['ip4'])
        return out

    def unreached(self, pairs):
        """The (source, destination, address) of pairs that do not answer one ping through the mesh.
        Each source pings all its targets at once."""
        by_source = {}
        for source, destination in pairs:
            by_source.setdefault(source, []).extend((destination, a) for a in self.targets(source, destination))
        procs = {}
        for source, wanted in by_source.items():
            script = ' '.join('(ping -c 1 -W 2 %s >/dev/null 2>&1 || echo %s %s) &' % (a, d, a) for d, a in wanted)
            procs[source] = subprocess.Popen(['ip', 'netns', 'exec', self.nodes[source].name, 'sh', '-c',
                                              script + ' wait'], stdout=subprocess.PIPE, universal_newlines=True)
        failed = []
        for source, proc in procs.items():
            out, _err = proc.communicate(timeout=30)
            failed.extend((source,) + tuple(line.split()) for line in out.splitlines() if line.strip())
        return failed

    def status(self, name):
        """name's watcher status rows by peer name ({} before the first status)."""
        try:
            with open(os.path.join(self.nodes[name].workdir, 'status.json')) as handle:
                return dict((row['name'], row) for row in json.load(handle)['peers'])
        except (OSError, ValueError):
            return {}

    def path(self, a, b):
        return (self.status(a).get(b) or {}).get('path')

    def log(self, name):
        with open(os.path.join(self.nodes[name].workdir, 'watcher.log')) as handle:
            return handle.read()

    def transfer(self, name):
        """{peer public key: rx + tx bytes} on name's interface."""
        out = {}
        for line in self.nodes[name].sh('wg show %s transfer' % self.nodes[name].ifname).stdout.splitlines():
            fields = line.split('\t')
            out[fields[0]] = int(fields[1]) + int(fields[2])
        return out

    def name_of(self, key):
        return next((n for n, s in self.state.items() if s['public_key'] == key), key[:8])


def all_pairs(names):
    return [(a, b) for a in names for b in names if a != b]


@contextlib.contextmanager
def world(workdir):
    """A built, configured world whose watchers have just started."""
    built = World(workdir)
    try:
        built.build()
        built.configure()
        built.start()
        yield built
    finally:
        built.close()


def converge(w, timeout):
    """{(a, b): seconds from the watchers' start until the pair first answered every ping}, polling
    every pair of both meshes until all answered or timeout; pairs that never did are left out."""
    pairs = all_pairs(w.members('A')) + all_pairs(w.members('B'))
    first = {}
    deadline = w.started + timeout
    while len(first) < len(pairs) and time.monotonic() < deadline:
        pending = [p for p in pairs if p not in first]
        failed = set((s, d) for s, d, _a in w.unreached(pending))
        now = time.monotonic() - w.started
        for pair in pending:
            if pair not in failed:
                first[pair] = now
        time.sleep(1)
    return first
