"""A fallback endpoint (an observation, an own address) never replaces the endpoint of a peer that is up."""

from ansible_collections.wglan.mesh.plugins.module_utils.model.peers import Peer, diff_peers

KEY = 'xTIBA5rboUvnH4htodjb6e697QjLERt1NAB4mZqp8Dg='


def running(endpoint):
    return Peer.from_device(KEY, endpoint, ['200:1001::1/128'], None, 25)


def desired(endpoint, fallback):
    import ipaddress
    return Peer(KEY, endpoint, [ipaddress.ip_network('200:1001::1/128')], None, 25, 'n1', endpoint_fallback=fallback)


def test_fallback_endpoint_keeps_the_roamed_endpoint_of_a_live_peer():
    live = running('203.0.113.101:4903')
    assert diff_peers([desired('192.0.2.74:51820', True)], [live], up={live.key_hex}) == []


def test_fallback_endpoint_is_set_for_a_peer_that_is_not_up():
    ops = diff_peers([desired('192.0.2.74:51820', True)], [running('203.0.113.101:4903')], up=set())
    assert len(ops) == 1 and ops[0].fields == {'endpoint': '192.0.2.74:51820'}


def test_a_sure_endpoint_replaces_even_a_live_one():
    live = running('203.0.113.101:4903')
    ops = diff_peers([desired('192.0.2.74:51820', False)], [live], up={live.key_hex})
    assert len(ops) == 1 and ops[0].fields == {'endpoint': '192.0.2.74:51820'}


def test_replace_keeps_the_fallback_flag():
    assert desired('192.0.2.74:51820', True).replace(preshared_key=None).endpoint_fallback is True
