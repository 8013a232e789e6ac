import base64

import pytest

from ansible_collections.wglan.mesh.plugins.module_utils.sources import discovery_crypto as crypto
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError

MEMBER = 'ab' * 32


def test_seal_open_roundtrip_and_ciphertext_hides_content():
    box = crypto.RecordBox('cluster-token')
    sealed = box.seal(MEMBER, 7, {'name': 'node1', 'address': '200:1001::1'})
    assert 'node1' not in base64.b64decode(sealed).decode('latin-1')
    assert box.open(MEMBER, 7, sealed) == {'name': 'node1', 'address': '200:1001::1'}
    assert box.seal(MEMBER, 7, {'a': 1}) != box.seal(MEMBER, 7, {'a': 1}), 'random nonces'


@pytest.mark.parametrize('change', ['flip', 'member', 'seq', 'cluster', 'token', 'short'])
def test_anything_not_made_by_a_token_holder_for_this_slot_is_rejected(change):
    box = crypto.RecordBox('cluster-token')
    sealed = box.seal(MEMBER, 7, {'name': 'node1'})
    member, seq, reader = MEMBER, 7, box
    if change == 'flip':
        raw = bytearray(base64.b64decode(sealed))
        raw[-1] ^= 1
        sealed = base64.b64encode(bytes(raw)).decode()
    elif change == 'member':
        member = 'cd' * 32
    elif change == 'seq':
        seq = 8
    elif change == 'cluster':
        reader = crypto.RecordBox('cluster-token', cluster='another-cluster')
    elif change == 'token':
        reader = crypto.RecordBox('another-token')
    else:
        sealed = base64.b64encode(b'short').decode()
    with pytest.raises(WglanError):
        reader.open(member, seq, sealed)


def test_derived_values_are_distinct_and_stable():
    assert crypto.cluster_id('t') == crypto.cluster_id('t') != crypto.cluster_id('u')
    assert crypto.write_key('t') == crypto.write_key('t') != crypto.write_key('u')
    # knowing the cluster id (a hash of the token) does not give the write key
    assert crypto.write_key('t') not in (crypto.cluster_id('t'),)
    assert len(crypto.write_key_verifier(crypto.write_key('t'))) == 64
    with pytest.raises(WglanError):
        crypto.cluster_id('')
