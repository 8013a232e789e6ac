"""The watcher's log says a reconcile's warning once, not at every reconcile (daemon.common.Repeats)."""
from ansible_collections.wglan.mesh.plugins.module_utils.daemon.common import Repeats


def test_a_warning_is_said_once_again_after_a_while_and_again_when_it_comes_back():
    repeats = Repeats(every=600)
    assert repeats.fresh(['a lags', 'b is bad', 'a lags'], now=0) == ['a lags', 'b is bad']
    assert repeats.fresh(['a lags', 'b is bad'], now=1) == [], 'the same warnings, a second later: nothing'
    assert repeats.fresh(['a lags', 'c is new'], now=2) == ['c is new']
    assert repeats.fresh(['a lags', 'b is bad'], now=3) == ['b is bad'], 'b went away and came back'
    assert repeats.fresh(['a lags'], now=600) == ['a lags'], 'still there after ten minutes: said again'
    assert repeats.fresh([], now=601) == [] and repeats.said == {}
