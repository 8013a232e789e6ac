"""After a key switch: which pairs the node that switched starts again (model.liveness.stalled_since)."""
import ipaddress

from ansible_collections.wglan.mesh.plugins.module_utils.model.device import PeerStats
from ansible_collections.wglan.mesh.plugins.module_utils.model.liveness import SWITCH_CHECKS, stalled_since
from ansible_collections.wglan.mesh.plugins.module_utils.model.peers import Peer

A = Peer('A' * 43 + '=', '192.0.2.1:51820', [ipaddress.ip_network('fd00::1/128')])
B = Peer('B' * 43 + '=', '192.0.2.2:51820', [ipaddress.ip_network('fd00::2/128')])
C = Peer('C' * 43 + '=', '192.0.2.3:51820', [ipaddress.ip_network('fd00::3/128')])


def test_a_pair_with_no_handshake_since_the_switch_is_stalled():
    switched = 1000.6
    stats = {A.key_hex: PeerStats('1001'), B.key_hex: PeerStats('999')}
    assert stalled_since([A, B], stats, switched) == [B]


def test_a_handshake_in_the_switch_s_own_second_counts_as_after_it():
    # (the device gives whole seconds: a handshake 0.2 s after a switch at .6 reads as the same second)
    assert stalled_since([A], {A.key_hex: PeerStats('1000')}, 1000.6) == []


def test_a_peer_never_handshaken_or_unknown_to_the_stats_is_stalled():
    assert stalled_since([A, C], {A.key_hex: PeerStats('0')}, 1000.0) == [A, C]


def test_the_checks_come_before_wireguard_s_own_retry():
    # WireGuard sends a peer's next handshake 5 s (REKEY_TIMEOUT) after the last: the last check comes before
    # it, so that the node that switched starts the pair again while the peer's retry is still seconds away
    assert list(SWITCH_CHECKS) == sorted(SWITCH_CHECKS) and 0 < SWITCH_CHECKS[0] and SWITCH_CHECKS[-1] < 5
