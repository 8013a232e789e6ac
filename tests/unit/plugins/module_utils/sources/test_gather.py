"""The records kept from the last time each source answered: one file per writer (the run's, the
watcher's), the watcher's read over the run's."""
import json

import pytest

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.model import settings
from ansible_collections.wglan.mesh.plugins.module_utils.sources import gather


def test_the_watchers_records_file_sits_next_to_the_runs():
    assert settings.watcher_records_path('/etc/wglan/mesh.json') == '/etc/wglan/watcher-mesh.json'
    assert settings.watcher_records_path('mesh.json') == 'watcher-mesh.json'


def test_the_watchers_copy_of_its_live_sources_wins_and_the_inventory_stays_the_runs(tmp_path):
    run = tmp_path / 'mesh.json'
    own = tmp_path / 'watcher-mesh.json'
    run.write_text(json.dumps(dict(version=1, records={'a1': {'name': 'a1'}}, discovery={'d1': {'name': 'old'}})))
    params = dict(state_path=str(run), sources_state_path=str(own))
    assert gather.kept_records(params)['discovery'] == {'d1': {'name': 'old'}}  # no copy of its own yet
    own.write_text(json.dumps(dict(version=1, records={'a1': {'name': 'stale'}}, discovery={'d1': {'name': 'new'}})))
    kept = gather.kept_records(params)
    assert kept['discovery'] == {'d1': {'name': 'new'}} and kept['records'] == {'a1': {'name': 'a1'}}
    own.write_text('{broken')
    assert gather.kept_records(params)['discovery'] == {'d1': {'name': 'old'}}  # a broken cache is no cache
    assert gather.kept_records(dict(state_path=str(run)))['discovery'] == {'d1': {'name': 'old'}}  # a run's own view


def test_a_records_file_that_is_not_ours_is_a_clear_error(tmp_path):
    run = tmp_path / 'mesh.json'
    run.write_text('[1, 2]')
    with pytest.raises(WglanError) as error:
        gather.kept_records(dict(state_path=str(run)))
    assert 'mesh.json is not a records file' in str(error.value)
