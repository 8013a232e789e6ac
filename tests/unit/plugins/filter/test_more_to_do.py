"""more_to_do: whether the node role's tasks after the first wglan_node call can do anything on any host.

The role includes those tasks only when this says so; each case below is a task of
roles/node/tasks/after_first_call.yml that a wrong answer here would skip."""
import importlib.util
import os

from collection import ROOT

spec = importlib.util.spec_from_file_location('more_to_do', os.path.join(ROOT, 'plugins', 'filter', 'more_to_do.py'))
module = importlib.util.module_from_spec(spec)
spec.loader.exec_module(module)
more_to_do = module.more_to_do

# a second run's result: nothing changed, every pair up, this run's records were the ones used
SETTLED = dict(changed=False, missing=[], steps=['keys', 'address', 'record', 'firewall', 'mesh', 'rules', 'watcher'],
               firewall_manager='nftables', live_sources=False, record_changed=False, all_up=True,
               mesh=dict(changed=False), record_digest=None, records_used={})


def play(**changes):
    """Three hosts, each settled, with changes={host: {field: value}}; digests line up."""
    hosts = {}
    for host in ('a', 'b', 'c'):
        result = dict(SETTLED, record_digest=host + '1', records_used={'a': 'a1', 'b': 'b1', 'c': 'c1'})
        result.update(changes.get(host, {}))
        hosts[host] = {'wglan_node': result}
    return ['a', 'b', 'c'], hosts


def test_a_settled_play_has_nothing_more_to_do():
    assert more_to_do(*play()) is False


def test_a_call_that_changed_something_waits_for_its_peers_after():
    assert more_to_do(*play(b=dict(changed=True))) is True


def test_packages_to_install_certificates_to_sign_and_the_move_to_certificates():
    assert more_to_do(*play(c=dict(missing=['wireguard-tools']))) is True
    assert more_to_do(*play(a=dict(certificate_request=dict(record={}, signer='x')))) is True
    assert more_to_do(*play(a=dict(mesh=dict(admission_transition=True)))) is True


def test_a_host_firewall_with_its_own_tool():
    assert more_to_do(*play(b=dict(firewall_manager='ufw'))) is True
    assert more_to_do(*play(b=dict(firewall_manager='firewalld'))) is True


def test_a_new_record_makes_every_other_host_configure_again():
    # a's record is new in this run: b and c used the old one, and must take it although their calls did nothing
    assert more_to_do(*play(a=dict(record_digest='a2'))) is True


def test_a_live_source_is_read_again_without_a_watcher_or_when_a_record_changed():
    live = dict(live_sources=True)
    without_watcher = dict(live, steps=['keys', 'address', 'record', 'mesh', 'rules'])
    assert more_to_do(*play(a=live, b=live, c=live)) is False
    assert more_to_do(*play(a=live, b=without_watcher, c=live)) is True
    assert more_to_do(*play(a=live, b=live, c=dict(live, record_changed=True))) is True


def test_pairs_not_up_share_observations_unless_every_node_has_a_watcher_and_a_live_source():
    assert more_to_do(*play(b=dict(all_up=False))) is True
    live = dict(live_sources=True)
    assert more_to_do(*play(a=live, b=dict(live, all_up=False), c=live)) is False


def test_a_host_without_a_result_lets_the_tasks_decide():
    hosts, hostvars = play()
    del hostvars['c']['wglan_node']
    assert more_to_do(hosts, hostvars) is True
