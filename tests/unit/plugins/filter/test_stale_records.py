"""stale_records: which host of a play configured its peers with an older record of another."""
import importlib.util
import os

from collection import ROOT

spec = importlib.util.spec_from_file_location('stale_records', os.path.join(ROOT, 'plugins', 'filter', 'stale_records.py'))
stale_module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(stale_module)
stale_records = stale_module.stale_records


def hostvars(**results):
    return dict((host, {'wglan_node': result}) for host, result in results.items())


def test_nothing_is_stale_when_every_host_used_every_record_of_this_run():
    hv = hostvars(a=dict(record_digest='1', records_used={'a': '1', 'b': '2'}),
                  b=dict(record_digest='2', records_used={'a': '1', 'b': '2'}))
    assert stale_records(['a', 'b'], hv) == []


def test_a_changed_or_new_record_is_stale_where_the_old_one_was_used():
    hv = hostvars(a=dict(record_digest='1new', records_used={'a': '1', 'b': '2'}),
                  b=dict(record_digest='2', records_used={'a': '1'}),
                  c=dict(record_digest='3', records_used={}))
    assert stale_records(['a', 'b', 'c'], hv) == [
        ['a', 'c'], ['b', 'a'], ['b', 'c'], ['c', 'a'], ['c', 'b']]


def test_hosts_without_a_result_or_a_record_count_for_nothing():
    hv = hostvars(a=dict(record_digest='1', records_used={'b': 'old'}), b=dict(records_used={}))
    hv['c'] = {}  # unreachable: no registered result
    # b has no record this run (check mode on a fresh host): nobody can be behind on it
    assert stale_records(['a', 'b', 'c'], hv) == [['b', 'a']]
