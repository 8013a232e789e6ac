"""When a wglan_peers call admits by the transition from the token to certificates (model.settings.in_transition):
only for a node whose saved settings had no CA, or were in the transition already, and that asked for it."""
import pytest

from ansible_collections.wglan.mesh.plugins.module_utils.model import settings

CA = 'A' * 43 + '='


@pytest.mark.parametrize('saved, asked, ca, expected', [
    (None, True, CA, False),                                              # a new node: no settings yet
    ({}, True, CA, False),                                                # (or settings it could not read)
    (dict(version=1, ca_public_key=None), True, CA, True),               # it admitted by the token
    (dict(version=1, ca_public_key=CA), True, CA, False),                # it admits by certificates already
    (dict(version=1, ca_public_key=CA, admission_transition=True), True, CA, True),  # the second call of the run
    (dict(version=1, ca_public_key=None), False, CA, False),             # the call that ends it
    (dict(version=1, ca_public_key=None), True, None, False),            # no CA: the token admits anyway
])
def test_the_transition_is_entered_only_from_a_token_mesh_and_left_when_asked(saved, asked, ca, expected):
    assert settings.in_transition(asked, ca, saved) is expected
