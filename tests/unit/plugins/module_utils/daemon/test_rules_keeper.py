"""When the watcher looks at its nftables table and routing rule (daemon/rules.py): only when what it
wants changed, when the kernel reported a change, or every DRIFT_CHECK s; every time without notices."""
from hypothesis import given, settings, strategies as st

from ansible_collections.wglan.mesh.plugins.module_utils.daemon import rules


class FakeNotices:
    """Notices the test fires: a notice that came moves the generation."""

    def __init__(self):
        self.count = 0

    def fire(self):
        self.count += 1

    def generation(self):
        return self.count


def test_the_first_look_a_change_of_mind_a_notice_and_the_drift_check_are_due():
    assert rules.check_due('w', None, False, 0.0)
    assert not rules.check_due('w', ('w', 0.0), False, 59.0)
    assert rules.check_due('w', ('w', 0.0), False, 60.0)
    assert rules.check_due('w2', ('w', 0.0), False, 1.0)
    assert rules.check_due('w', ('w', 0.0), True, 1.0)
    assert rules.check_due('w', ('w', 0.0), None, 1.0)  # no notices to go by: every time


def test_keepers_sharing_notices_each_see_every_change_once():
    now = [100.0]
    nft, routing = FakeNotices(), FakeNotices()
    keeper = rules.Keeper((nft, routing), clock=lambda: now[0])
    other = rules.Keeper((nft,), clock=lambda: now[0])
    assert keeper.due('w') and other.due('v')  # never looked
    keeper.looked('w')
    other.looked('v')
    now[0] += 1
    assert not keeper.due('w') and not other.due('v')  # nothing heard
    nft.fire()
    assert keeper.due('w') and other.due('v')  # both hear it
    keeper.looked('w')
    assert not keeper.due('w')
    assert other.due('v')  # until each looked
    routing.fire()
    assert keeper.due('w') and other.due('v')  # (other does not depend on the rules, but has not looked yet)
    keeper.looked('w')
    other.looked('v')
    routing.fire()
    assert keeper.due('w') and not other.due('v')
    keeper.looked('w')
    assert not keeper.due('w')
    keeper.forget()  # a look that failed: again at the next apply
    assert keeper.due('w')


def test_a_notice_during_a_look_makes_the_next_apply_look_again():
    """A CI run: the watcher read its rule, an admin's `ip rule del` came, then the look was recorded
    with the notices up to then, so the deleted rule stayed gone until the 60 s check."""
    routing = FakeNotices()
    keeper = rules.Keeper((routing,), clock=lambda: 5.0)
    assert keeper.due('w')
    routing.fire()  # during the look
    keeper.looked('w')
    assert keeper.due('w')
    keeper.looked('w')
    assert not keeper.due('w')


def test_a_look_without_due_is_looked_at_again():
    keeper = rules.Keeper((FakeNotices(),), clock=lambda: 5.0)
    keeper.looked('w')
    assert keeper.due('w')


def test_without_notices_every_apply_looks():
    class Refused:
        def generation(self):
            return None
    keeper = rules.Keeper((Refused(),), clock=lambda: 0.0)
    keeper.looked('w')
    assert keeper.due('w')


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(['a', 'b']), st.sampled_from([True, False, None]),
                          st.floats(min_value=0, max_value=100)), max_size=30))
def test_no_change_of_mind_and_no_notice_is_ever_missed(steps):
    """Replayed observations: a look is due whenever the wanted state differs from the last look, a
    notice came (or none can come), or the drift check is due; and never otherwise."""
    now, last = 0.0, None
    for wanted, noticed, later in steps:
        now += later
        due = rules.check_due(wanted, last, noticed, now)
        expected = last is None or noticed is not False or wanted != last[0] or now - last[1] >= rules.DRIFT_CHECK
        assert due == expected
        if due:
            last = (wanted, now)
