"""The watcher's view of a machine that moves: its own new addresses, and peers whose records moved.

These drive the Watcher's bookkeeping with device states built in memory (the
namespace and lab tests run the whole watcher on wireguard-go).
"""
import base64
import json
import time

import pytest

from ansible_collections.wglan.mesh.plugins.module_utils.model import node_records
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.host import watcher_state
from ansible_collections.wglan.mesh.plugins.module_utils.model.peers import Peer
from ansible_collections.wglan.mesh.plugins.module_utils.daemon.watcher import Watcher, load_options
from ansible_collections.wglan.mesh.plugins.module_utils.model.device import DeviceState, PeerStats


def key(n):
    return base64.b64encode(n.to_bytes(32, 'big')).decode()


ME, P1, P2 = key(1), key(2), key(3)


def record(name, k, ips, seen=None):
    raw = dict(name=name, public_key=k, node_ips=ips)
    if seen:
        raw['discovery_observed'] = seen
    return node_records.parse_record(raw)


def peer(k, name):
    return Peer(k, None, [], None, 25, name)


@pytest.fixture
def watcher(tmp_path):
    config = tmp_path / 'watcher.json'
    config.write_text(json.dumps(dict(status_path=str(tmp_path / 'status.json'))))
    w = Watcher(str(tmp_path / 'settings.json'), str(config))
    w.logged = []
    return w


def device(handshakes, rx=100):
    peers = [peer(k, k[:4]) for k in handshakes]
    stats = dict((p.key_hex, PeerStats(h, rx, 100)) for p, h in zip(peers, handshakes.values()))
    return (None, None, DeviceState(peers=peers, stats=stats))


def test_a_peer_whose_record_moved_counts_as_up_only_when_heard_from_again(watcher):
    me = record('me', ME, ['192.0.2.1/24'])
    peers = [peer(P1, 'p1'), peer(P2, 'p2')]
    watcher.liveness.notice_moves(me, [me, record('p1', P1, ['192.0.2.2/24']), record('p2', P2, ['192.0.2.3/24'])], peers)
    assert watcher.liveness.suspect == {}  # the first look is not a move
    before = time.time()
    watcher.liveness.notice_moves(me, [me, record('p1', P1, ['192.0.2.70/26'], '198.51.100.61'),
                                       record('p2', P2, ['192.0.2.3/24'])], peers)
    assert list(watcher.liveness.suspect) == [P1]
    handshake = int(before) - 1  # a handshake from before the move
    assert watcher.liveness.alive(device({P1: handshake, P2: handshake}), {}) == set([P2])
    assert watcher.liveness.alive(device({P1: handshake, P2: handshake}), {}) == set([P2])  # nothing heard since
    found = device({P1: int(time.time()) + 1, P2: handshake})  # a new handshake: up again, no longer suspect
    assert watcher.liveness.alive(found, {}) == set([P1, P2])
    assert watcher.liveness.suspect == {}


def test_anything_received_after_the_move_clears_it(watcher):
    me = record('me', ME, ['192.0.2.1/24'])
    watcher.liveness.notice_moves(me, [me, record('p1', P1, ['192.0.2.2/24'])], [peer(P1, 'p1')])
    handshake = int(time.time()) - 30  # the session from before the move is still valid
    watcher.liveness.rx_seen[P1] = (100, time.monotonic() - 60, True)  # last heard from a minute ago
    watcher.liveness.notice_moves(me, [me, record('p1', P1, ['192.0.2.66/26'])], [peer(P1, 'p1')])
    assert watcher.liveness.alive(device({P1: handshake}, rx=100), {}) == set()
    assert P1 in watcher.liveness.suspect
    # a keepalive on that session came in (from the new place: WireGuard roams to it)
    assert watcher.liveness.alive(device({P1: handshake}, rx=132), {}) == set([P1])
    assert watcher.liveness.suspect == {}


def test_what_came_before_the_news_of_a_move_does_not_count(watcher):
    me = record('me', ME, ['192.0.2.1/24'])
    watcher.liveness.notice_moves(me, [me, record('p1', P1, ['192.0.2.2/24'])], [peer(P1, 'p1')])
    watcher.liveness.rx_seen[P1] = (132, time.monotonic() - 1, True)  # maybe still by the old path
    watcher.liveness.notice_moves(me, [me, record('p1', P1, ['192.0.2.66/26'])], [peer(P1, 'p1')])
    assert watcher.liveness.alive(device({P1: int(time.time()) - 30}, rx=132), {}) == set()
    assert watcher.liveness.alive(device({P1: int(time.time()) - 30}, rx=164), {}) == set([P1])
    assert watcher.liveness.heard_again == set([P1])  # it gets a keepalive back at once


def test_own_move_counts_only_what_comes_after_it(watcher, monkeypatch):
    me = record('me', ME, ['192.0.2.1/24'])
    watcher.liveness.notice_moves(me, [me, record('p1', P1, ['192.0.2.2/24'])], [peer(P1, 'p1')])
    here = ['192.0.2.1/24']
    monkeypatch.setattr(watcher.publisher, 'local_ips', lambda params: list(here))
    params = dict(publish=dict(name='me', public_key=ME, node_ips=here[:]), interface='wg0', addresses=[])
    watcher.refresh_node_ips(params)
    watcher.liveness.rx_seen[P1] = (132, time.monotonic() - 1, True)
    here[:] = ['203.0.113.10/24']
    watcher.refresh_node_ips(dict(params, publish=dict(params['publish'])))
    assert watcher.liveness.alive(device({P1: int(time.time()) - 30}, rx=132), {}) == set()
    assert watcher.liveness.alive(device({P1: int(time.time()) - 30}, rx=164), {}) == set([P1])


def test_the_same_record_again_is_not_a_move(watcher):
    me = record('me', ME, ['192.0.2.1/24'])
    records = [me, record('p1', P1, ['192.0.2.2/24', '2001:db8::2/64'], '198.51.100.9')]
    for _round in range(3):
        watcher.liveness.notice_moves(me, records, [peer(P1, 'p1')])
    assert watcher.liveness.suspect == {}


def test_a_peer_that_left_is_forgotten(watcher):
    me = record('me', ME, ['192.0.2.1/24'])
    watcher.liveness.notice_moves(me, [me, record('p1', P1, ['192.0.2.2/24'])], [peer(P1, 'p1')])
    watcher.liveness.notice_moves(me, [me, record('p1', P1, ['192.0.2.9/24'])], [peer(P1, 'p1')])
    assert P1 in watcher.liveness.suspect
    watcher.liveness.notice_moves(me, [me], [])
    assert watcher.liveness.suspect == {} and watcher.liveness.places == {}


def test_own_move_makes_every_peer_handshake_again(watcher, monkeypatch):
    me = record('me', ME, ['192.0.2.1/24'])
    watcher.liveness.notice_moves(me, [me, record('p1', P1, ['192.0.2.2/24']), record('p2', P2, ['192.0.2.3/24'])],
                                  [peer(P1, 'p1'), peer(P2, 'p2')])
    here = ['192.0.2.1/24']
    monkeypatch.setattr(watcher.publisher, 'local_ips', lambda params: list(here))
    params = dict(publish=dict(name='me', public_key=ME, node_ips=['192.0.2.1/24']), interface='wg0', addresses=[])
    watcher.refresh_node_ips(params)
    assert watcher.liveness.suspect == {} and watcher.publisher.own_ips == here
    watcher.params = params
    assert not watcher.publisher.addresses_changed(watcher.params, watcher.options)
    here[:] = ['203.0.113.10/24']
    assert watcher.publisher.addresses_changed(watcher.params, watcher.options)
    params = dict(publish=dict(name='me', public_key=ME, node_ips=['192.0.2.1/24']), interface='wg0', addresses=[])
    watcher.refresh_node_ips(params)
    assert params['publish']['node_ips'] == ['203.0.113.10/24']  # what is published now
    assert set(watcher.liveness.suspect) == set([P1, P2])


def test_own_move_is_kept_in_the_watchers_own_state_never_in_the_settings(watcher, monkeypatch, tmp_path):
    # an ad-hoc wglan_peers call beside the watcher publishes the addresses the watcher sees now (read from
    # the watcher's state file); the role's settings file has one writer, the role's run, and stays as it was
    import os
    settings = tmp_path / 'settings.json'
    state = tmp_path / 'paths.json'
    old = dict(name='me', public_key=ME, node_ips=['192.0.2.1/24'], observed={P1: '192.0.2.2:51820'})
    settings.write_text(json.dumps(dict(version=1, cluster_token='secret-token', publish=old)))
    before = settings.read_text(), os.stat(str(settings)).st_mtime_ns
    watcher.settings_path = str(settings)
    watcher.params = dict(relays_path=str(state), listen_port=51820)
    watcher.relays.relays = {}
    here = ['203.0.113.10/24', '2001:db8::10/64']
    monkeypatch.setattr(watcher.publisher, 'local_ips', lambda params: list(here))
    params = dict(publish=dict(old), interface='wg0', addresses=[])
    watcher.refresh_node_ips(params)
    assert params['publish']['node_ips'] == here
    assert watcher_state.read(str(state)).node_ips == here
    assert (settings.read_text(), os.stat(str(settings)).st_mtime_ns) == before
    assert 'secret-token' not in state.read_text()
    # back where the role saw it: nothing of the move is left in the state
    here[:] = ['192.0.2.1/24']
    watcher.refresh_node_ips(dict(publish=dict(old), interface='wg0', addresses=[]))
    assert watcher_state.read(str(state)).node_ips is None


def test_no_address_keeps_the_role_s_node_ips(watcher, monkeypatch):
    monkeypatch.setattr(watcher.publisher, 'local_ips', lambda params: [])
    params = dict(publish=dict(name='me', public_key=ME, node_ips=['192.0.2.1/24']), interface='wg0', addresses=[])
    watcher.refresh_node_ips(params)
    assert params['publish']['node_ips'] == ['192.0.2.1/24']


def test_refresh_can_be_turned_off(watcher, monkeypatch):
    watcher.options['refresh_node_ips'] = False
    monkeypatch.setattr(watcher.publisher, 'local_ips', lambda params: ['203.0.113.10/24'])
    params = dict(publish=dict(name='me', public_key=ME, node_ips=['192.0.2.1/24']), interface='wg0', addresses=[])
    watcher.refresh_node_ips(params)
    assert params['publish']['node_ips'] == ['192.0.2.1/24']


@pytest.mark.parametrize('bad', [dict(endpoint_exclude='192.0.2.0/24'), dict(endpoint_exclude=['not a prefix']),
                                 dict(address_check=0), dict(refresh_node_ip=True)])
def test_bad_options_are_refused_with_the_reason(tmp_path, bad):
    path = tmp_path / 'watcher.json'
    path.write_text(json.dumps(bad))
    with pytest.raises(WglanError) as info:
        load_options(str(path))
    assert str(path) in str(info.value)


def test_status_shows_the_mesh_address_first():
    import ipaddress
    from ansible_collections.wglan.mesh.plugins.module_utils.daemon.status import _main_address
    nets = sorted([ipaddress.ip_network('192.0.2.10/32'), ipaddress.ip_network('200:1001::1/128'),
                   ipaddress.ip_network('203.0.113.32/28')], key=lambda n: (n.version, n))
    assert _main_address(nets) == '200:1001::1/128'
    assert _main_address([ipaddress.ip_network('192.0.2.10/32')]) == '192.0.2.10/32'
    assert _main_address([]) == ''
