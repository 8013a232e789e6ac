"""The token strength estimate the node role refuses weak cluster tokens with."""
import base64
import os

import pytest

from ansible_collections.wglan.mesh.plugins.filter.token_bits import token_bits


@pytest.mark.parametrize('token', ['', None, 'hunter2', 'token-a', 'a' * 200, 'P@ssw0rd!' * 4, 'abc' * 30,
                                   '0123456789' * 5])
def test_short_repeated_or_patterned_tokens_are_weak(token):
    assert token_bits(token) < 128, token


@pytest.mark.parametrize('make', [lambda: base64.b64encode(os.urandom(32)).decode(),
                                  lambda: base64.b64encode(os.urandom(16)).decode(),
                                  lambda: os.urandom(16).hex(),
                                  lambda: 'lab-token-' + os.urandom(16).hex()])
def test_random_tokens_of_16_bytes_and_more_are_strong(make):
    for _n in range(20):
        assert token_bits(make()) >= 128


def test_the_estimate_never_exceeds_what_the_classes_allow():
    assert token_bits('0123456789abcdef' * 2) <= 32 * 5.17 + 1
    assert token_bits('ab') < 16
