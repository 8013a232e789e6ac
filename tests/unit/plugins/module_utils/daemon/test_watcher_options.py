"""The watcher's options are validated by one function, at play time (wglan_watcher) and when the watcher
reads them: a bad value is a clear error, never a service that restart-loops."""
import pytest

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.model import watcher_options


def test_defaults_alone_are_valid_and_complete():
    assert watcher_options.validate({}) == watcher_options.DEFAULTS


@pytest.mark.parametrize('bad, words', [
    (dict(metrics_port=70000), 'metrics_port must be a port number'),
    (dict(metrics_port=True), 'metrics_port must be a port number'),
    (dict(sweep_interval=0), 'sweep_interval must be a positive number'),
    (dict(resync='soon'), 'resync must be a positive number'),
    (dict(relay='yes'), 'relay must be true or false'),
    (dict(route_mark=0x80, mark_mask=0x60), 'route_mark must lie within mark_mask'),
    (dict(route_table=0), 'route_table must be a number from 1'),
    (dict(metrics_address='localhost:80'), 'metrics_address must be an IP address'),
    (dict(endpoint_exclude=['10.0.0.0/33']), 'endpoint_exclude'),
    (dict(endpoint_exclude='10.0.0.0/8'), 'endpoint_exclude must be a list'),
    (dict(firewall_udp_ports=['51820-51800']), 'firewall_udp_ports'),
    (dict(firewall_udp_ports=['x']), 'firewall_udp_ports'),
    (dict(sweep=3), 'unknown options sweep'),
])
def test_each_bad_value_is_named(bad, words):
    with pytest.raises(WglanError) as error:
        watcher_options.validate(bad, '/etc/wglan/watcher.json: ')
    assert words in str(error.value) and str(error.value).startswith('/etc/wglan/watcher.json: ')


def test_what_the_role_passes_is_valid():
    options = watcher_options.validate(dict(resync=60.0, sweep_interval=6.0, relay=True, metrics_port=9586,
                                            firewall_udp_ports=[51820, '51820-51851'], endpoint_exclude=['10.0.0.0/8']))
    assert options['metrics_port'] == 9586 and options['publish_every'] == 600.0


def test_the_watcher_notices_a_run_that_brings_only_new_records(tmp_path):
    # the node role's second call of a run can change the records file and nothing else: the
    # watcher must reconcile then, or it puts the old peers back every second until its resync
    from ansible_collections.wglan.mesh.plugins.module_utils.daemon import loop

    class Watcher:
        settings_path = str(tmp_path / 'settings.json')
        config_path = str(tmp_path / 'watcher.json')
        params = {'state_path': str(tmp_path / 'mesh.json')}

    for name in ('settings.json', 'watcher.json', 'mesh.json'):
        (tmp_path / name).write_text('{}')
    seen = [None]
    assert not loop.files_changed(loop.watched_files(Watcher), seen)
    assert not loop.files_changed(loop.watched_files(Watcher), seen)
    (tmp_path / 'mesh.json').write_text('{"records": {"b1": {}}}')
    assert loop.files_changed(loop.watched_files(Watcher), seen)
