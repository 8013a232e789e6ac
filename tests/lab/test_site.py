"""site.yml on real machines (systemd-nspawn) behind real NATs, over real SSH.

Run the way fleets run Ansible: its defaults (no pipelining, so every module
runs over `ssh -tt`; no ansible.cfg of ours), as the user "admin" becoming root
with sudo, the collection installed from its built artifact, Debian 12 and 13
machines in one mesh, three of them behind their admin's own host firewall
(conftest.py). The suite's one run with pipelining on is the kernel machine's
(test_kernel.py).

The tests build on each other in file order: check mode on fresh machines,
first run, second run, --limit, then bad inventories.
"""
import json
import os
import re
import sys

import time

from browser import Browser
from lab import all_pairs, full_mesh, mesh_matrix, status_rows

HOSTS = ['a1', 'a2', 'b1', 'b2', 'hub1']


def recap(output):
    out = {}
    for host, counts in re.findall(r'^(\S+)\s+:\s+(ok=.*)$', output, re.M):
        out[host] = dict((k, int(v)) for k, v in re.findall(r'(\w+)=(\d+)', counts))
    return out


def changed_tasks(output):
    """[(task, host)] of every task a run reports changed: what a test names when a run should change nothing."""
    found = []
    for block in output.split('TASK [')[1:]:
        task = block.split(']')[0]
        found.extend((task, host) for host in re.findall(r'^changed: \[([^\]]+)\]', block, re.M))
    return found


def site(lab, *args, inventory=None, env=None):
    result = lab.playbook_with_inventory(inventory or lab.inventory, 'playbooks/site.yml', *args, env=env)
    result.recap = recap(result.stdout)
    return result


def peers_of(lab, host):
    out = lab.ssh(host, 'wg show wglan0 peers 2>/dev/null', check=False).stdout
    return sorted(out.split())


def footprint(lab, host):
    script = ('ip link show wglan0 >/dev/null 2>&1 && echo link; test -e /etc/wglan/private.key && echo key; '
              'test -e /etc/ansible/facts.d/wglan.fact && echo fact; nft list table inet wglan >/dev/null 2>&1 '
              '&& echo nft; ip rule show | grep -q "lookup 180" && echo rule; ls /var/run/wireguard 2>/dev/null')
    return lab.ssh(host, script, check=False).stdout.split()


def extra_inventory(lab, name, lines):
    path = os.path.join(lab.dir, name)
    with open(lab.inventory) as handle:
        text = handle.read()
    with open(path, 'w') as handle:
        handle.write(text.replace('[wglan]\n', '[wglan]\n' + '\n'.join(lines) + '\n', 1))
    return path


def test_the_lab_is_a_mixed_fleet(lab):
    releases = dict((h, lab.ssh(h, '. /etc/os-release; echo $VERSION_CODENAME').stdout.strip()) for h in HOSTS)
    assert releases == {'a1': 'bookworm', 'a2': 'trixie', 'b1': 'trixie', 'b2': 'trixie', 'hub1': 'bookworm'}
    assert 'Status: active' in lab.ssh('a1', 'ufw status').stdout
    assert lab.ssh('b1', 'firewall-cmd --state').stdout.strip() == 'running'
    assert 'policy drop' in lab.ssh('hub1', 'nft list chain inet admin input').stdout


def test_check_mode_on_fresh_machines_changes_nothing(lab):
    result = site(lab, '--check', '--diff')
    assert result.returncode == 0, result.stdout[-3000:]
    assert all(result.recap[h]['failed'] == 0 for h in HOSTS)
    assert all(result.recap[h]['changed'] > 0 for h in HOSTS), 'check mode should report what it would do'
    for host in HOSTS:
        assert footprint(lab, host) == [], host


def test_first_run_forms_a_full_mesh(lab):
    result = site(lab)
    assert result.returncode == 0, result.stdout[-3000:]
    # the watchers (on by default) complete what the run started, within a few sweeps
    names, reach, status = full_mesh(lab)
    print('\n'.join(status.values()))
    failed = [(s, d) for s, d in all_pairs(names) if not reach[s][d]]
    assert failed == []
    for host in HOSTS:
        assert lab.ssh(host, 'systemctl is-active wglan-watcher').stdout.strip() == 'active', host
        assert footprint(lab, host)[:5] == ['link', 'key', 'fact', 'nft', 'rule']
        mode = lab.ssh(host, 'stat -c %a /etc/wglan/private.key').stdout.strip()
        assert mode == '600'
        # wireguard-go belongs to systemd, not to the task's SSH session that started it
        unit = lab.ssh(host, 'systemctl is-active wglan-wireguard-go-wglan0.service', check=False).stdout.strip()
        assert unit == 'active', host


def test_the_host_firewalls_let_the_mesh_in(lab):
    # wglan_port is not set: the range a node may move to behind a shared NAT (51820 + 32 slots)
    assert 'wglan.mesh:wglan0 udp/51820-51851' in lab.ssh('hub1', 'nft list chain inet admin input').stdout
    # relays forward at the WireGuard link's ingress, before any firewall chain: no forwarding hole
    assert 'wglan.mesh' not in lab.ssh('hub1', 'nft list chain inet admin forward').stdout
    ufw = lab.ssh('a1', 'ufw status').stdout
    assert re.search(r'^51820:51851/udp\s+ALLOW', ufw, re.M) and 'wglan.mesh:wglan0 relay' not in ufw, ufw
    assert '51820-51851/udp' in lab.ssh('b1', 'firewall-cmd --list-ports').stdout.split()
    assert '51820-51851/udp' in lab.ssh('b1', 'firewall-cmd --permanent --list-ports').stdout.split()


def test_nated_nodes_reach_each_other_directly(lab):
    # a1 and b1 sit behind different NATs: a1's endpoint for b1 is NAT B's public address, and the path
    # is direct (the watcher may have relayed it before the run shared the observations; it goes
    # direct as soon as a handshake completes)
    records = dict((h, json.loads(lab.ssh(h, 'cat /etc/ansible/facts.d/wglan.fact').stdout)) for h in HOSTS)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        status = lab.ssh('a1', 'wglan status').stdout
        if status_rows(status)['b1'][1] == 'direct':
            break
        time.sleep(2)
    assert status_rows(status)['b1'][1] == 'direct', status
    dump = lab.ssh('a1', 'wg show wglan0 endpoints').stdout
    endpoints = dict(line.split('\t') for line in dump.strip().split('\n'))
    assert endpoints[records['b1']['public_key']].startswith('203.0.113.102:')
    assert endpoints[records['a2']['public_key']] == '192.0.2.11:51820'


def test_the_mesh_is_drawn_from_every_node_and_the_picture_opens_in_a_browser(lab):
    """playbooks/graph.yml: wglan_info on every node, wglan_graph on the controller (Graphviz); the SVG in
    chromium has every node, the two sites behind their NATs, and no pair down. Then `wglan graph` on a node."""
    dest = os.path.join(lab.dir, 'mesh.svg')
    result = lab.playbook('wglan.mesh.graph', '-e', 'wglan_graph_dest=%s' % dest)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "'down': []" in result.stdout or 'down []' in result.stdout, result.stdout[-2000:]
    with Browser() as browser:
        dom = browser.dom(dest)
        png = browser.screenshot(dest, os.path.join(lab.dir, 'mesh.png'))
    assert '<svg' in dom and 'parsererror' not in dom and 'This page contains the following errors' not in dom
    for host in HOSTS:
        assert '>%s<' % host in dom, host
    assert 'site behind NAT 203.0.113.101' in dom and 'site behind NAT 203.0.113.102' in dom, dom[:3000]
    assert '5 nodes: 10 direct, 0 relayed, 0 down' in dom or '5 nodes: ' in dom, dom[:3000]
    assert os.path.getsize(png) > 10000
    svg = lab.ssh('a1', 'wglan graph', check=False)
    assert svg.returncode == 0 and svg.stdout.lstrip().startswith('<?xml') and '>b2<' in svg.stdout, svg.stdout[-500:]


def test_second_run_changes_nothing(lab):
    result = site(lab, '--diff')  # --diff: a failure shows what the run would have changed
    assert result.returncode == 0, result.stdout[-3000:]
    assert dict((h, result.recap[h]['changed']) for h in HOSTS) == dict((h, 0) for h in HOSTS), \
        (changed_tasks(result.stdout), result.stdout[-3000:])


def test_limit_run_removes_no_peer_and_contacts_only_the_limit(lab):
    before = dict((h, peers_of(lab, h)) for h in HOSTS)
    assert all(len(p) == 4 for p in before.values())
    # a member outside the limit that does not answer costs nothing: it is not contacted (the
    # version before read every outside member's record over SSH, a timeout for this one)
    inventory = extra_inventory(lab, 'limit.ini', ['ghost ansible_host=203.0.113.250 ansible_port=22'])
    result = site(lab, '--limit', 'a1', inventory=inventory)
    assert result.returncode == 0, result.stdout[-3000:]
    assert set(result.recap) == {'a1'} and result.recap['a1']['changed'] == 0, changed_tasks(result.stdout)
    assert 'UNREACHABLE' not in result.stdout and 'ghost: no record yet' in result.stdout, result.stdout[-3000:]
    assert dict((h, peers_of(lab, h)) for h in HOSTS) == before


def test_a_limit_run_takes_fresher_records_from_the_fact_cache(lab):
    cache = os.path.join(lab.dir, 'factcache')
    env = dict(ANSIBLE_CACHE_PLUGIN='jsonfile', ANSIBLE_CACHE_PLUGIN_CONNECTION=cache)
    result = site(lab, env=env)  # a full run fills the cache with every host's wglan_record
    assert result.returncode == 0, result.stdout[-3000:]
    # (jsonfile names each host's file with a prefix, ansible_facts by default)
    hub_file = [os.path.join(cache, n) for n in os.listdir(cache) if n.endswith('hub1')][0]
    with open(hub_file) as handle:
        stored = json.load(handle)
    # (ansible-core 2.19 keeps the facts as a JSON text under __payload__; earlier ones as they are)
    facts = json.loads(stored['__payload__']) if '__payload__' in stored else stored
    # hub1's record changes while hub1 is outside the next run's limit (a pod CIDR: nothing routes
    # it with pod networking off, so only the records file shows which record a1 used)
    marker = '203.0.113.224/28'
    facts['wglan_record']['pod_cidrs'] = [marker]
    if '__payload__' in stored:
        stored['__payload__'] = json.dumps(facts)
    else:
        stored = facts
    with open(hub_file, 'w') as handle:
        json.dump(stored, handle)
    result = site(lab, '--limit', 'a1', env=env)
    assert result.returncode == 0, result.stdout[-3000:]
    assert set(result.recap) == {'a1'} and result.recap['a1']['changed'] == 0, changed_tasks(result.stdout)
    used = json.loads(lab.ssh('a1', 'cat /etc/wglan/mesh.json').stdout)['records']['hub1']
    assert used['pod_cidrs'] == [marker], used
    # without the cache, a1 keeps using the last record it had (the cache's): none is dropped
    result = site(lab, '--limit', 'a1')
    assert result.returncode == 0 and result.recap['a1']['changed'] == 0, result.stdout[-3000:]
    assert len(peers_of(lab, 'a1')) == 4


def test_unreachable_members_and_duplicate_macs_break_nothing(lab):
    # One run with two faults a fleet has (one run: each run costs a minute or two here):
    # a member that does not answer (and has no record), and two clones with the same MAC.
    before = dict((h, peers_of(lab, h)) for h in HOSTS)
    inventory = extra_inventory(lab, 'faults.ini', ['ghost ansible_host=203.0.113.250 ansible_port=22'])
    with open(inventory, 'a') as handle:
        handle.write('\n[clones]\nb1\nb2\n\n[clones:vars]\nwglan_mac=52:54:00:00:00:99\n')
    result = site(lab, inventory=inventory)
    # the unreachable member: reported, without a record, and no peer lost over it
    assert result.recap['ghost']['unreachable'] == 1
    assert all(result.recap[h]['failed'] == 0 and result.recap[h]['unreachable'] == 0 for h in HOSTS), \
        result.stdout[-3000:]
    assert 'ghost: no record yet' in result.stdout
    assert set(peers_of(lab, 'a1')) == set(before['a1'])
    # the clones: one address, owned by the smaller public key, everywhere alike
    records = dict((h, json.loads(lab.ssh(h, 'cat /etc/ansible/facts.d/wglan.fact').stdout)) for h in HOSTS)
    assert records['b1']['address'] == records['b2']['address']
    shared = records['b1']['address'] + '/128'
    owner = min(records['b1']['public_key'], records['b2']['public_key'])
    allowed = lab.ssh('hub1', 'wg show wglan0 allowed-ips').stdout
    holders = [line.split('\t')[0] for line in allowed.strip().split('\n') if shared in line.split('\t')[1].split()]
    assert holders == [owner]
    assert 'overlaps an address of another peer' in result.stdout
    unaffected = ['a1', 'a2', 'hub1']
    names, reach, _age = mesh_matrix(lab, only=unaffected)
    assert all(reach[s][d] for s in unaffected for d in unaffected if s != d)
    # back to distinct addresses (and no ghost): the whole mesh again
    result = site(lab)
    assert result.returncode == 0, result.stdout[-3000:]
    # the node that gave up the shared address comes back as a new peer everywhere; pairs across the
    # two NAT sites may need the watchers' sweep (or a relay) again, as after the first run
    started = time.monotonic()
    names, reach, _status = full_mesh(lab)
    print('whole mesh again %.1f s after the run' % (time.monotonic() - started))
    assert [(s, d) for s, d in all_pairs(names) if not reach[s][d]] == []
    assert dict((h, len(peers_of(lab, h))) for h in HOSTS) == dict((h, 4) for h in HOSTS)


def test_an_ad_hoc_call_over_a_tty_leaves_a_running_interface(lab):
    # `ansible -m` with Ansible's defaults runs the module over `ssh -tt`: the session ends with the
    # task, and what it left in the session would get SIGHUP. created must mean it is still there.
    # settings_path that holds nothing: an interface without peers, not a copy of the mesh's (a call
    # that names no source takes the saved settings, and a second device with the mesh's key and
    # peers would pull the peers' endpoints away from wglan0)
    args = 'interface=wgtty0 backend=userspace listen_port=51999 settings_path=/nonexistent/settings.json'
    try:
        result = lab.adhoc('a2', 'wglan.mesh.wglan_peers', args)
        assert 'a2 | CHANGED' in result.stdout and '"created": true' in result.stdout, result.stdout[-2000:]
        time.sleep(2)
        assert lab.ssh('a2', 'ip link show wgtty0', check=False).returncode == 0, 'the interface died with the task'
        assert lab.ssh('a2', 'systemctl is-active wglan-wireguard-go-wgtty0').stdout.strip() == 'active'
        gone = lab.adhoc('a2', 'wglan.mesh.wglan_peers', 'interface=wgtty0 state=absent')
        assert '"changed": true' in gone.stdout, gone.stdout[-2000:]
        assert lab.ssh('a2', 'ip link show wgtty0', check=False).returncode != 0
        assert lab.ssh('a2', 'systemctl is-active wglan-wireguard-go-wgtty0', check=False).stdout.strip() != 'active'
    finally:  # never leave it to the tests after this one
        lab.ssh('a2', 'systemctl stop wglan-wireguard-go-wgtty0; ip link del wgtty0', check=False)


def test_a_crashed_wireguard_go_is_restarted_and_the_watcher_restores_the_mesh(lab):
    old = lab.ssh('b2', 'systemctl show -p MainPID --value wglan-wireguard-go-wglan0').stdout.strip()
    started = time.monotonic()
    lab.ssh('b2', 'kill -9 %s' % old)
    names, reach, _status = full_mesh(lab)
    print('mesh whole again %.1f s after wireguard-go was killed' % (time.monotonic() - started))
    assert [(s, d) for s, d in all_pairs(names) if not reach[s][d]] == []
    new = lab.ssh('b2', 'systemctl show -p MainPID --value wglan-wireguard-go-wglan0').stdout.strip()
    assert new not in ('0', old), (old, new)


def wait_for_rule(lab, host, chain, timeout=90):
    """Seconds until our rule is in the chain again (None: not within timeout)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if 'wglan.mesh:wglan0 udp/51820-51851' in lab.ssh(host, 'nft list chain %s' % chain, check=False).stdout:
            return time.monotonic() - started
        time.sleep(0.2)
    return None


def wait_for_table(lab, host, table, timeout=30):
    """Seconds until the table exists (None: not within timeout)."""
    started = time.monotonic()
    while time.monotonic() - started < timeout:
        if lab.ssh(host, 'nft list table %s' % table, check=False).returncode == 0:
            return time.monotonic() - started
        time.sleep(0.2)
    return None


def test_the_watcher_puts_back_what_an_admin_flush_removed(lab):
    # Debian's nftables.conf starts with `flush ruleset`: a restart of nftables takes our holes and table
    for command in ('systemctl restart nftables', 'nft flush ruleset && nft -f /etc/nftables.conf'):
        lab.ssh('hub1', command)
        took = wait_for_rule(lab, 'hub1', 'inet admin input')
        # (the two come back in either order: a flush between the watcher's table check and its
        # firewall check puts the hole back a tick before the table)
        table = wait_for_table(lab, 'hub1', 'inet wglan')
        print('%s: the watcher put the port back after %.1f s, its table after %.1f s'
              % (command, took or -1, table or -1))
        journal = lab.ssh('hub1', 'journalctl -u wglan-watcher -n 30 --no-pager').stdout
        assert took is not None, journal
        assert table is not None, journal
    names, reach, _status = full_mesh(lab)
    assert [(s, d) for s, d in all_pairs(names) if not reach[s][d]] == []


def test_a_firewalld_reload_keeps_the_port(lab):
    lab.ssh('b1', 'firewall-cmd --reload')
    assert '51820-51851/udp' in lab.ssh('b1', 'firewall-cmd --list-ports').stdout.split()
    names, reach, _status = full_mesh(lab)
    assert [(s, d) for s, d in all_pairs(names) if not reach[s][d]] == []


def test_a_run_reports_and_repairs_a_flushed_firewall(lab):
    # without the watcher (stopped by its admin), the role's next run is what repairs it
    lab.ssh('hub1', 'systemctl stop wglan-watcher && systemctl restart nftables')
    assert wait_for_rule(lab, 'hub1', 'inet admin input', timeout=3) is None
    # wglan_firewall=false: neither the run nor the watcher it starts touches the host firewall
    alone = site(lab, '--limit', 'hub1', '-e', 'wglan_firewall=false')
    assert alone.returncode == 0, alone.stdout[-3000:]
    assert wait_for_rule(lab, 'hub1', 'inet admin input', timeout=5) is None
    assert lab.ssh('hub1', 'systemctl is-active wglan-watcher').stdout.strip() == 'active'
    result = site(lab, '--limit', 'hub1')
    assert result.returncode == 0, result.stdout[-3000:]
    assert result.recap['hub1']['changed'] > 0
    block = result.stdout.split('Make this host a node: record, firewall, peers, rules and watcher]')[1]
    assert re.search(r'^changed: \[hub1\]', block.split('TASK [')[0], re.M), block[:500]
    assert wait_for_rule(lab, 'hub1', 'inet admin input', timeout=3) is not None
    assert lab.ssh('hub1', 'systemctl is-active wglan-watcher').stdout.strip() == 'active'
    names, reach, _status = full_mesh(lab)
    assert [(s, d) for s, d in all_pairs(names) if not reach[s][d]] == []


# Segments through the role: the two NAT sites are two segments, hub1 (public) the gateway between them.
SEGMENTED = dict(a1=['edge'], a2=['edge'], b1=['core'], b2=['core'], hub1=['edge', 'core'])
FILTER = ['-e', '{"wglan_segment_filter": true, "wglan_segment_policy": [{"from": "edge", "to": "core", "ports": [22]}]}']


SEGMENTS_PLAY = '''
- name: Our mesh, in segments, with a filter
  hosts: wglan
  become: true
  roles:
    - role: wglan.mesh.node
      vars:
        wglan_segment_filter: true
        wglan_segment_policy:
          - {from: edge, to: core, ports: [22]}
'''


def segmented_inventory(lab):
    """The lab's inventory with each host's segments, and hub1 a preferred relay (the gateway)."""
    with open(lab.inventory) as handle:
        lines = handle.read().split('\n')
    out = []
    for line in lines:
        name = line.split(' ')[0]
        if name in SEGMENTED:
            line += ' wglan_segments="%s"' % (SEGMENTED[name],) + (' wglan_relay=preferred' if name == 'hub1' else '')
        out.append(line)
    path = os.path.join(lab.dir, 'segments.ini')
    with open(path, 'w') as handle:
        handle.write('\n'.join(out))
    return path


def mesh_address(lab, host):
    return json.loads(lab.ssh(host, 'cat /etc/ansible/facts.d/wglan.fact').stdout)['address']


def ping_stats(lab, src, address, count=50):
    """(hop limit of the answers, median RTT in ms) of count pings over the mesh; (None, None): no answer."""
    out = lab.ssh(src, 'ping -6 -n -c %d -i 0.05 -W 2 %s' % (count, address), check=False, timeout=120).stdout
    times = sorted(float(t) for t in re.findall(r'time=([\d.]+)', out))
    hops = re.findall(r'ttl=(\d+)', out)
    return (int(hops[0]), times[len(times) // 2]) if times else (None, None)


def wait_ping(lab, src, address, hop, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if ping_stats(lab, src, address, count=1)[0] == hop:
            return True
        time.sleep(2)
    return False


def test_two_segments_with_a_gateway_through_the_role_and_the_filter(lab):
    """The whole mesh first: a1 reaches b1 directly across both NATs. Then the sites as segments (edge: a1,
    a2; core: b1, b2) and hub1 the gateway in both: a1 and b1 are no longer peers and reach each other
    through hub1 (one hop more). Then the segment filter with the policy "edge to core, TCP 22": a1 opens
    b1's SSH port over the mesh, b1 cannot open a1's, and neither pings the other; each still pings hub1.
    Then the whole mesh again, without the filter."""
    b1, a1, hub1 = mesh_address(lab, 'b1'), mesh_address(lab, 'a1'), mesh_address(lab, 'hub1')
    assert wait_ping(lab, 'a1', b1, 64), 'a1 and b1 are peers in the whole mesh'
    direct = ping_stats(lab, 'a1', b1)
    inventory = segmented_inventory(lab)
    result = site(lab, inventory=inventory)
    assert result.returncode == 0, result.stdout[-3000:]
    keys = dict((h, json.loads(lab.ssh(h, 'cat /etc/ansible/facts.d/wglan.fact').stdout)['public_key']) for h in HOSTS)
    assert sorted(peers_of(lab, 'a1')) == sorted([keys['a2'], keys['hub1']])
    assert sorted(peers_of(lab, 'b1')) == sorted([keys['b2'], keys['hub1']])
    assert sorted(peers_of(lab, 'hub1')) == sorted(keys[h] for h in HOSTS if h != 'hub1')
    assert wait_ping(lab, 'a1', b1, 63) and wait_ping(lab, 'b2', a1, 63), 'through the gateway: one hop more'
    gateway = ping_stats(lab, 'a1', b1)
    sys.stdout.write('\nsegments: a1 -> b1 median RTT %.3f ms direct (hop limit %d), %.3f ms through the gateway hub1 '
                     '(hop limit %d)\n' % (direct[1], direct[0], gateway[1], gateway[0]))
    filtered = site(lab, *FILTER, inventory=inventory)
    assert filtered.returncode == 0, filtered.stdout[-3000:]
    tcp = 'timeout 3 bash -c "echo > /dev/tcp/%s/22" && echo open || echo closed'
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and ping_stats(lab, 'a1', b1, count=1)[0] is not None:
        time.sleep(1)
    assert ping_stats(lab, 'a1', b1, count=3)[0] is None and ping_stats(lab, 'b1', a1, count=3)[0] is None
    assert lab.ssh('a1', tcp % b1).stdout.strip() == 'open'
    assert lab.ssh('b1', tcp % a1).stdout.strip() == 'closed'
    assert ping_stats(lab, 'a1', hub1, count=3)[0] == 64 and ping_stats(lab, 'b1', hub1, count=3)[0] == 64
    # the same through a play of the user's own (the role with the filter's variables): nothing to change
    play = os.path.join(lab.dir, 'our-segments.yml')
    with open(play, 'w') as handle:
        handle.write(SEGMENTS_PLAY)
    again = lab.playbook_with_inventory(inventory, play)
    again.recap = recap(again.stdout)
    assert again.returncode == 0 and dict((h, again.recap[h]['changed']) for h in HOSTS) == dict(
        (h, 0) for h in HOSTS), (changed_tasks(again.stdout), again.stdout[-3000:])
    # back to the whole mesh, without filter (the tests below start from it)
    whole = site(lab)
    assert whole.returncode == 0, whole.stdout[-3000:]
    names, reach, _status = full_mesh(lab)
    assert [(s, d) for s, d in all_pairs(names) if not reach[s][d]] == []
    assert lab.ssh('a1', 'nft list chain inet wglan filter_in', check=False).returncode != 0


# A second mesh over the same machines: its own name, interface, port, prefix, route table, rule priority
# and route mark (outside the first's mask, 0x60); the same WireGuard mark (0x20) as every mesh on a host.
# It admits its members by certificates (wglan_admission, not the default: this mesh is where the lab
# proves them, beside the default mesh, which keeps the role's defaults).
MGMT = ['-e', 'wglan_mesh=mgmt', '-e', 'wglan_interface=wgmgmt0', '-e', 'wglan_port=51900',
        '-e', 'wglan_prefix=fd42:1::/64', '-e', 'wglan_route_table=181', '-e', 'wglan_rule_priority=32501',
        '-e', 'wglan_route_mark=256', '-e', 'wglan_mark_mask=288', '-e', 'wglan_admission=certificates']


def mgmt_mesh(lab, timeout=90):
    """Poll (bounded) until every ordered pair pings over wgmgmt0; returns the pairs that do not."""
    deadline = time.monotonic() + timeout
    while True:
        names, reach, _age = mesh_matrix(lab, interface='wgmgmt0', fact='wglan_mgmt')
        failing = [(s, d) for s, d in all_pairs(names) if not reach[s][d]]
        if not failing or time.monotonic() > deadline:
            return failing
        time.sleep(3)


def test_a_second_mesh_that_clashes_with_the_first_fails_before_it_changes_anything(lab):
    result = site(lab, *(MGMT + ['-e', 'wglan_route_table=180']))  # (the last -e wins)
    assert result.returncode != 0
    assert 'mesh mgmt and mesh (default) both use route table 180 (wglan_route_table)' in result.stdout, \
        result.stdout[-3000:]
    for host in HOSTS:
        assert lab.ssh(host, 'ip link show wgmgmt0', check=False).returncode != 0, host
        assert lab.ssh(host, 'test -e /etc/wglan/mgmt', check=False).returncode != 0, host


def test_a_second_mesh_over_the_same_machines_forms_beside_the_first(lab):
    result = site(lab, *MGMT)
    assert result.returncode == 0, result.stdout[-3000:]
    assert mgmt_mesh(lab) == []
    names, reach, _status = full_mesh(lab)
    assert [(s, d) for s, d in all_pairs(names) if not reach[s][d]] == []
    for host in HOSTS:
        assert lab.ssh(host, 'systemctl is-active wglan-watcher@mgmt wglan-watcher').stdout.split() == ['active'] * 2
        assert lab.ssh(host, 'nft list table inet wglan_mgmt >/dev/null && ip -6 rule show | grep -c "lookup 181"'
                       ).stdout.strip() == '1', host
        assert lab.ssh(host, 'stat -c %a /etc/wglan/mgmt/private.key').stdout.strip() == '600'
        # each mesh's record: the other mesh's interface is no place where the node is
        default = json.loads(lab.ssh(host, 'cat /etc/ansible/facts.d/wglan.fact').stdout)
        mgmt = json.loads(lab.ssh(host, 'cat /etc/ansible/facts.d/wglan_mgmt.fact').stdout)
        assert default['public_key'] != mgmt['public_key'] and mgmt['address'].startswith('fd42:1:')
        assert not [ip for ip in default['node_ips'] if ip.startswith('fd42:1:')], default
        assert not [ip for ip in mgmt['node_ips'] if ip.startswith('200:1001:')], mgmt
        # the mgmt mesh's members are certified: the record carries the certificate, signed claims
        assert mgmt.get('certificate', '').startswith('wglan-cert-1.') and mgmt.get('claims_sig'), mgmt
        assert 'certificate' not in default
    # the CA key stayed on the controller, 0600, and appeared in no output
    ca_key = os.path.join(os.path.dirname(lab.inventory), 'wglan-ca-mgmt.key')
    assert oct(os.stat(ca_key).st_mode & 0o777) == '0o600'
    with open(ca_key) as handle:
        secret = handle.read().strip().split(':', 1)[1]
    assert secret not in result.stdout
    for host in HOSTS:
        assert lab.ssh(host, 'grep -rl %s /etc /run /var/log 2>/dev/null | head -1' % secret[:24], check=False
                       ).stdout.strip() == '', host
    # the names of both meshes, each in its own block
    found = lab.ssh('a1', 'getent ahosts b1.mgmt.wglan.internal; getent ahosts b1.wglan.internal').stdout
    b1 = json.loads(lab.ssh('b1', 'cat /etc/ansible/facts.d/wglan_mgmt.fact').stdout)
    assert b1['address'] in found and '200:1001:' in found, found
    # the way the README shows it: one play, the role once per mesh; nothing left to change for either
    path = os.path.join(lab.dir, 'both.yml')
    with open(path, 'w') as handle:
        handle.write(BOTH)
    again = lab.playbook_with_inventory(lab.inventory, path)
    again.recap = recap(again.stdout)
    assert again.returncode == 0 and dict((h, again.recap[h]['changed']) for h in HOSTS) == dict(
        (h, 0) for h in HOSTS), (changed_tasks(again.stdout), again.stdout[-3000:])
    assert again.stdout.count('Make this host a node: record, firewall, peers, rules and watcher]') == 2, again.stdout[-3000:]


BOTH = '''
- name: Both meshes, the role included once for each
  hosts: wglan
  become: true
  gather_facts: false
  roles:
    - role: wglan.mesh.node
    - role: wglan.mesh.node
      vars:
        wglan_mesh: mgmt
        wglan_interface: wgmgmt0
        wglan_port: 51900
        wglan_prefix: "fd42:1::/64"
        wglan_route_table: 181
        wglan_rule_priority: 32501
        wglan_route_mark: 256
        wglan_mark_mask: 288
        wglan_admission: certificates
'''


def mgmt_peer_keys(lab, host):
    return set(lab.ssh(host, 'wg show wgmgmt0 peers').stdout.split())


def test_a_node_the_operator_revokes_is_dropped_by_every_other_node(lab):
    """One run with wglan_revoked_names: the CA on the controller signs the list, every node drops b2 (whose
    own record and certificate are still published); a run without it admits b2 again."""
    b2 = json.loads(lab.ssh('b2', 'cat /etc/ansible/facts.d/wglan_mgmt.fact').stdout)['public_key']
    others = [h for h in HOSTS if h != 'b2']
    assert all(b2 in mgmt_peer_keys(lab, h) for h in others)
    result = site(lab, *(MGMT + ['-e', '{"wglan_revoked_names": ["b2"]}']))
    assert result.returncode == 0, result.stdout[-3000:]
    assert [h for h in others if b2 in mgmt_peer_keys(lab, h)] == [], 'b2 still a peer'
    # the watchers hold the list too: b2 does not come back between runs
    time.sleep(5)
    assert [h for h in others if b2 in mgmt_peer_keys(lab, h)] == []
    again = site(lab, *MGMT)
    assert again.returncode == 0, again.stdout[-3000:]
    assert mgmt_mesh(lab) == []


PINGS = '''
pkill -INT -f "ping -6 -I wgmgmt0" 2>/dev/null; rm -f /tmp/mgmt-ping-*
for target in %s; do
  setsid nohup timeout -s INT 300 ping -6 -I wgmgmt0 -i 0.2 -W 1 "${target#*=}" > "/tmp/mgmt-ping-${target%%=*}" 2>&1 &
done
'''


def test_the_first_mesh_removed_while_the_second_keeps_every_pair(lab):
    """state absent for the default mesh while every machine pings every other over the mgmt mesh: the mgmt
    mesh loses nothing (its WireGuard packets never went through the first mesh's tunnel), and keeps its
    watcher, program and files."""
    addresses = dict((h, json.loads(lab.ssh(h, 'cat /etc/ansible/facts.d/wglan_mgmt.fact').stdout)['address'])
                     for h in HOSTS)
    for host in HOSTS:
        lab.ssh(host, PINGS % ' '.join('%s=%s' % (d, a) for d, a in addresses.items() if d != host))
    result = site(lab, '-e', 'wglan_state=absent')
    time.sleep(2)
    stats = {}
    for host in HOSTS:
        out = lab.ssh(host, 'pkill -INT -f "ping -6 -I wgmgmt0"; sleep 1; grep -H "packets transmitted" /tmp/mgmt-ping-*',
                      check=False).stdout
        for line in out.splitlines():
            target = line.split(':')[0].rsplit('-', 1)[1]
            sent, received = [int(n) for n in re.findall(r'(\d+) (?:packets transmitted|received)', line)]
            stats['%s->%s' % (host, target)] = (sent, sent - received)
    assert result.returncode == 0, result.stdout[-3000:]
    print('\nmgmt mesh while the default mesh was removed (pair: sent, lost): %s' % sorted(stats.items()))
    assert len(stats) == len(HOSTS) * (len(HOSTS) - 1), stats
    assert all(sent > 50 for sent, _lost in stats.values()), stats
    assert [(pair, lost) for pair, (_sent, lost) in stats.items() if lost > 2] == [], stats
    for host in HOSTS:
        gone = lab.ssh(host, 'ip link show wglan0 >/dev/null 2>&1 && echo link; nft list table inet wglan >/dev/null 2>&1 '
                             '&& echo nft; ip rule show | grep -q "lookup 180" && echo rule; test -e /etc/wglan/settings.json '
                             '&& echo settings; systemctl is-active wglan-watcher', check=False).stdout.split()
        assert gone in (['inactive'], ['unknown']), (host, gone)
        kept = lab.ssh(host, 'systemctl is-active wglan-watcher@mgmt; test -x /usr/local/sbin/wglan && echo command; '
                             'grep -c "BEGIN wglan.mesh" /etc/hosts', check=False).stdout.split()
        assert kept == ['active', 'command', '1'], (host, kept)
    assert mgmt_mesh(lab, timeout=30) == []


def test_the_last_mesh_removed_leaves_nothing_of_the_collection_running(lab):
    result = site(lab, *(MGMT + ['-e', 'wglan_state=absent']))
    assert result.returncode == 0, result.stdout[-3000:]
    for host in HOSTS:
        left = lab.ssh(host, 'ip link show wgmgmt0 >/dev/null 2>&1 && echo link; nft list tables | grep wglan; '
                             'ip rule show | grep "lookup 18"; ls /etc/systemd/system | grep wglan-watcher; '
                             'test -e /usr/local/sbin/wglan && echo command; grep "wglan.mesh" /etc/hosts; '
                             'ls /etc/wglan/mgmt', check=False).stdout.split()
        assert left == ['private.key'], (host, left)
