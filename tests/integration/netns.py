"""Network namespaces for tests: made here, torn down here, nothing outside touched.

Rules this follows (DEVELOPERS.md): only documentation and ULA addresses, only
inside namespaces this code created; every wait is bounded; teardown kills only
processes inside those namespaces and removes only what was created.
"""
import json
import os
import shutil
import subprocess
import tempfile
import time
import uuid

import yaml

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
COLLECTIONS = os.path.join(ROOT, 'build', 'collections')
# The discovery service: a program of its own, shipped by the discovery role.
DISCOVERY_SERVER = os.path.join(ROOT, 'roles', 'discovery', 'files', 'wglan_discovery.py')
SOCKET_DIR = '/var/run/wireguard'
# Everything Ansible printed in this test session, so tests can prove no secret leaked.
ALL_OUTPUT = []


def run(cmd, check=True, timeout=60, **kw):
    proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, universal_newlines=True,
                          timeout=timeout, check=False, **kw)
    if check and proc.returncode != 0:
        raise AssertionError('%s failed (%d): %s %s' % (' '.join(cmd), proc.returncode, proc.stdout, proc.stderr))
    return proc


class Namespace:
    def __init__(self, name):
        self.name = name
        run(['ip', 'netns', 'add', name])
        self.sh('ip link set lo up')
        self.interfaces = []

    @classmethod
    def existing(cls, name):
        """A handle on a namespace made elsewhere (its maker destroys it)."""
        ns = cls.__new__(cls)
        ns.name, ns.interfaces = name, []
        return ns

    def cmd(self, args, check=True, timeout=60, **kw):
        return run(['ip', 'netns', 'exec', self.name] + list(args), check=check, timeout=timeout, **kw)

    def sh(self, script, check=True, timeout=60):
        return self.cmd(['sh', '-c', script], check=check, timeout=timeout)

    def json(self, script):
        return json.loads(self.sh(script).stdout or 'null')

    def process_names(self):
        names = []
        for pid in run(['ip', 'netns', 'pids', self.name], check=False).stdout.split():
            try:
                with open('/proc/%s/comm' % pid) as handle:
                    names.append(handle.read().strip())
            except OSError:
                pass
        return names

    def destroy(self):
        pids = run(['ip', 'netns', 'pids', self.name], check=False).stdout.split()
        for pid in pids:
            try:
                os.kill(int(pid), 9)
            except (OSError, ValueError):
                pass
        for ifname in self.interfaces:
            path = os.path.join(SOCKET_DIR, ifname + '.sock')
            if os.path.exists(path):
                os.unlink(path)
        run(['ip', 'netns', 'del', self.name], check=False)


def veth(ns_a, name_a, ns_b, name_b):
    tmp = 'wt%s' % uuid.uuid4().hex[:8]
    ns_a.sh('ip link add %s type veth peer name %s' % (name_a, tmp))
    ns_a.sh('ip link set %s netns %s' % (tmp, ns_b.name))
    ns_b.sh('ip link set %s name %s && ip link set %s up' % (tmp, name_b, name_b))
    ns_a.sh('ip link set %s up' % name_a)


def switched(tag, members, wireguard, workdir, spaces):
    """Namespaces on one bridge (in a switch namespace), 198.51.100.<index>/24 on eth0.

    members: (index, name) pairs; those named in wireguard get an interface name,
    a work directory and a key path. Every namespace made is appended to spaces
    (the caller destroys them, also when this fails half way).
    """
    sw = Namespace('wglan-%s-sw' % tag)
    spaces.append(sw)
    sw.sh('ip link add br0 type bridge && ip link set br0 up')
    nodes = {}
    for index, name in members:
        ns = Namespace('wglan-%s-%s' % (tag, name))
        spaces.append(ns)
        veth(sw, 'p%s' % name, ns, 'eth0')
        sw.sh('ip link set p%s master br0' % name)
        ns.sh('ip addr add 198.51.100.%d/24 dev eth0' % index)
        nodes[name] = ns
        if name in wireguard:
            ns.ifname = 'wg%s%s' % (tag, name)
            ns.interfaces.append(ns.ifname)
            ns.workdir = os.path.join(workdir, name)
            os.makedirs(ns.workdir)
            ns.key_path = os.path.join(ns.workdir, 'private.key')
    return nodes


NAT_RULES = '''
table inet nat
delete table inet nat
table inet nat {
  chain postrouting { type nat hook postrouting priority srcnat; policy accept;
    oifname "wan0" masquerade
  }
  chain forward { type filter hook forward priority filter; policy drop;
    ct state established,related accept
    iifname "lan" oifname "wan0" accept
  }
  chain input { type filter hook input priority filter; policy accept;
    ct state established,related accept
    iifname "wan0" drop
  }
}
'''


def nat_router(tag, sw, name, wan_ip, lan_cidr, spaces):
    """A home router: wan0 on the switch at wan_ip/24, a LAN bridge holding lan_cidr (the gateway),
    port-preserving masquerade, nothing unsolicited let in. Appended to spaces for teardown."""
    router = Namespace('wglan-%s-%s' % (tag, name))
    spaces.append(router)
    veth(sw, 'p%s' % name, router, 'wan0')
    sw.sh('ip link set p%s master br0' % name)
    router.sh('ip addr add %s/24 dev wan0 && ip link add lan type bridge && ip link set lan up && '
              'ip addr add %s dev lan && sysctl -qw net.ipv4.ip_forward=1' % (wan_ip, lan_cidr))
    router.cmd(['nft', '-f', '-'], input=NAT_RULES)
    return router


def move(ns, router, address, gateway):
    """Unplug ns's eth0 and plug it into router's LAN with address (CIDR) and a default route via gateway."""
    ns.sh('ip link del eth0')
    port = 'l%s' % uuid.uuid4().hex[:8]
    veth(router, port, ns, 'eth0')
    router.sh('ip link set %s master lan' % port)
    ns.sh('ip addr add %s dev eth0 && ip route add default via %s' % (address, gateway))


class Playbook:
    """Runs modules through ansible-playbook inside a namespace; returns their results."""

    def __init__(self, namespace, workdir):
        self.ns = namespace
        self.workdir = workdir

    def run(self, steps, timeout=300):
        """steps: list of (module, args, check_mode). Returns the list of registered results."""
        fd, out_path = tempfile.mkstemp(dir=self.workdir, suffix='.json')
        os.close(fd)
        tasks = []
        for index, (module, args, check) in enumerate(steps):
            tasks.append({'name': 'step %d %s' % (index, module), module: args, 'register': 'r%d' % index,
                          'check_mode': bool(check), 'diff': True, 'ignore_errors': True})
        results = '[' + ', '.join('r%d' % i for i in range(len(steps))) + ']'
        tasks.append({'name': 'save results', 'ansible.builtin.copy': {
            'content': '{{ %s | to_json }}' % results, 'dest': out_path}, 'check_mode': False, 'diff': False})
        play = [{'hosts': 'localhost', 'gather_facts': False, 'tasks': tasks}]
        self.last_play = play
        fd, play_path = tempfile.mkstemp(dir=self.workdir, suffix='.yml')
        with os.fdopen(fd, 'w') as handle:
            yaml.safe_dump(play, handle)
        env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=COLLECTIONS, ANSIBLE_NOCOLOR='1',
                   ANSIBLE_PYTHON_INTERPRETER=os.environ.get('WGLAN_TEST_PYTHON', '/usr/bin/python3'),
                   ANSIBLE_LOCAL_TEMP=self.workdir, ANSIBLE_REMOTE_TEMP=self.workdir)
        proc = self.ns.cmd(['ansible-playbook', '-i', 'localhost,', '-c', 'local', play_path],
                           check=False, timeout=timeout, env=env)
        self.last_output = proc.stdout + proc.stderr
        ALL_OUTPUT.append(self.last_output)
        if proc.returncode != 0:
            raise AssertionError('ansible-playbook failed:\n' + self.last_output[-4000:])
        with open(out_path) as handle:
            return json.load(handle)

    def one(self, module, args, check=False):
        return self.run([(module, args, check)])[0]


def identity(ns):
    """Key and address of a node namespace (ns.key_path, ns.workdir), made by the modules."""
    key, addr = Playbook(ns, ns.workdir).run([
        ('wglan.mesh.wglan_keys', dict(path=ns.key_path), False),
        ('wglan.mesh.wglan_address', dict(source_interface='eth0'), False)])
    return key['public_key'], addr


def record_of(ns, name):
    """The node record a node namespace would publish, with its key and address."""
    public_key, addr = identity(ns)
    ip = ns.sh('ip -4 -o addr show dev eth0').stdout.split()[3]
    return dict(cidr=addr['cidr'], address=addr['address'], public_key=public_key,
                record=dict(version=1, name=name, public_key=public_key, address=addr['address'],
                            node_ips=[ip], port=51820, extra_endpoints=[], pod_cidrs=[], observed={}))


def wait_for(predicate, timeout=10.0, interval=0.1):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval)
    return predicate()


class MemoryLimit:
    """A memory cgroup of the test's own with a hard limit, for a service run under it as its unit's
    MemoryMax would (the kernel kills the process past it). cgroup v1's memory controller, where this
    machine has it, or a transient systemd scope (cgroup v2). `wrap` is the prefix of the command to
    run in it; `oom_kills()` how often the kernel killed in it; `close()` ends its processes and removes
    it."""

    V1 = '/sys/fs/cgroup/memory'

    def __init__(self, tag, limit):
        self.limit = limit
        self.path = None
        self.scope = None
        own = None
        with open('/proc/self/cgroup') as handle:
            for line in handle.read().splitlines():
                _n, controllers, path = line.split(':', 2)
                if 'memory' in controllers.split(','):
                    own = path
        if own is not None and os.path.isdir(self.V1):
            self.path = os.path.join(self.V1, own.lstrip('/'), 'wglan-test-%s' % tag)
            os.mkdir(self.path)
            self._write('memory.limit_in_bytes', limit)
            if os.path.exists(os.path.join(self.path, 'memory.memsw.limit_in_bytes')):
                self._write('memory.memsw.limit_in_bytes', limit)  # no swapping past it either
            self.wrap = ['sh', '-c', 'echo $$ > %s/cgroup.procs && exec "$@"' % self.path, 'sh']
        elif shutil.which('systemd-run') and run(['systemctl', 'is-system-running'], check=False).returncode in (0, 1):
            self.scope = 'wglan-test-%s.scope' % tag
            self.wrap = ['systemd-run', '--scope', '--quiet', '--unit', self.scope, '-p', 'MemoryMax=%d' % limit,
                         '-p', 'MemorySwapMax=0']
        else:
            raise RuntimeError('no memory cgroup to run a service under a memory limit on this machine')

    def _write(self, name, value):
        with open(os.path.join(self.path, name), 'w') as handle:
            handle.write('%s\n' % value)

    def oom_kills(self):
        if self.path is not None:
            with open(os.path.join(self.path, 'memory.oom_control')) as handle:
                for line in handle:
                    if line.startswith('oom_kill '):
                        return int(line.split()[1])
            return 0
        shown = run(['systemctl', 'show', '-p', 'ControlGroup', '--value', self.scope], check=False).stdout.strip()
        try:
            with open('/sys/fs/cgroup%s/memory.events' % shown) as handle:
                return dict(line.split() for line in handle).get('oom_kill', 0)
        except OSError:
            return 0

    def close(self):
        if self.path is not None and os.path.isdir(self.path):
            for _attempt in range(50):
                with open(os.path.join(self.path, 'cgroup.procs')) as handle:
                    pids = [int(p) for p in handle.read().split()]
                if not pids:
                    break
                for pid in pids:
                    try:
                        os.kill(pid, 9)
                    except OSError:
                        pass
                time.sleep(0.1)
            os.rmdir(self.path)
        elif self.scope is not None:
            run(['systemctl', 'stop', self.scope], check=False)
