"""The wglan lab: real Debian machines (systemd-nspawn) behind real NAT routers.

    python3 tests/lab/lab.py up [--public 1] [--sites 2] [--per-site 2] [--symmetric SITE ...]
    python3 tests/lab/lab.py inventory | status | down [--name NAME]

Topology (documentation addresses only, all inside namespaces this creates):
- "pub" switch 203.0.113.0/24: public machines (hub1, ...), the controller
  (203.0.113.2), each NAT router's WAN side; 203.0.113.1 is the switch's own
  address, the default gateway placeholder of the public side.
- one switch per site, 192.0.2.<64*i>/26: the router's LAN side (.1) and the
  site's machines. Routers masquerade (fully-random for a --symmetric site)
  and drop unsolicited packets arriving on WAN, as real routers do; SSH to a
  site machine is a port forward on its router (22xx), like an operator's.
Every machine boots the same read-only Debian tree under its own overlay (its
disk: kept across a reboot, gone with the lab).
A switch is a bridge inside its own namespace; nothing touches the root
namespace. `down` kills only processes inside the lab's namespaces.
"""
import argparse
import atexit
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import uuid

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
LAB_DIR = os.environ.get('WGLAN_LAB_DIR', '/var/lib/wglan-lab')
RELEASES = ('bookworm', 'trixie')
BASE_TREE = os.path.join(LAB_DIR, 'bookworm')  # kernel (qemu) machines boot this one
# Ansible logs in as this user and becomes root with sudo, as on cloud images; the
# tests' own look-ups (Lab.ssh) go in as root.
ANSIBLE_USER = 'admin'
STATE_ROOT = '/run/wglan-lab'
PUBLIC_NET = '203.0.113'
CONTROLLER_IP = PUBLIC_NET + '.2'
BOOT_TIMEOUT = 240  # (alone a machine is up in 10-20 s; beside another lab under load one once took over 90 s)
# Debian's kernel under TCG: about 40 s alone, 100 s beside a busy lab, and once over 240 s in CI
# (the other worker's lab took both cores). A kernel machine is waited for as long as its console
# keeps printing (it is booting, however slowly), up to VM_BOOT_CAP; VM_BOOT_TIMEOUT is the wait
# once its console has been silent that long while SSH does not answer.
VM_BOOT_TIMEOUT = 240
VM_BOOT_CAP = 600


def sh(cmd, check=True, timeout=60, **kw):
    proc = subprocess.run(cmd, shell=isinstance(cmd, str), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          universal_newlines=True, timeout=timeout, check=False, **kw)
    if check and proc.returncode != 0:
        raise RuntimeError('%s: %s%s' % (cmd, proc.stdout, proc.stderr))
    return proc


def in_ns(ns, script, check=True, timeout=60):
    return sh(['ip', 'netns', 'exec', ns, 'sh', '-c', script], check=check, timeout=timeout)


def tree(release):
    return os.path.join(LAB_DIR, release)


def plan(public=1, sites=2, per_site=2, symmetric=(), kernel=0, releases=None, firewalls=None, resolved=()):
    """The lab as data: machines, routers, addresses. per_site: a number, or one per site.

    kernel: machines on the public side that boot Debian's own kernel under
    qemu (kernel WireGuard) instead of running in a container.
    releases: {machine: Debian release} (default bookworm); firewalls:
    {machine: 'nftables' | 'ufw' | 'firewalld'}, the host firewall its admin runs;
    resolved: the machines whose resolver is systemd-resolved (the others resolve from files only).
    """
    sizes = list(per_site) if isinstance(per_site, (list, tuple)) else [per_site] * sites
    machines = {}
    for i in range(kernel):
        ip = '%s.%d' % (PUBLIC_NET, 20 + i)
        machines['kvm%d' % (i + 1)] = dict(switch='pub', ip=ip, prefix=24, gateway=PUBLIC_NET + '.1', ssh_host=ip,
                                           ssh_port=22, site=None, kind='qemu')
    for i in range(public):
        machines['hub%d' % (i + 1)] = dict(switch='pub', ip='%s.%d' % (PUBLIC_NET, 10 + i), prefix=24,
                                           gateway=PUBLIC_NET + '.1', ssh_host='%s.%d' % (PUBLIC_NET, 10 + i),
                                           ssh_port=22, site=None)
    routers = {}
    for s in range(sites):
        site = chr(ord('a') + s)
        base = 64 * s
        routers['r' + site] = dict(site=site, wan='%s.%d' % (PUBLIC_NET, 101 + s), lan='192.0.2.%d' % (base + 1),
                                   symmetric=site in symmetric, forwards=[])
        for k in range(sizes[s]):
            name = '%s%d' % (site, k + 1)
            ip = '192.0.2.%d' % (base + 10 + k)
            port = 2200 + 10 * s + k
            routers['r' + site]['forwards'].append((port, ip))
            machines[name] = dict(switch='site-' + site, ip=ip, prefix=26, gateway='192.0.2.%d' % (base + 1),
                                  ssh_host=routers['r' + site]['wan'], ssh_port=port, site=site)
    for name, release in (releases or {}).items():
        if release not in RELEASES:
            raise ValueError('no lab tree for release %s' % release)
        machines[name]['release'] = release
    for name, firewall in (firewalls or {}).items():
        machines[name]['firewall'] = firewall
    for name in resolved:
        machines[name]['resolved'] = True
    return dict(machines=machines, routers=routers)


def raise_kernel_limit(path, value, otherwise):
    """Raise a limit of the kernel's to value, never lower it; otherwise: what a lab may meet if it cannot."""
    try:
        with open(path) as handle:
            current = int(handle.read())
        if current < value:
            with open(path, 'w') as handle:
                handle.write(str(value))
    except (OSError, ValueError) as exc:
        print('lab: cannot raise %s (%s): %s' % (path, exc, otherwise))


def raise_inotify_instances(machines, per_machine=48):
    """The machines' root is the host's root (no user namespace): they share its limit of inotify
    instances (128 on Debian), and each booted machine holds a few dozen (systemd, journald, logind,
    wireguard-go's socket watch). Past about eight machines, units fail at boot ("too many open
    files"; logins refused as "System is booting up"). Raise the limit, never lower it. (A limit of
    the kernel's, not a network setting: nothing of the machine's network changes.)"""
    raise_kernel_limit('/proc/sys/fs/inotify/max_user_instances', machines * per_machine + 128,
                       'large labs may fail to boot')


def raise_neighbour_limits(machines):
    """Every namespace's neighbour (ARP and NDP) entries count against one table of the kernel's, whose
    hard limit (gc_thresh3) is 1024 on Debian: a machine holds one for its gateway and one for each
    machine of its segment it talks to, and past about 30 machines on one segment new flows fail with
    "No buffer space available". Raise the limits (never lower them); a limit of the kernel's table,
    not a network setting: no address, route or rule of the host changes."""
    wanted = dict(gc_thresh1=machines * 64, gc_thresh2=machines * 128, gc_thresh3=machines * 256)
    for family in ('ipv4', 'ipv6'):
        for knob, value in wanted.items():
            raise_kernel_limit('/proc/sys/net/%s/neigh/default/%s' % (family, knob), value,
                               'large labs may lose new flows')


class Lab:
    def __init__(self, name):
        self.name = name
        self.dir = os.path.join(STATE_ROOT, name)
        self.state_path = os.path.join(self.dir, 'state.json')
        self.state = None
        if os.path.exists(self.state_path):
            with open(self.state_path) as handle:
                self.state = json.load(handle)

    # -- naming ----------------------------------------------------------
    def ns(self, node):
        return '%s-%s' % (self.name, node)

    @property
    def controller(self):
        return self.ns('ctl')

    @property
    def key(self):
        return os.path.join(self.dir, 'id_ed25519')

    @property
    def inventory(self):
        return os.path.join(self.dir, 'inventory.ini')

    def _save(self):
        with open(self.state_path, 'w') as handle:
            json.dump(self.state, handle, indent=2)

    # -- building ----------------------------------------------------------
    def _add_ns(self, node):
        ns = self.ns(node)
        sh(['ip', 'netns', 'add', ns])
        self.state['namespaces'].append(ns)
        self._save()
        in_ns(ns, 'ip link set lo up')
        return ns

    def _wire(self, switch, node_ns, ifname):
        """A veth from a switch's bridge to a node namespace, created inside the namespaces."""
        sw = self.ns('sw-' + switch)
        port = 'p%s' % uuid.uuid4().hex[:8]
        in_ns(sw, 'ip link add %s type veth peer name %s netns %s && ip link set %s master br0 up'
              % (port, ifname, node_ns, port))
        in_ns(node_ns, 'ip link set %s up' % ifname)

    def up(self, layout):
        if self.state is not None:
            raise SystemExit('lab %s is already up (state in %s)' % (self.name, self.dir))
        wanted = set(m.get('release', 'bookworm') for m in layout['machines'].values())
        if not all(os.path.exists(os.path.join(tree(r), '.wglan-lab-stamp')) for r in wanted):
            sh([os.path.join(HERE, 'build-base.sh')] + sorted(wanted), timeout=3600)
        os.makedirs(self.dir, exist_ok=True)
        self.state = dict(name=self.name, namespaces=[], pids={}, layout=layout, timings={})
        self._save()
        started = time.monotonic()
        sh(['ssh-keygen', '-q', '-t', 'ed25519', '-N', '', '-C', 'wglan-lab', '-f', self.key])
        shutil.copy(self.key + '.pub', os.path.join(self.dir, 'authorized_keys'))
        switches = ['pub'] + ['site-' + r['site'] for r in layout['routers'].values()]
        for switch in switches:
            sw = self._add_ns('sw-' + switch)
            in_ns(sw, 'ip link add br0 type bridge && ip link set br0 up')
        in_ns(self.ns('sw-pub'), 'ip addr add %s.1/24 dev br0' % PUBLIC_NET)
        ctl = self._add_ns('ctl')
        self._wire('pub', ctl, 'eth0')
        in_ns(ctl, 'ip addr add %s/24 dev eth0' % CONTROLLER_IP)
        for rname, router in sorted(layout['routers'].items()):
            self._router(rname, router)
        for mname, machine in sorted(layout['machines'].items()):
            ns = self._add_ns(mname)
            self._wire(machine['switch'], ns, 'eth0')
            if machine.get('kind') == 'qemu':
                # the VM's NIC is a tap bridged onto the switch; the VM sets its own address
                in_ns(ns, 'ip link add br0 type bridge && ip tuntap add tap0 mode tap && '
                          'ip link set tap0 master br0 && ip link set eth0 master br0 && '
                          'ip link set tap0 up && ip link set br0 up')
                continue
            in_ns(ns, 'ip addr add %s/%d dev eth0 && ip route add default via %s'
                  % (machine['ip'], machine['prefix'], machine['gateway']))
        self.state['timings']['network'] = round(time.monotonic() - started, 2)
        raise_inotify_instances(len(layout['machines']))
        if len(layout['machines']) > 20:
            raise_neighbour_limits(len(layout['machines']))
        boot = time.monotonic()
        for mname in sorted(layout['machines']):
            self._boot(mname)
        self._wait_ssh(sorted(layout['machines']))
        self.state['timings']['boot'] = round(time.monotonic() - boot, 2)
        for mname, machine in sorted(layout['machines'].items()):
            if machine.get('firewall'):
                self.ssh(mname, FIREWALLS[machine['firewall']], timeout=120)
            if machine.get('resolved'):
                self.ssh(mname, RESOLVED, timeout=120)
        self._write_inventory()
        self._save()
        return self

    def _router(self, rname, router):
        ns = self._add_ns(rname)
        self._wire('pub', ns, 'wan0')
        self._wire('site-' + router['site'], ns, 'lan0')
        in_ns(ns, 'ip addr add %s/24 dev wan0 && ip addr add %s/26 dev lan0 && ip route add default via %s.1 && '
                  'sysctl -qw net.ipv4.ip_forward=1' % (router['wan'], router['lan'], PUBLIC_NET))
        self.set_nat(rname, router['symmetric'])

    def set_nat(self, rname, symmetric, flush=True):
        """(Re)write a router's NAT: port-preserving masquerade, or fully random (symmetric).
        flush: forget the router's mappings, so the new behaviour applies to running flows too."""
        router = self.state['layout']['routers'][rname]
        router['symmetric'] = symmetric
        forwards = '\n'.join('    iifname "wan0" tcp dport %d dnat ip to %s:22' % (port, ip)
                             for port, ip in router['forwards'])
        ruleset = '''
table inet lab
delete table inet lab
table inet lab {
  chain prerouting { type nat hook prerouting priority dstnat; policy accept;
%s
  }
  chain postrouting { type nat hook postrouting priority srcnat; policy accept;
    oifname "wan0" masquerade%s
  }
  chain forward { type filter hook forward priority filter; policy drop;
    ct state established,related accept
    iifname "lan0" oifname "wan0" accept
    ct status dnat accept
  }
  chain input { type filter hook input priority filter; policy accept;
    ct state established,related accept
    iifname "wan0" drop
  }
}
''' % (forwards, ' fully-random' if symmetric else '')
        proc = subprocess.run(['ip', 'netns', 'exec', self.ns(rname), 'nft', '-f', '-'], input=ruleset,
                              universal_newlines=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE, check=False)
        if proc.returncode != 0:
            raise RuntimeError('router %s: %s' % (rname, proc.stderr))
        if flush:
            in_ns(self.ns(rname), 'conntrack -F 2>/dev/null || true', check=False)
        self._save()

    def _boot(self, mname):
        if self.state['layout']['machines'][mname].get('kind') == 'qemu':
            return self._boot_qemu(mname)
        ns = self.ns(mname)
        log = open(os.path.join(self.dir, mname + '.console.log'), 'w')
        # Each machine has its own disk: an overlay of the shared base tree, its writes kept in the
        # lab's directory, so a reboot keeps them (/run and /tmp start empty, as on a real machine).
        disk = os.path.join(self.dir, 'disk-' + mname)
        for part in ('upper', 'work', 'root'):
            os.makedirs(os.path.join(disk, part), exist_ok=True)
        # Lab only: on this host's hybrid cgroup layout, Debian 13's systemd (257) under nspawn
        # never sees the cgroup of a stopped user manager empty (user@.service stays in
        # final-sigkill), so every later login of that user waits forever, and a shutdown waits for
        # the stop timeout. Lingering users' managers start at boot and are never stopped; at
        # shutdown a short stop timeout ends the wait.
        linger = os.path.join(disk, 'upper', 'var', 'lib', 'systemd', 'linger')
        os.makedirs(linger, exist_ok=True)
        for user in ('root', ANSIBLE_USER):
            open(os.path.join(linger, user), 'a').close()
        dropin = os.path.join(disk, 'upper', 'etc', 'systemd', 'system', 'user@.service.d')
        os.makedirs(dropin, exist_ok=True)
        with open(os.path.join(dropin, 'wglan-lab.conf'), 'w') as handle:
            handle.write('[Service]\nTimeoutStopSec=3\n')
        # nspawn cleans /run/systemd/nspawn and insists it is a tmpfs: give it a private one. It exits
        # with 133 when the machine reboots: boot it again, like systemd-nspawn@.service does.
        nspawn = ('systemd-nspawn --quiet --boot --keep-unit --register=no --console=passive --directory=%s/root '
                  '--machine=%s --hostname=%s --network-namespace-path=/run/netns/%s --capability=CAP_NET_ADMIN --resolv-conf=off '
                  '--bind-ro=%s:/root/.ssh/authorized_keys --bind-ro=%s:/home/%s/.ssh/authorized_keys'
                  % (disk, ns, mname, ns, os.path.join(self.dir, 'authorized_keys'),
                     os.path.join(self.dir, 'authorized_keys'), ANSIBLE_USER))
        script = ('mkdir -p /run/systemd/nspawn && mount -t tmpfs tmpfs /run/systemd/nspawn && '
                  'mount -t overlay overlay -o lowerdir=%s,upperdir=%s/upper,workdir=%s/work %s/root && '
                  'while :; do %s; rc=$?; [ $rc -eq 133 ] || exit $rc; echo "(rebooting)"; done'
                  % (tree(self.state['layout']['machines'][mname].get('release', 'bookworm')), disk, disk, disk,
                     nspawn))
        env = dict(os.environ, SYSTEMD_NSPAWN_LOCK='0')
        proc = subprocess.Popen(['unshare', '-m', '--propagation', 'private', 'sh', '-c', script],
                                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env,
                                start_new_session=True)
        self.state['pids'][mname] = proc.pid
        self._save()

    def _boot_qemu(self, mname):
        """Debian's kernel and the same root tree (as an ext4 image, written to a throw-away snapshot)."""
        machine = self.state['layout']['machines'][mname]
        image, kernel, initrd = vm_image()
        with open(self.key + '.pub') as handle:
            key_body = handle.read().split()[1]
        mac = '52:54:00:%02x:%02x:%02x' % tuple(os.urandom(3))
        # (no crypto self-tests, no KVM modules for the emulated CPU's virtualization flags: under
        # TCG they cost a reboot 30 s and more of a loaded machine's time, and no test needs them)
        append = ('root=/dev/vda rw console=ttyS0 net.ifnames=0 cryptomgr.notests '
                  'modprobe.blacklist=kvm,kvm_amd,kvm_intel systemd.hostname=%s '
                  'ip=%s::%s:255.255.255.0:%s:eth0:off wglan.key=%s'
                  % (mname, machine['ip'], machine['gateway'], mname, key_body))
        cmd = ['ip', 'netns', 'exec', self.ns(mname), 'qemu-system-x86_64', '-accel', 'tcg', '-cpu', 'max',
               # a guest reboot resets the machine inside this qemu, which keeps the snapshot's writes
               # (-nodefaults: no floppy, CD-ROM, VGA or parallel port for the kernel to probe)
               '-m', '1024', '-smp', '2', '-nodefaults', '-display', 'none', '-monitor', 'none',
               '-serial', 'file:' + os.path.join(self.dir, mname + '.console.log'),
               '-kernel', kernel, '-initrd', initrd, '-append', append,
               '-drive', 'file=%s,format=raw,if=virtio,snapshot=on' % image,
               '-netdev', 'tap,id=n0,ifname=tap0,script=no,downscript=no',
               '-device', 'virtio-net-pci,netdev=n0,mac=%s' % mac]
        log = open(os.path.join(self.dir, mname + '.qemu.log'), 'w')
        proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
        self.state['pids'][mname] = proc.pid
        self._save()

    def ssh_args(self, mname):
        m = self.state['layout']['machines'][mname]
        # (ConnectTimeout counts up to sshd's banner: a kernel machine's sshd, emulated beside a busy lab, once
        # took longer than 3 s to send it, and a test failed on "Connection timed out during banner exchange")
        timeout = 20 if m.get('kind') == 'qemu' else 3
        return ['ip', 'netns', 'exec', self.controller, 'ssh', '-i', self.key, '-p', str(m['ssh_port']),
                '-o', 'StrictHostKeyChecking=no', '-o', 'UserKnownHostsFile=/dev/null', '-o', 'BatchMode=yes',
                '-o', 'ConnectTimeout=%d' % timeout, '-o', 'LogLevel=ERROR', 'root@' + m['ssh_host']]

    def ssh(self, mname, command, check=True, timeout=60):
        return sh(self.ssh_args(mname) + [command], check=check, timeout=timeout)

    def _console_size(self, mname):
        try:
            return os.path.getsize(os.path.join(self.dir, mname + '.console.log'))
        except OSError:
            return -1

    def _wait_ssh(self, names):
        vms = [n for n in names if self.state['layout']['machines'][n].get('kind') == 'qemu']
        timeout = VM_BOOT_TIMEOUT if vms else BOOT_TIMEOUT
        started = time.monotonic()
        deadline = started + timeout
        printed = dict((n, -1) for n in vms)
        waiting = list(names)
        while waiting and time.monotonic() < deadline:
            for mname in vms:  # a kernel machine whose console still prints is still booting
                size = self._console_size(mname)
                if size != printed[mname]:
                    printed[mname] = size
                    deadline = min(max(deadline, time.monotonic() + timeout), started + VM_BOOT_CAP)
            for mname in list(waiting):
                try:
                    # (and until logins are open: a playbook logs in as the admin user, whom pam_nologin
                    # turns away until systemd-user-sessions has run. Once that took longer than the boot's
                    # end; and `is-system-running --wait` returns at once while the system bus is not up
                    # yet, so the machine counts as up only when /run/nologin is gone: else it is asked again)
                    # (with twenty machines booting at once a unit now and then fails to join its cgroup,
                    # status 219, systemd-user-sessions among them: such a unit is started again)
                    if self.ssh(mname, 'systemctl is-system-running --wait >/dev/null 2>&1; '
                                       'for u in $(systemctl --failed --no-legend --plain | cut -d" " -f1); do '
                                       'systemctl show -p ExecMainStatus "$u" | grep -qx ExecMainStatus=219 && '
                                       'systemctl restart "$u"; done; for i in $(seq 1 50); do '
                                       'test -e /run/nologin || exit 0; sleep 0.2; done; exit 1',
                                check=False, timeout=30).returncode == 0:
                        waiting.remove(mname)
                except subprocess.TimeoutExpired:
                    pass
            if waiting:
                time.sleep(0.5)
        if waiting:
            for mname in waiting:  # (the lab's directory goes with its teardown: what the console said, here)
                try:
                    with open(os.path.join(self.dir, mname + '.console.log'), errors='replace') as handle:
                        sys.stdout.write('--- %s console (last lines)\n%s\n' % (mname, ''.join(handle.readlines()[-40:])))
                except OSError:
                    pass
            raise RuntimeError('machines did not come up within %ds: %s (logs in %s)'
                               % (time.monotonic() - started, ', '.join(waiting), self.dir))

    def _write_inventory(self):
        lines = ['[wglan]']
        for mname, m in sorted(self.state['layout']['machines'].items()):
            lines.append('%s ansible_host=%s ansible_port=%d' % (mname, m['ssh_host'], m['ssh_port']))
        # Connection settings only: the interpreter is discovered and become is the playbook's.
        lines += ['', '[all:vars]', 'ansible_user=%s' % ANSIBLE_USER, 'ansible_ssh_private_key_file=%s' % self.key,
                  "ansible_ssh_common_args='-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'", '']
        with open(self.inventory, 'w') as handle:
            handle.write('\n'.join(lines))

    # -- using -------------------------------------------------------------
    def playbook(self, *args, timeout=900, pipelining=False):
        """ansible-playbook from the controller namespace against the lab inventory."""
        return self.playbook_with_inventory(self.inventory, *args, timeout=timeout, pipelining=pipelining)

    def _ansible_env(self, pipelining=False, **extra):
        """Ansible's defaults, as a fleet runs it: no ansible.cfg (the commands run outside the
        checkout), no pipelining (modules run over `ssh -tt`), five forks, the collection as
        ansible-galaxy installs it. Only the lab's throw-away host keys are not checked.
        pipelining=True: the one run with that convenience on."""
        env = dict((k, v) for k, v in os.environ.items() if not k.startswith('ANSIBLE_'))
        env.update(ANSIBLE_COLLECTIONS_PATH=installed_collection(), ANSIBLE_HOST_KEY_CHECKING='False',
                   ANSIBLE_NOCOLOR='1', ANSIBLE_SSH_CONTROL_PATH_DIR=os.path.join(self.dir, 'cp'), **extra)
        if pipelining:
            env['ANSIBLE_PIPELINING'] = 'True'
        return env

    def playbook_with_inventory(self, inventory, *args, timeout=900, pipelining=False, env=None):
        """ansible-playbook from the controller namespace against another inventory of this lab.
        The repository's playbooks/site.yml is run as users run it: wglan.mesh.site.
        env: more ANSIBLE_* settings (a fact cache, say)."""
        args = ['wglan.mesh.site' if a == 'playbooks/site.yml' else a for a in args]
        cmd = ['ip', 'netns', 'exec', self.controller, 'ansible-playbook', '-i', inventory] + list(args)
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                              env=self._ansible_env(pipelining, **(env or {})), timeout=timeout, cwd=self.dir,
                              check=False)

    def adhoc(self, pattern, module, args='', timeout=300, become=True):
        """`ansible PATTERN -m MODULE -a ARGS` from the controller; one line of JSON per host."""
        env = self._ansible_env(ANSIBLE_LOAD_CALLBACK_PLUGINS='1', ANSIBLE_STDOUT_CALLBACK='oneline')
        cmd = ['ip', 'netns', 'exec', self.controller, 'ansible', '-i', self.inventory, pattern, '-m', module]
        if become:
            cmd.append('--become')
        if args:
            cmd += ['-a', args]
        return subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True,
                              env=env, timeout=timeout, cwd=self.dir, check=False)

    def machines(self):
        return sorted(self.state['layout']['machines'])

    def reboot(self, mname):
        """`systemctl reboot` on a machine; returns once it answers SSH again, booted."""
        try:  # (a loaded kernel machine may hold the command until it goes down)
            self.ssh(mname, 'systemctl reboot', check=False, timeout=60)
        except subprocess.TimeoutExpired:
            pass
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:  # SSH goes away first
            try:
                if self.ssh(mname, 'true', check=False, timeout=25).returncode != 0:
                    break
            except subprocess.TimeoutExpired:
                break
            time.sleep(0.2)
        self._wait_ssh([mname])

    def move(self, mname, site):
        """Unplug a machine and plug it into another site ('pub' or a site letter) with a new address,
        like a machine carried to another office: its SSH forward moves along. The routers keep
        their mappings (nobody else's flows are disturbed). Returns the new address."""
        layout = self.state['layout']
        machine = layout['machines'][mname]
        used = set(m['ip'] for m in layout['machines'].values())
        old_router = [r for r, router in layout['routers'].items() if router['site'] == machine['site']]
        if site == 'pub':
            ip = next('%s.%d' % (PUBLIC_NET, n) for n in range(30, 99) if '%s.%d' % (PUBLIC_NET, n) not in used)
            new = dict(switch='pub', ip=ip, prefix=24, gateway=PUBLIC_NET + '.1', ssh_host=ip, ssh_port=22, site=None)
            new_router = None
        else:
            new_router = [r for r, router in layout['routers'].items() if router['site'] == site][0]
            router = layout['routers'][new_router]
            base = 64 * (ord(site) - ord('a'))
            k = next(k for k in range(40) if '192.0.2.%d' % (base + 10 + k) not in used)
            ip = '192.0.2.%d' % (base + 10 + k)
            port = 2200 + 10 * (ord(site) - ord('a')) + k
            router['forwards'].append((port, ip))
            new = dict(switch='site-' + site, ip=ip, prefix=26, gateway='192.0.2.%d' % (base + 1),
                       ssh_host=router['wan'], ssh_port=port, site=site)
        ns = self.ns(mname)
        in_ns(ns, 'ip link del eth0')
        self._wire(new['switch'], ns, 'eth0')
        in_ns(ns, 'ip addr add %s/%d dev eth0 && ip route add default via %s' % (ip, new['prefix'], new['gateway']))
        for rname in old_router:
            layout['routers'][rname]['forwards'] = [f for f in layout['routers'][rname]['forwards']
                                                    if f[1] != machine['ip']]
        machine.update(new)
        for rname in set(old_router + ([new_router] if new_router else [])):
            self.set_nat(rname, layout['routers'][rname]['symmetric'], flush=False)
        self._write_inventory()
        self._save()
        return ip

    # -- tearing down ------------------------------------------------------
    def down(self):
        if self.state is None:
            return
        for mname, pid in self.state.get('pids', {}).items():
            try:
                os.killpg(pid, 15)
            except OSError:
                pass
        deadline = time.monotonic() + 5  # then SIGKILL: the machines are thrown away anyway
        for pid in self.state.get('pids', {}).values():
            while time.monotonic() < deadline:
                try:
                    os.kill(pid, 0)
                except OSError:
                    break
                time.sleep(0.2)
            try:
                os.killpg(pid, 9)
            except OSError:
                pass
        for ns in reversed(self.state.get('namespaces', [])):
            pids = sh(['ip', 'netns', 'pids', ns], check=False).stdout.split()
            for pid in pids:
                try:
                    os.kill(int(pid), 9)
                except OSError:
                    pass
            sh(['ip', 'netns', 'del', ns], check=False)
        shutil.rmtree(self.dir, ignore_errors=True)
        self.state = None


# What each machine's admin had before we came: a host firewall of each kind Debian ships.
FIREWALLS = {
    # their own table, input policy drop (SSH, ping, established) and a forward chain that drops
    'nftables': """cat > /etc/nftables.conf <<'EOF'
#!/usr/sbin/nft -f
flush ruleset
table inet admin {
  chain input { type filter hook input priority filter; policy drop;
    ct state established,related accept
    iifname "lo" accept
    tcp dport 22 accept
    meta l4proto { icmp, ipv6-icmp } accept
  }
  chain forward { type filter hook forward priority filter; policy drop;
    ct state established,related accept
  }
}
EOF
systemctl enable --now nftables.service""",
    'ufw': 'ufw allow 22/tcp >/dev/null && ufw --force enable >/dev/null',
    'firewalld': 'systemctl enable --now firewalld.service >/dev/null 2>&1 && firewall-cmd --state',
}


# systemd-resolved as the machine's resolver, as Debian sets it up when it is installed (the tree has it
# off): its stub in resolv.conf. It has no upstream server in the lab, so other names fail at once.
RESOLVED = ('ln -sfn ../run/systemd/resolve/stub-resolv.conf /etc/resolv.conf && '
            'systemctl enable --now systemd-resolved.service >/dev/null 2>&1 && resolvectl status >/dev/null')


def installed_collection():
    """The collection built and installed with ansible-galaxy, as users get it (once per process)."""
    path = '/run/wglan-lab-collections/%d' % os.getpid()
    if not os.path.isdir(os.path.join(path, 'ansible_collections', 'wglan', 'mesh')):
        atexit.register(shutil.rmtree, path, True)
        artifact = os.path.join(path, 'artifact')
        sh(['ansible-galaxy', 'collection', 'build', '--force', '--output-path', artifact, ROOT], timeout=300)
        tarball = [f for f in os.listdir(artifact) if f.endswith('.tar.gz')][0]
        sh(['ansible-galaxy', 'collection', 'install', '--force', '--no-deps', '-p', path,
            os.path.join(artifact, tarball)], timeout=300)
        extra = os.path.join(ROOT, 'build', 'ecosystem', 'ansible_collections')
        if os.path.isdir(extra):  # community.general and ansible.posix, as scripts/setup.sh unpacks them
            for namespace in os.listdir(extra):
                for name in os.listdir(os.path.join(extra, namespace)):
                    link = os.path.join(path, 'ansible_collections', namespace, name)
                    os.makedirs(os.path.dirname(link), exist_ok=True)
                    if not os.path.exists(link):
                        os.symlink(os.path.join(extra, namespace, name), link)
    return path


def vm_image():
    """(image, kernel, initrd) for kernel machines: an ext4 image of the base tree, made once per tree."""
    directory = os.path.join(LAB_DIR, 'vm')
    image = os.path.join(directory, 'root.img')
    with open(os.path.join(BASE_TREE, '.wglan-lab-stamp')) as handle:
        stamp = handle.read()
    stamp_path = image + '.stamp'
    current = open(stamp_path).read() if os.path.exists(stamp_path) else None
    if current != stamp or not os.path.exists(image):
        os.makedirs(directory, exist_ok=True)
        tmp = image + '.tmp'
        sh(['truncate', '-s', '3G', tmp])
        sh(['mkfs.ext4', '-q', '-F', '-L', 'wglanroot', '-d', BASE_TREE, tmp], timeout=600)
        os.rename(tmp, image)
        with open(stamp_path, 'w') as handle:
            handle.write(stamp)
    boot = os.path.join(BASE_TREE, 'boot')
    kernels = sorted(f for f in os.listdir(boot) if f.startswith('vmlinuz-'))
    if not kernels:
        raise RuntimeError('no kernel in %s: rebuild the base tree (tests/lab/build-base.sh)' % boot)
    version = kernels[-1][len('vmlinuz-'):]
    return image, os.path.join(boot, 'vmlinuz-' + version), os.path.join(boot, 'initrd.img-' + version)


def new_name():
    return 'wl' + uuid.uuid4().hex[:4]


def current_labs():
    try:
        return sorted(os.listdir(STATE_ROOT))
    except OSError:
        return []


def main(argv=None):
    parser = argparse.ArgumentParser(description='wglan lab of nspawn machines behind NAT routers')
    sub = parser.add_subparsers(dest='command', required=True)
    up = sub.add_parser('up')
    up.add_argument('--name', default=None)
    up.add_argument('--public', type=int, default=1)
    up.add_argument('--sites', type=int, default=2)
    up.add_argument('--per-site', type=int, default=2)
    up.add_argument('--symmetric', nargs='*', default=[])
    up.add_argument('--kernel', type=int, default=0, help='machines booting Debian\'s kernel under qemu')
    for command in ('inventory', 'status', 'down'):
        p = sub.add_parser(command)
        p.add_argument('--name', default=None)
    args = parser.parse_args(argv)
    if args.command == 'up':
        lab = Lab(args.name or new_name()).up(plan(args.public, args.sites, args.per_site, args.symmetric,
                                                   args.kernel))
        print('lab %s is up: %d machines; inventory %s' % (lab.name, len(lab.machines()), lab.inventory))
        print('run Ansible inside it:  ip netns exec %s ansible-playbook -i %s playbooks/site.yml'
              % (lab.controller, lab.inventory))
        return 0
    names = [args.name] if args.name else current_labs()
    if not names:
        print('no lab is up')
        return 0
    for name in names:
        lab = Lab(name)
        if args.command == 'inventory':
            with open(lab.inventory) as handle:
                print(handle.read())
        elif args.command == 'status':
            print('%s: %s' % (name, ', '.join(lab.machines()) if lab.state else 'no state'))
        else:
            lab.down()
            print('lab %s is down' % name)
    return 0


if __name__ == '__main__':
    sys.exit(main())


def recap_changed(output):
    """{host: changed count} from the PLAY RECAP."""
    counts = {}
    for line in output.split('PLAY RECAP')[-1].splitlines():
        parts = line.split()
        if len(parts) > 2 and parts[1] == ':':
            counts[parts[0]] = int([p for p in parts if p.startswith('changed=')][0].split('=')[1])
    return counts


def wg_report(lab, names):
    """Each machine's WireGuard endpoints and handshakes, for failure messages."""
    out = []
    for name in names:
        shown = lab.ssh(name, 'wg show wglan0 public-key; wg show wglan0 endpoints; wg show wglan0 latest-handshakes',
                        check=False)
        out.append('== %s\n%s' % (name, shown.stdout))
    return '\n'.join(out)


def mesh_matrix(lab, interface='wglan0', count=1, wait=3, only=None, fact='wglan'):
    """Who reaches whom over the mesh: ping every other node's mesh address from every node.

    Returns (names, reach, age): reach[src][dst] is True/False, age[src][dst]
    the seconds since src's last handshake with dst (None: never).
    """
    names = [n for n in lab.machines() if only is None or n in only]
    records = {}
    for name in names:
        out = lab.ssh(name, 'cat /etc/ansible/facts.d/%s.fact' % fact, check=False)
        records[name] = json.loads(out.stdout) if out.returncode == 0 and out.stdout.strip() else {}
    by_key = dict((r.get('public_key'), n) for n, r in records.items() if r.get('public_key'))
    addresses = [r.get('address') for r in records.values()]
    if None in addresses or len(set(addresses)) != len(addresses):
        # a ping to a duplicate would be answered locally and prove nothing
        raise RuntimeError('mesh addresses are missing or not distinct: %s'
                           % dict((n, r.get('address')) for n, r in records.items()))
    reach, age = {}, {}
    for src in names:
        targets = [(dst, records[dst].get('address')) for dst in names if dst != src]
        # -I wglan0: the reply must come through the tunnel, never from a local address
        script = ' '.join('(ping -6 -I %s -c %d -W %d %s >/dev/null 2>&1 && echo "%s ok" || echo "%s fail") &'
                          % (interface, count, wait, addr, dst, dst) for dst, addr in targets if addr)
        script += ' wait; echo "--"; wg show %s latest-handshakes 2>/dev/null; date +%%s' % interface
        out = lab.ssh(src, script, check=False, timeout=60).stdout.split('--')
        reach[src] = dict((dst, False) for dst in names if dst != src)
        for line in out[0].split('\n'):
            parts = line.split()
            if len(parts) == 2:
                reach[src][parts[0]] = parts[1] == 'ok'
        lines = out[1].strip().split('\n') if len(out) > 1 else []
        now = int(lines[-1]) if lines and lines[-1].isdigit() else int(time.time())
        age[src] = {}
        for line in lines[:-1]:
            key, _tab, when = line.partition('\t')
            if key in by_key:
                age[src][by_key[key]] = (now - int(when)) if when.strip().isdigit() and int(when) else None
    return names, reach, age


def all_pairs(names):
    return [(s, d) for s in names for d in names if s != d]


def full_mesh(lab, only=None, timeout=90):
    """Poll until every ordered pair reaches the other over the mesh (direct or relayed), bounded.

    Two machines behind one Linux NAT that both use port 51820 get a different
    public port for each destination when they collide, so pairs across two
    such NATs may have no direct path at all: the watchers relay those through
    a node that reaches both after one full sweep (a few times sweep_interval).
    Returns the last matrix and each machine's `wglan status`.
    """
    deadline = time.monotonic() + timeout
    while True:
        names, reach, _age = mesh_matrix(lab, only=only)
        if all(reach[s][d] for s, d in all_pairs(names)) or time.monotonic() > deadline:
            break
        time.sleep(3)
    status = dict((n, lab.ssh(n, 'wglan status', check=False).stdout) for n in names)
    if not all(reach[s][d] for s, d in all_pairs(names)):
        # pytest shows a failed test's stdout in full (assertion messages get cut)
        sys.stdout.write('\nmesh incomplete after %d s:\n%s\n' % (timeout, format_matrix(names, reach, _age)))
        for name in names:
            journal = lab.ssh(name, 'journalctl -u wglan-watcher --no-pager -n 40', check=False).stdout
            sys.stdout.write('== %s\n%s\n%s\n' % (name, status[name], journal))
        sys.stdout.write(wg_report(lab, names) + '\n')
    return names, reach, status


def status_rows(text):
    """`wglan status` (the table) -> {peer: (STATE, PATH)}; PATH is 'direct' or 'via <relay>'."""
    rows = {}
    for line in text.splitlines()[2:]:
        if not line.strip():
            break  # the table ends (what the node relayed for others follows)
        fields = line.split()
        if len(fields) >= 6:
            rows[fields[0]] = (fields[3], ' '.join(fields[-2:]) if fields[-2] == 'via' else fields[-1])
    return rows


def peer_latency(lab, hosts, key, since):
    """Seconds from `since` (time.time(); the machines share the controller's clock) until key is a
    peer of each host's wglan0. Every machine polls its own device (5 s at most); the slowest decides."""
    script = ('for i in $(seq 1 100); do wg show wglan0 peers | grep -q %s && { date +%%s.%%N; exit 0; }; '
              'sleep 0.05; done; exit 1') % key.replace('+', '\\+')
    results = {}
    threads = [threading.Thread(target=lambda h=h: results.__setitem__(h, lab.ssh(h, script, check=False)))
               for h in hosts]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert all(r.returncode == 0 for r in results.values()), dict((h, r.stdout) for h, r in results.items())
    return dict((h, float(r.stdout.strip()) - since) for h, r in results.items())


def peer_gone(lab, hosts, key):
    """Whether key stops being a peer of every host within 3 s."""
    gone = 'for i in $(seq 1 60); do wg show wglan0 peers | grep -q %s || exit 0; sleep 0.05; done; exit 1' \
        % key.replace('+', '\\+')
    return all(lab.ssh(h, gone, check=False).returncode == 0 for h in hosts)


def format_matrix(names, reach, age):
    width = max(len(n) for n in names) + 2
    rows = ['from \\ to'.ljust(width + 2) + ''.join(n.rjust(9) for n in names)]
    for src in names:
        cells = []
        for dst in names:
            if src == dst:
                cells.append('-'.rjust(9))
                continue
            mark = 'ok' if reach[src].get(dst) else 'FAIL'
            seconds = age[src].get(dst)
            cells.append(('%s %ss' % (mark, seconds if seconds is not None else '?')).rjust(9))
        rows.append(src.ljust(width + 2) + ''.join(cells))
    return '\n'.join(rows)


PING_ALL = '''
rm -f /tmp/wglan-ping.* /tmp/wglan-dump
(for i in $(seq 1 3000); do echo "@ $(date +%%T.%%N)"; wg show wglan0 dump | tail -n +2 | cut -f1,3,5,6,7; sleep 0.2; done > /tmp/wglan-dump 2>&1) &
dumper=$!
pids=""
for d in %(targets)s; do ping -n -i 0.2 -W 1 -w 900 $d > /tmp/wglan-ping.$d 2>&1 & pids="$pids $!"; done
wait $pids
kill $dumper
# per target: sent, received, and the longest run of replies missing (in packets)
for f in /tmp/wglan-ping.*; do awk -v f="$f" \'
  /icmp_seq=/ { match($0, /icmp_seq=[0-9]+/); s = substr($0, RSTART + 9, RLENGTH - 9) + 0;
                if (last != "" && s - last - 1 > gap) gap = s - last - 1; last = s }
  /packets transmitted/ { tx = $1; rx = $4 }
  END { if (last != "" && tx - last > gap) gap = tx - last; print f, tx " packets transmitted, " rx " received, gap " gap + 0 }\' "$f"; done
'''


# pings (0.2 s apart) a key switch may cost one flow: the ones sent between the switch and the peer's update
SWITCH_COST = 2


def run_under_pings(lab, inventory, hosts, args, timeout=900):
    """site.yml with args while every machine pings every other over the mesh's IPv6 (and IPv4 overlay, where
    it has one) addresses, 5 a second. Returns the run, its seconds, the pairs down once it returned, and per
    flow the pings lost and the longest gap (s), the pings sent, the longest gap, and the addresses pinged."""
    import re
    addresses = dict((h, json.loads(lab.ssh(h, 'cat /etc/ansible/facts.d/wglan.fact').stdout)) for h in hosts)
    pingers = []
    for src in hosts:
        targets = ' '.join(' '.join(a for a in (addresses[d]['address'], addresses[d].get('address4')) if a)
                           for d in hosts if d != src)
        pingers.append((src, subprocess.Popen(lab.ssh_args(src) + [PING_ALL % dict(targets=targets)],
                                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                              universal_newlines=True)))
    try:
        time.sleep(3)
        started = time.monotonic()
        result = lab.playbook_with_inventory(inventory, 'playbooks/site.yml', *args, timeout=timeout)
        took = time.monotonic() - started
        # the pairs that do not ping once the run has returned (the role waited for them already)
        after_run = mesh_matrix(lab, only=hosts)[1]
        down_after = ['%s->%s' % (s, d) for s, d in all_pairs(hosts) if not after_run[s][d]]
        time.sleep(3)
        for src in hosts:
            lab.ssh(src, 'pkill -INT -x ping', check=False)
        outputs = dict((src, proc.communicate(timeout=60)[0]) for src, proc in pingers)
    finally:
        for _src, proc in pingers:
            if proc.poll() is None:
                proc.kill()
                proc.wait(10)
    assert result.returncode == 0, result.stdout[-3000:]
    lost, gaps, sent = {}, {}, 0
    for src, out in outputs.items():
        for path, count, got, gap in re.findall(
                r'/tmp/wglan-ping\.(\S+) (\d+) packets transmitted, (\d+) received, gap (\d+)', out):
            sent += int(count)
            gaps['%s->%s' % (src, path)] = int(gap) * 0.2
            if int(count) != int(got):
                lost['%s->%s' % (src, path)] = int(count) - int(got)
    longest = max(gaps.items(), key=lambda item: item[1]) if gaps else ('-', 0.0)
    flows = sum(len([a for a in (addresses[d]['address'], addresses[d].get('address4')) if a])
                for s in hosts for d in hosts if d != s)
    assert sent > flows * 5 * 60, outputs  # every pair and family, all the while
    return dict(result=result, took=took, down_after=down_after, lost=lost, sent=sent, longest=longest,
                outputs=outputs)


def rotate_under_pings(lab, inventory, hosts, sources, timeout=900):
    """site.yml with wglan_rotate_keys=true under pings (run_under_pings). Prints and returns what it cost: the
    run's seconds, the pairs down once it returned, pings sent and lost per flow, the longest gap; the watchers'
    journals and device dumps when a flow lost more than SWITCH_COST pings at each of its two switches, or
    went silent for more than 1 s."""
    import re
    run = run_under_pings(lab, inventory, hosts, ['-e', 'wglan_rotate_keys=true'], timeout)
    result, took, down_after = run['result'], run['took'], run['down_after']
    lost, sent, longest = run['lost'], run['sent'], run['longest']
    assert re.findall(r'TASK \[wglan.mesh.node : Rotate this node.s key[^\]]*\]', result.stdout), result.stdout[-3000:]
    sys.stdout.write('\nevery key rotated through the role with its defaults (%s, key_overlap 30 s; run %.0f s): '
                     'pairs down after the run %d of %d; %d of %d pings lost %s; longest gap %.1f s (%s)\n'
                     % (sources, took, len(down_after), len(hosts) * (len(hosts) - 1), sum(lost.values()), sent, lost,
                        longest[1], longest[0]))
    # What a switch can cost: the packets a node sends in the few hundred milliseconds between its own switch
    # and its peers' (with Kubernetes, up to two of a flow at a switch: 13 of 8 777 in one run, 4 of 38 161 with
    # the discovery services). A flow crosses two switches, its source's and its destination's, so up to four
    # (3 on three flows of one CI run, each gap at most 0.4 s). The faults this test found cost 5 to 18 s of a
    # pair each (25 to 90 pings, one gap).
    # A switch's handshakes can cross (the node that switched and a peer both send one; WireGuard drops both
    # answers): the node that switched then starts the pair again after its switch's reconcile, logged as
    # "starting again" (0.8 s after the switch in a CI run, which lost 5 pings of one flow, a 1.0 s gap; before
    # the restart such a pair waited 5 s for WireGuard's own retry). Then a flow may lose up to 1.2 s.
    restarted = 0
    if [n for n in lost.values() if n > 2 * SWITCH_COST] or longest[1] > 1.0:
        for host in hosts:
            count = lab.ssh(host, 'journalctl -u wglan-watcher --since "-%d s" --no-pager | grep -c "starting again"'
                            % (int(took) + 20), check=False).stdout.strip()
            restarted += int(count) if count.isdigit() else 0
    allowed, gap = (6, 1.2) if restarted else (2 * SWITCH_COST, 1.0)
    bad = dict((flow, n) for flow, n in lost.items() if n > allowed)
    if longest[1] > gap:
        bad['longest gap'] = longest
    if bad:
        for host in hosts:
            journal = lab.ssh(host, 'journalctl -u wglan-watcher -o short-precise --since "-%d s" --no-pager | '
                                    'grep -v "relay\\|sweep" | tail -40' % (int(took) + 20), check=False).stdout
            sys.stdout.write('--- %s\n%s\n' % (host, journal))
            dump = '/tmp/wglan-lab-dump-%s' % host
            with open(dump, 'w') as handle:
                handle.write(lab.ssh(host, 'cat /tmp/wglan-dump', check=False).stdout)
            sys.stdout.write('(device dumps every 0.2 s in %s)\n' % dump)
    for host in hosts:
        assert lab.ssh(host, 'stat -c %a /etc/wglan/private.key; ls /etc/wglan/private.key.next 2>&1 | grep -c "No such"'
                       ).stdout.split() == ['600', '1']
    return dict(took=took, down_after=down_after, lost=lost, sent=sent, longest=longest, bad=bad)
