"""When the watcher probes a silent peer (liveness.unanswered: the one definition, next to "up"): sooner under traffic, never for keepalives alone."""
from ansible_collections.wglan.mesh.plugins.module_utils.model import liveness

KEEPALIVE = 25


def test_keepalives_and_a_handshake_alone_never_count_as_unanswered():
    # at rest this node sends a keepalive every interval, and now and then a handshake initiation
    for tenths in range(0, 10 * (2 * KEEPALIVE + 15)):
        silence = tenths / 10.0
        sent = liveness.KEEPALIVE_BYTES * (1 + int(silence // KEEPALIVE)) + liveness.HANDSHAKE_BYTES
        assert not liveness.unanswered(sent, silence, KEEPALIVE), silence


def test_data_sent_into_silence_is_unanswered_after_a_few_seconds():
    ping = 32 + 96  # an 84-byte ping, padded and sealed
    seconds = [s for s in range(0, 30) if liveness.unanswered(ping * s, float(s), KEEPALIVE)]
    assert seconds and seconds[0] == int(liveness.UNANSWERED) + 1, seconds
    assert seconds == list(range(seconds[0], 30))  # and it stays so
    # a trickle smaller than keepalives is not data worth a probe
    assert not liveness.unanswered(40, 20.0, KEEPALIVE)


def test_nothing_sent_is_never_unanswered():
    assert not any(liveness.unanswered(0, s / 2.0, KEEPALIVE) for s in range(200))
