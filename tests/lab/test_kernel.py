"""The kernel backend for real: a machine booting Debian's own kernel (qemu,
kernel WireGuard over generic netlink) in one mesh with wireguard-go machines,
the watcher on (role defaults), as most real hosts run it. It reboots and is
reached again without Ansible, and relays for two other members through its
kernel WireGuard link. Slow under emulation (TCG): waits are generous.

Its site.yml run is the lab's one run with pipelining on. What pipelining
changes (the module's transport, the tty a userspace WireGuard would die
with) is tested with Ansible's defaults on the container machines, and the
kernel backend runs no wireguard-go. (It saves no time here: 467 s with it,
453 s without; the emulated CPU dominates.)
"""
import json
import time

import pytest

from lab import Lab, all_pairs, full_mesh, new_name, plan, status_rows


@pytest.fixture(scope='module')
def kernel_lab():
    instance = Lab(new_name())
    try:
        instance.up(plan(public=1, sites=1, per_site=1, kernel=1))
        yield instance
    finally:
        instance.down()


def test_kernel_machine_joins_the_mesh(kernel_lab):
    lab = kernel_lab
    result = lab.playbook('playbooks/site.yml', pipelining=True)
    assert result.returncode == 0, result.stdout[-3000:]
    assert 'wireguard' in lab.ssh('kvm1', 'ip -d link show wglan0').stdout
    assert 'tun' in lab.ssh('hub1', 'ip -d link show wglan0').stdout
    assert lab.ssh('kvm1', 'pgrep -x wireguard-go', check=False).returncode != 0
    assert lab.ssh('kvm1', 'systemctl is-active wglan-watcher').stdout.strip() == 'active'
    names, reach, status = full_mesh(lab, timeout=180)
    print('\n'.join(status.values()))
    assert all(reach[s][d] for s, d in all_pairs(names)), (reach, status)


def test_kernel_backend_is_idempotent(kernel_lab):
    # wglan_peers and wglan_rules again on the kernel machine, from the settings the role saved: nothing
    # to change on the kernel device. (A whole second site.yml takes two minutes on the emulated machine;
    # the role's own idempotence is held by test_site.py.)
    # wglan_rules gets the targets wglan_peers reports (every peer is up here, so the watcher routes them
    # all): drift in the table's target sets fails the check, not only drift in its chains.
    targets = None
    for module in ('wglan.mesh.wglan_peers', 'wglan.mesh.wglan_rules'):
        args = json.dumps(dict(targets=targets)) if targets is not None else ''
        result = kernel_lab.adhoc('kvm1', module, args)
        line = [entry for entry in result.stdout.splitlines() if entry.startswith('kvm1 ')]
        assert line and 'SUCCESS' in line[0] and '"changed": false' in line[0], (module, result.stdout[-3000:])
        if targets is None:
            targets = json.loads(line[0].split(' => ', 1)[1])['targets']
            assert len(targets) >= 4, targets


def test_wglan_info_reads_the_kernel_device(kernel_lab):
    result = kernel_lab.adhoc('kvm1', 'wglan.mesh.wglan_info', 'wait=20')
    assert result.returncode == 0, result.stdout[-2000:]
    info = json.loads(result.stdout.split(' => ', 1)[1])
    assert info['backend'] == 'kernel' and info['listen_port'] == 51820 and info['fwmark'] == 32
    assert len(info['peers']) == 2 and info['peers_up'] == 2
    assert all(p['handshake_age'] is not None and p['rx_bytes'] > 0 for p in info['peers'])


BLOCK = """
table inet labblock {
  chain input { type filter hook input priority -10; policy accept;
    ip saddr %s udp dport 51820-51851 drop
  }
}
"""


def test_the_kernel_machine_relays_ipv6_and_ipv4_without_forwarding(kernel_lab):
    """The direct path between hub1 and a1 breaks (each drops the other's WireGuard packets on
    arrival) while they send to each other: the pair goes through kvm1, the only other member (with
    the inventory as the only source each end chooses alone, and both choose kvm1), whose relay
    table is on a kernel WireGuard link: both the mesh address and a1's node IPv4 answer, kvm1
    counts both families, and none of kvm1's forwarding switches is on. Then the path opens and the
    pair is direct again."""
    lab = kernel_lab
    wan = lab.state['layout']['routers']['ra']['wan']  # where a1's packets come from
    record = json.loads(lab.ssh('a1', 'cat /etc/ansible/facts.d/wglan.fact').stdout)
    mesh_address = record['address'].split('/')[0]
    node_ip = next(ip for ip in record['node_ips'] if ':' not in ip).split('/')[0]
    hub = json.loads(lab.ssh('hub1', 'cat /etc/ansible/facts.d/wglan.fact').stdout)
    hub_ip = lab.state['layout']['machines']['hub1']['ip']
    lab.ssh('hub1', 'nft -f - <<EOF\n%s\nEOF' % (BLOCK % wan))
    lab.ssh('a1', 'nft -f - <<EOF\n%s\nEOF' % (BLOCK % hub_ip))
    lab.ssh('hub1', 'timeout 300 ping -i 0.5 %s >/dev/null 2>&1 &' % mesh_address)
    lab.ssh('a1', 'timeout 300 ping -i 0.5 %s >/dev/null 2>&1 &' % hub['address'].split('/')[0])
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline:
            paths = (status_rows(lab.ssh('hub1', 'wglan status', check=False).stdout).get('a1', ('', ''))[1],
                     status_rows(lab.ssh('a1', 'wglan status', check=False).stdout).get('hub1', ('', ''))[1])
            if paths == ('via kvm1', 'via kvm1'):
                break
            time.sleep(3)
        assert paths == ('via kvm1', 'via kvm1'), (paths, lab.ssh('hub1', 'journalctl -u wglan-watcher -n 30').stdout)
        for target in (mesh_address, node_ip):
            answered = lab.ssh('hub1', 'ping -c 3 -W 3 %s' % target, check=False, timeout=30)
            assert answered.returncode == 0, (target, answered.stdout)
            assert 'ttl=63' in answered.stdout, answered.stdout  # one hop: kvm1's
        for family in ('load6', 'load4'):
            listed = lab.ssh('kvm1', 'nft list set netdev wglan_relay %s' % family).stdout
            assert 'counter packets' in listed, listed
        switches = lab.ssh('kvm1', 'cat /proc/sys/net/ipv4/conf/all/forwarding /proc/sys/net/ipv4/conf/wglan0/forwarding '
                                   '/proc/sys/net/ipv6/conf/all/forwarding').stdout.split()
        assert switches == ['0', '0', '0'], switches
    finally:
        for host in ('hub1', 'a1'):
            lab.ssh(host, 'nft delete table inet labblock; pkill -x ping', check=False)
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if status_rows(lab.ssh('hub1', 'wglan status', check=False).stdout).get('a1', ('', ''))[1] == 'direct':
            break
        time.sleep(3)
    assert status_rows(lab.ssh('hub1', 'wglan status').stdout)['a1'][1] == 'direct'


def test_kernel_machine_reboots_and_is_reached_again_without_ansible(kernel_lab):
    lab = kernel_lab
    started = time.monotonic()
    lab.reboot('kvm1')
    booted = time.monotonic() - started
    # the watcher (enabled at boot) makes the kernel interface again and the peers find it
    names, reach, status = full_mesh(lab, timeout=240)
    print('kvm1: booted in %.0f s, mesh whole %.0f s after the reboot' % (booted, time.monotonic() - started))
    assert all(reach[s][d] for s, d in all_pairs(names)), (reach, status)
    assert 'wireguard' in lab.ssh('kvm1', 'ip -d link show wglan0').stdout
