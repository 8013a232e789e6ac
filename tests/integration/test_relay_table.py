"""The relay table (nft_objects.relay_ruleset) on the real kernel and nftables, packet by packet.

A veth pair joins two namespaces: `send` writes hand-made IPv4 and IPv6 packets
into it and reads back what comes out; `relay` holds the relay table on its end,
which sends what it forwards back out of the same link, the way a relay sends a
packet back into its WireGuard interface. What is checked, on every packet: the
hop limit / TTL is one less, the IPv4 header checksum is still right (it is
rewritten by hand, RFC 1624, in both of its cases: a high byte below 0xff that
goes up by one, and 0xff that wraps and carries into the low byte), nothing else
in the packet changed; a packet for an address the relay does not reach, or
with its hop limit used up, is not sent back; each pair is counted. No sysctl of
either namespace is touched (forwarding stays off in both).
"""
import json
import random
import socket
import struct
import sys
import time
import uuid

import pytest

from ansible_collections.wglan.mesh.plugins.module_utils.model import nft_objects
from netns import COLLECTIONS, Namespace, veth

RELAYED4, OTHER4 = '192.0.2.0/25', '192.0.2.200'
RELAYED6, OTHER6 = 'fd00:77::/64', 'fd00:78::1'

# Runs in `send`: writes each case as a frame to the relay's MAC and prints what came back.
SENDER = r'''
import json, select, socket, struct, sys, time
cases = json.load(sys.stdin)
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(3))
s.bind(('eth0', 0))
mine = bytes.fromhex(open('/sys/class/net/eth0/address').read().strip().replace(':', ''))
out = []
for case in cases:
    packet = bytes.fromhex(case['packet'])
    kind = b'\x08\x00' if packet[0] >> 4 == 4 else b'\x86\xdd'
    s.send(bytes.fromhex(case['to']) + mine + kind + packet)
    back, deadline = None, time.monotonic() + case['wait']
    while time.monotonic() < deadline:
        ready, _, _ = select.select([s], [], [], max(0.0, deadline - time.monotonic()))
        if not ready:
            break
        frame, address = s.recvfrom(4096)
        body = frame[14:]
        # only our own packet coming back (same addresses), not the link's own chatter (MLD, ...)
        where = slice(12, 20) if kind == b'\x08\x00' else slice(8, 40)
        if address[2] == socket.PACKET_OUTGOING or frame[12:14] != kind or body[where] != packet[where]:
            continue
        back = frame[14:14 + len(packet)].hex()
        break
    out.append(back)
print(json.dumps(out))
'''


def checksum(data):
    total = sum(struct.unpack('!%dH' % (len(data) // 2), data))
    while total >> 16:
        total = (total & 0xFFFF) + (total >> 16)
    return ~total & 0xFFFF


def ipv4(ttl, ident, destination):
    """An IPv4 UDP packet (8 bytes of payload); its header checksum, right."""
    header = struct.pack('!BBHHHBBH4s4s', 0x45, 0, 36, ident, 0x4000, ttl, 17, 0,
                         socket.inet_aton('192.0.2.1'), socket.inet_aton(destination))
    header = header[:10] + struct.pack('!H', checksum(header)) + header[12:]
    return header + struct.pack('!HHHH', 4000, 4001, 16, 0) + b'wglan!!!'


def ipv4_with_checksum_high_byte(ttl, high, rng):
    """An IPv4 packet whose header checksum's high byte is `high` (found by trying identifiers)."""
    for _attempt in range(200000):
        packet = ipv4(ttl, rng.randrange(65536), '192.0.2.7')
        if packet[10] == high:
            return packet
    raise AssertionError('no identifier gives a checksum high byte of %#x' % high)


def ipv6(hops, destination):
    payload = b'wglan relay test'
    return (struct.pack('!IHBB', 6 << 28, len(payload), 59, hops)
            + socket.inet_pton(socket.AF_INET6, 'fd00:77::1') + socket.inet_pton(socket.AF_INET6, destination)
            + payload)


@pytest.fixture(scope='module')
def pair():
    tag = uuid.uuid4().hex[:6]
    spaces = []
    try:
        send = Namespace('wglan-%s-send' % tag)
        spaces.append(send)
        relay = Namespace('wglan-%s-relay' % tag)
        spaces.append(relay)
        veth(send, 'eth0', relay, 'eth0')
        index = int(relay.sh('cat /sys/class/net/eth0/ifindex').stdout)
        text = nft_objects.relay_ruleset('eth0', index, [RELAYED4, RELAYED6, '192.0.2.7/32'], 'wglantest_relay')
        relay.cmd(['nft', '-f', '-'], input=text)
        mac = relay.sh('cat /sys/class/net/eth0/address').stdout.strip().replace(':', '')
        yield send, relay, mac
    finally:
        for space in reversed(spaces):
            space.destroy()


def exchange(send, mac, packets, wait=1.0):
    cases = [dict(packet=p.hex(), to=mac, wait=wait) for p in packets]
    proc = send.cmd([sys.executable, '-c', SENDER], input=json.dumps(cases), timeout=30 + len(cases) * wait)
    return [bytes.fromhex(b) if b else None for b in json.loads(proc.stdout)]


def test_ipv4_comes_back_one_hop_older_with_a_right_checksum(pair):
    send, relay, mac = pair
    rng = random.Random(7)
    packets = [ipv4(rng.randint(2, 255), rng.randrange(65536), '192.0.2.%d' % rng.randint(2, 126))
               for _packet in range(60)]
    wrapping = [ipv4_with_checksum_high_byte(rng.randint(2, 255), 0xFF, rng) for _packet in range(20)]
    edge = [ipv4(2, 1, '192.0.2.7'), ipv4(255, 2, '192.0.2.7')]
    assert all(p[10] == 0xFF for p in wrapping)
    sent = packets + wrapping + edge
    for before, after in zip(sent, exchange(send, mac, sent)):
        assert after is not None, 'not relayed: %s' % before.hex()
        assert after[8] == before[8] - 1, (before.hex(), after.hex())
        assert checksum(after[:20]) == 0, 'bad header checksum: %s -> %s' % (before.hex(), after.hex())
        assert after[:8] == before[:8] and after[9] == before[9] and after[12:] == before[12:]


def test_ipv6_comes_back_one_hop_older(pair):
    send, _relay, mac = pair
    sent = [ipv6(hops, 'fd00:77::%x' % (hops + 2)) for hops in (2, 3, 64, 200, 255)]
    for before, after in zip(sent, exchange(send, mac, sent)):
        assert after is not None
        assert after[7] == before[7] - 1 and after[:7] == before[:7] and after[8:] == before[8:]


def test_what_the_relay_does_not_reach_or_may_not_forward_stays(pair):
    send, _relay, mac = pair
    # other destinations, and hop limits used up: left to the host's stack (which drops them)
    sent = [ipv4(64, 5, OTHER4), ipv4(1, 6, '192.0.2.7'), ipv4(0, 7, '192.0.2.7'),
            ipv6(64, OTHER6), ipv6(1, 'fd00:77::5'), ipv6(0, 'fd00:77::5')]
    assert exchange(send, mac, sent, wait=0.5) == [None] * len(sent)


def test_each_pair_is_counted_and_no_sysctl_is_touched(pair):
    send, relay, mac = pair
    exchange(send, mac, [ipv4(64, 9, '192.0.2.9'), ipv6(64, 'fd00:77::9')])
    load = nft_rules_load(relay)
    assert load[('192.0.2.1', '192.0.2.9')][0] >= 1, load
    assert load[('fd00:77::1', 'fd00:77::9')][0] >= 1, load
    for space in (send, relay):
        for switch in ('ipv4/conf/all/forwarding', 'ipv4/conf/eth0/forwarding', 'ipv6/conf/all/forwarding'):
            assert space.sh('cat /proc/sys/net/%s' % switch).stdout.strip() == '0', (space.name, switch)


def test_a_new_set_of_destinations_keeps_the_table_and_its_counts(pair):
    send, relay, mac = pair
    before = nft_rules_load(relay)
    script = ('import sys; sys.path.insert(0, %r); from ansible_collections.wglan.mesh.plugins.module_utils.host '
              'import nftables; print(nftables.ensure_relay_table("eth0", ["192.0.2.128/25", "%s"], True, '
              '"wglantest_relay"))' % (COLLECTIONS, RELAYED6))
    assert relay.cmd([sys.executable, '-c', script]).stdout.strip() == 'False'  # the sets only
    assert nft_rules_load(relay) == before
    back = exchange(send, mac, [ipv4(64, 10, '192.0.2.7'), ipv4(64, 11, OTHER4)])
    assert back[0] is None and back[1] is not None  # 192.0.2.7 left the set, .200 came in


def nft_rules_load(relay):
    deadline = time.monotonic() + 5
    script = ('import sys, json; sys.path.insert(0, %r); from ansible_collections.wglan.mesh.plugins.module_utils.host '
              'import nftables; print(json.dumps(sorted([list(k) + list(v) for k, v in '
              'nftables.relay_load("wglantest_relay").items()])))' % COLLECTIONS)
    while True:
        rows = json.loads(relay.cmd([sys.executable, '-c', script]).stdout)
        if rows or time.monotonic() > deadline:
            return dict(((r[0], r[1]), (r[2], r[3])) for r in rows)
        time.sleep(0.2)
