"""The releases a node call accepts, and its refusal elsewhere (model/platforms.py)."""
import pytest

from ansible_collections.wglan.mesh.plugins.module_utils.model import platforms


@pytest.mark.parametrize('text', [
    'ID=debian\nVERSION_ID="12"\n', "ID='debian'\nVERSION_ID=13\n", 'ID=ubuntu\nVERSION_ID="24.04"\nID_LIKE=debian\n',
    '# a comment\nID=ubuntu\n\nVERSION_ID="22.04"\n'])
def test_the_supported_releases_pass(text):
    assert platforms.refusal(platforms.parse_os_release(text)) is None


@pytest.mark.parametrize('text,named', [
    ('ID=debian\nVERSION_ID="11"\nPRETTY_NAME="Debian GNU/Linux 11 (bullseye)"\n', 'Debian GNU/Linux 11 (bullseye)'),
    ('ID=debian\nPRETTY_NAME="Debian GNU/Linux forky/sid"\n', 'forky/sid'),  # testing has no VERSION_ID
    ('ID=linuxmint\nID_LIKE="ubuntu debian"\nVERSION_ID=22\n', 'linuxmint 22'),
    ('ID=rocky\nVERSION_ID="9.4"\n', 'rocky 9.4'),
    ('', 'a host without /etc/os-release'),
    ('garbage without an equals sign\n\x00', 'a host without /etc/os-release'),
])
def test_any_other_is_refused_naming_it_the_supported_ones_and_the_needs(text, named):
    msg = platforms.refusal(platforms.parse_os_release(text))
    assert named in msg
    assert 'Debian 12 and 13; Ubuntu 22.04 and 24.04' in msg
    assert 'nothing was changed' in msg and 'wireguard-go' in msg and 'wglan_supported_os_only: false' in msg
