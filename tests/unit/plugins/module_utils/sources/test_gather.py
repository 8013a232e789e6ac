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


def test_a_record_kept_from_before_a_key_rotation_is_published_with_the_key_of_now():
    """An ad-hoc run after a rotation reads the settings the run before it saved: their record has the old
    key (and announces the one the node has now). Published as it is, it would take the node back to the
    old key on every peer that reads the source."""
    old, new = 'A' * 43 + '=', 'B' * 43 + '='
    kept = dict(name='n1', public_key=old, next_public_key=new, next_key_at=1800000000, port=51820)
    assert gather.with_own_key(kept, new) == dict(name='n1', public_key=new, port=51820)
    current = dict(name='n1', public_key=new, port=51820)
    assert gather.with_own_key(current, new) is current
    assert gather.with_own_key(None, new) is None and gather.with_own_key(kept, None) is kept
    later = dict(kept, next_public_key='C' * 43 + '=')  # (a next rotation announced: kept)
    assert gather.with_own_key(later, new)['next_public_key'] == 'C' * 43 + '='


def test_after_a_key_rotation_the_published_record_carries_the_succession_its_certificate_needs(tmp_path):
    """The watcher's switch leaves a succession step (the old key signs the new one) beside the key file;
    the record published afterwards, its certificate still for the old key, is admitted through it."""
    import base64
    from ansible_collections.wglan.mesh.plugins.module_utils.daemon import rotating
    from ansible_collections.wglan.mesh.plugins.module_utils.host import key_files
    from ansible_collections.wglan.mesh.plugins.module_utils.model import certificates
    from ansible_collections.wglan.mesh.plugins.module_utils.model.keys import generate_private_key, public_key_from_private
    from ansible_collections.wglan.mesh.plugins.module_utils.model.node_records import parse_record

    key_path = str(tmp_path / 'private.key')
    old = generate_private_key()
    key_files.write_private_key(key_path, old)
    ca = certificates.new_ca_key()
    cert = certificates.issue(ca, 'm', 'n1', public_key_from_private(old), certificates.signer_of(old), ['fdaa::1'],
                              now=1800000000)
    trust = certificates.Trust('m', certificates.ca_public_key(ca))
    publish = dict(name='n1', public_key=public_key_from_private(old), address='fdaa::1', certificate=cert)
    params = dict(private_key_path=key_path)
    assert certificates.check(parse_record(gather.signed(params, publish, trust)), trust, 1800000000)
    # the watcher rotates: the next key, then the switch (the old key signs the step before it goes)
    new = generate_private_key()
    key_files.write_private_key(key_path + '.next', new)
    rotation = rotating.KeyRotation(request_path=str(tmp_path / 'rotate'))
    rotation.pending = (public_key_from_private(new), 0)
    rotation.switch(key_path, 'n1')
    assert key_files.read_private_key(key_path) == new
    moved = dict(publish, public_key=public_key_from_private(new))
    record = parse_record(gather.signed(params, moved, trust))
    assert len(record.succession) == 1
    assert certificates.check(record, trust, 1800000000).name == 'n1'
    # without the step (a node that lost its succession file) the certificate admits nobody with the new key
    (tmp_path / 'private.key.succession.json').unlink()
    with pytest.raises(WglanError):
        certificates.check(parse_record(gather.signed(params, moved, trust)), trust, 1800000000)
    # a fresh certificate for the new key needs no step
    fresh = certificates.issue(ca, 'm', 'n1', public_key_from_private(new), certificates.signer_of(new), ['fdaa::1'],
                               now=1800000000)
    assert not parse_record(gather.signed(params, dict(moved, certificate=fresh), trust)).succession
    assert base64.b64decode(record.public_key)
