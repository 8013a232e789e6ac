import ipaddress

import pytest
from hypothesis import given, strategies as st

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.model import peer_names
from ansible_collections.wglan.mesh.plugins.module_utils.model.node_records import NodeRecord
from ansible_collections.wglan.mesh.plugins.module_utils.model.peers import Peer

K = ['%s=' % (c * 43) for c in 'ABC']
HOSTS = '127.0.0.1\tlocalhost\n# a comment the admin wrote\n192.0.2.7 printer\n'


def record(name, key, six, four=None):
    return NodeRecord(name, key, ipaddress.IPv6Address(six), address4=ipaddress.IPv4Address(four) if four else None)


def peer(key, name, *nets):
    return Peer(key, None, [ipaddress.ip_network(n) for n in nets], name=name)


def test_every_node_is_named_with_the_addresses_routed_to_it():
    me = record('A1', K[0], '200:1001::1', '10.98.0.1')
    b2 = record('b2', K[1], '200:1001::2', '10.98.0.2')
    c = record('c', K[2], '200:1001::3', '10.98.0.2')  # lost 10.98.0.2 to b2 (overlap)
    peers = [peer(K[1], 'b2', '200:1001::2/128', '10.98.0.2/32'), peer(K[2], 'c', '200:1001::3/128')]
    found, skipped = peer_names.entries(me, peers, [me, b2, c], 'wglan.internal')
    ip = ipaddress.ip_address
    assert found == [(ip('10.98.0.1'), 'a1.wglan.internal'), (ip('200:1001::1'), 'a1.wglan.internal'),
                     (ip('10.98.0.2'), 'b2.wglan.internal'), (ip('200:1001::2'), 'b2.wglan.internal'),
                     (ip('200:1001::3'), 'c.wglan.internal')]
    assert (ipaddress.ip_address('10.98.0.2'), 'c.wglan.internal') not in found
    assert skipped == []


def test_a_name_that_is_not_a_dns_name_is_skipped_and_reported():
    me = record('me', K[0], '200:1001::1')
    bad = record('web_01 prod', K[1], '200:1001::2')
    found, skipped = peer_names.entries(me, [peer(K[1], 'x', '200:1001::2/128')], [me, bad], 'wglan.internal')
    assert skipped == ['web_01 prod'] and [n for _ip, n in found] == ['me.wglan.internal']


@pytest.mark.parametrize('domain', ['', 'a..b', '-x.internal', 'x_y.internal', 'a b', 'ä.internal'])
def test_a_bad_domain_is_refused(domain):
    with pytest.raises(WglanError):
        peer_names.parse_domain(domain)


def test_the_block_goes_in_once_and_leaves_every_other_line_alone():
    entries = [(ipaddress.ip_address('200:1001::2'), 'b2.wglan.internal')]
    once = peer_names.with_block(HOSTS, entries, 'wglan0')
    assert once.startswith(HOSTS) and '200:1001::2\tb2.wglan.internal\n' in once
    assert peer_names.with_block(once, entries, 'wglan0') == once
    other = peer_names.with_block(once, [(ipaddress.ip_address('fd00::9'), 'x.mgmt.internal')], 'mgmt0')
    changed = peer_names.with_block(other, [], 'wglan0')
    assert 'b2.wglan.internal' not in changed and 'x.mgmt.internal' in changed and changed.startswith(HOSTS)
    assert peer_names.with_block(peer_names.with_block(changed, None, 'wglan0'), None, 'mgmt0') == HOSTS
    # lines the admin adds after the block stay where they are
    edited = once + '198.51.100.9 later\n'
    assert peer_names.with_block(edited, None, 'wglan0') == HOSTS + '198.51.100.9 later\n'


def test_a_block_without_its_end_marker_is_replaced_to_the_end():
    begin, _end = peer_names.markers('wglan0')
    broken = HOSTS + begin + '\n200:1001::9\told.wglan.internal\n'
    fixed = peer_names.with_block(broken, [], 'wglan0')
    assert 'old.wglan.internal' not in fixed and fixed.startswith(HOSTS)


@given(st.lists(st.text(alphabet='abc xyz#\t.0123456789', max_size=30), max_size=8))
def test_any_file_round_trips_without_the_block(lines):
    text = '\n'.join(l for l in lines if not l.startswith('# BEGIN wglan.mesh')) + '\n'
    added = peer_names.with_block(text, [(ipaddress.ip_address('fd00::1'), 'a.wglan.internal')], 'wglan0')
    assert peer_names.with_block(added, None, 'wglan0') == (text if text != '\n' else '\n')
