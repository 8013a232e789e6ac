import base64
import os
import stat

import pytest

from ansible_collections.wglan.mesh.plugins.module_utils.model import keys
from ansible_collections.wglan.mesh.plugins.module_utils.host import key_files
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError

# RFC 7748 section 6.1 test vector (Alice).
ALICE_PRIVATE = bytes.fromhex('77076d0a7318a57d3c16c17251b26645df4c2f87ebc0992ab177fba51db92c2a')
ALICE_PUBLIC = base64.b64encode(bytes.fromhex(
    '8520f0098930a754748b7ddcb43ef75a0dbf3a0d26381af4eba4a98eaa9b4e6a')).decode()


def test_public_key_matches_rfc7748_vector():
    assert keys.public_key_from_private(ALICE_PRIVATE) == ALICE_PUBLIC


@pytest.mark.parametrize('value,fragment', [
    ('', '44 base64'),
    ('abc', '44 base64'),
    ('!' * 43 + '=', 'not valid base64'),
    (base64.b64encode(b'x' * 31).decode(), '32 bytes'),
    (12345, 'base64 string'),
])
def test_decode_key_rejects_bad_keys(value, fragment):
    with pytest.raises(WglanError) as err:
        keys.decode_key(value, 'peer key')
    assert fragment in str(err.value)


def test_decode_key_message_never_echoes_value():
    secret = 'Z' * 43 + '?'
    with pytest.raises(WglanError) as err:
        keys.decode_key(secret, 'private key')
    assert secret not in str(err.value)


def test_generated_keys_differ_and_roundtrip(tmp_path):
    path = str(tmp_path / 'k' / 'private.key')
    first = keys.generate_private_key()
    assert len(first) == 32 and first != keys.generate_private_key()
    key_files.write_private_key(path, first)
    assert key_files.read_private_key(path) == first
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert [n for n in os.listdir(os.path.dirname(path)) if n.startswith('.wglan-key-')] == []


def test_ensure_key_pair_never_replaces_without_rotate(tmp_path):
    path = str(tmp_path / 'private.key')
    made = key_files.ensure_key_pair(path)
    assert made.changed and made.created and made.public_key
    again = key_files.ensure_key_pair(path)
    assert not again.changed and again.public_key == made.public_key
    rotated = key_files.ensure_key_pair(path, rotate=True)
    assert rotated.changed and rotated.rotated and rotated.public_key != made.public_key
    assert rotated.previous_public_key == made.public_key


def test_ensure_key_pair_check_mode_writes_nothing(tmp_path):
    path = str(tmp_path / 'private.key')
    result = key_files.ensure_key_pair(path, check_mode=True)
    assert result.changed and result.public_key is None and not os.path.exists(path)


def test_ensure_key_pair_fixes_loose_mode(tmp_path):
    path = str(tmp_path / 'private.key')
    key_files.write_private_key(path, ALICE_PRIVATE)
    os.chmod(path, 0o644)
    result = key_files.ensure_key_pair(path)
    assert result.changed and result.mode_fixed and result.public_key == ALICE_PUBLIC
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600


def test_garbage_key_file_is_an_error_without_content(tmp_path):
    path = tmp_path / 'private.key'
    path.write_bytes(b'not-a-key-but-maybe-a-secret\n')
    with pytest.raises(WglanError) as err:
        key_files.ensure_key_pair(str(path))
    assert 'maybe-a-secret' not in str(err.value)
    assert path.read_bytes() == b'not-a-key-but-maybe-a-secret\n'


def test_unwritable_directory_is_a_clear_error(tmp_path):
    blocker = tmp_path / 'file'
    blocker.write_text('x')
    with pytest.raises(WglanError) as err:
        key_files.ensure_key_pair(str(blocker / 'private.key'))
    assert 'cannot' in str(err.value)


def test_pair_preshared_key_is_symmetric_and_distinct():
    a, b, c = (keys.public_key_from_private(keys.generate_private_key()) for _i in range(3))
    ab = keys.pair_preshared_key('token', a, b)
    assert ab == keys.pair_preshared_key('token', b, a)
    assert ab != keys.pair_preshared_key('token', a, c)
    assert ab != keys.pair_preshared_key('other-token', a, b)
    assert len(base64.b64decode(ab)) == 32
