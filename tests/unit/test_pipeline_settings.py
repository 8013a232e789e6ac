"""A call that names no source takes the saved settings (the ad-hoc refresh)."""
import json

from ansible_collections.wglan.mesh.plugins.module_utils import pipeline

RECORD = dict(version=1, name='n1', public_key='A' * 43 + '=', node_ips=['192.0.2.1/24'])


def call(tmp_path, watcher):
    path = tmp_path / 'settings.json'
    saved = dict(pipeline.DEFAULTS, version=1, publish=RECORD, discovery_url='http://198.51.100.100:8443',
                 cluster_token='t', watcher=watcher)
    path.write_text(json.dumps(saved))
    params = dict((name, None) for name in pipeline.DEFAULTS)
    params.update(records=None, settings_path=str(path))
    assert pipeline.apply_settings(params)
    return params


def test_without_a_watcher_the_saved_record_is_published_again(tmp_path):
    params = call(tmp_path, False)
    assert params['publish'] == RECORD and params['discovery_url'] == 'http://198.51.100.100:8443'


def test_with_a_watcher_it_publishes_and_the_saved_record_is_not_sent(tmp_path):
    params = call(tmp_path, True)
    assert params['publish'] is None  # the watcher's fresher record stays on the service
    assert params['discovery_url'] == 'http://198.51.100.100:8443' and params['watcher'] is True
