import ipaddress

import pytest
from hypothesis import given, strategies as st

from ansible_collections.wglan.mesh.plugins.module_utils.model import address
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError

macs = st.binary(min_size=6, max_size=6).filter(lambda b: b != b'\0' * 6).map(
    lambda b: ':'.join('%02x' % x for x in b))
prefixes = st.tuples(st.integers(0, 2 ** 64 - 1), st.integers(8, 64)).map(
    lambda t: ipaddress.IPv6Network(((t[0] << 64) & ~((1 << (128 - t[1])) - 1), t[1])))


def test_known_eui64_vector():
    # RFC 4291 appendix A: 52:54:00:12:34:56 -> 5054:00ff:fe12:3456
    assert str(address.node_address('0200:1001::/64', '52:54:00:12:34:56')) == '200:1001::5054:ff:fe12:3456'
    assert address.node_cidr('fd00:1::/64', '52-54-00-12-34-56') == 'fd00:1::5054:ff:fe12:3456/64'


@pytest.mark.parametrize('prefix,fragment', [
    ('192.0.2.0/24', 'must be IPv6'),
    ('fd00::/96', 'at most 64'),
    ('fd00::1/64', 'host bits'),
    ('nonsense', 'invalid prefix'),
])
def test_prefix_validation(prefix, fragment):
    with pytest.raises(WglanError) as err:
        address.parse_prefix(prefix)
    assert fragment in str(err.value)


@pytest.mark.parametrize('mac', ['00:00:00:00:00:00', '52:54:00:12:34', 'zz:54:00:12:34:56', '52:54-00:12:34:56'])
def test_mac_validation(mac):
    with pytest.raises(WglanError):
        address.parse_mac(mac)


@given(prefixes, macs)
def test_address_is_inside_prefix_and_stable(prefix, mac):
    first = address.node_address(str(prefix), mac)
    assert first in prefix
    assert first == address.node_address(str(prefix), mac.upper())
    assert int(first) & (2 ** 64 - 1) == address.eui64_interface_id(mac)


@given(macs, macs)
def test_distinct_macs_give_distinct_addresses(mac_a, mac_b):
    same = address.node_address(address.DEFAULT_PREFIX, mac_a) == address.node_address(address.DEFAULT_PREFIX, mac_b)
    assert same == (mac_a == mac_b)


def _link(name, index, mac='52:54:00:00:00:%02x', physical=False, ether=True):
    return {'name': name, 'ifindex': index, 'mac': mac % index if '%' in mac else mac,
            'physical': physical, 'ether': ether}


def test_identity_link_prefers_physical_then_first_ethernet():
    links = [_link('lo', 1, '00:00:00:00:00:00', ether=False), _link('veth0', 2), _link('eth0', 3, physical=True)]
    assert address.choose_identity_link(links) == (links[2], 'physical')
    links = [_link('lo', 1, '00:00:00:00:00:00', ether=False), _link('docker0', 2), _link('host0', 5)]
    assert address.choose_identity_link(links) == (links[2], 'first-ethernet')
    assert address.choose_identity_link(links, exclude=('host0',))[0]['name'] == 'docker0'


def test_identity_link_missing_is_an_error():
    with pytest.raises(WglanError):
        address.choose_identity_link([_link('wglan0', 3, ether=False)])
