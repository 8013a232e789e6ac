# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r'''
name: token_bits
short_description: How many bits of entropy a cluster token has, at most (an estimate)
version_added: 0.7.0
description:
  - The cluster token is the mesh's one secret; the discovery service's cluster name is its SHA-256, which
    anyone who sees a request to the service sees, so a token that can be guessed can be guessed offline.
  - The estimate is the smaller of two upper bounds, so that a token passes only if both say it can
    be strong. One is its length times the bits of the character classes it uses (lower case 26, upper
    case 26, digits 10, anything else 33). The other is eight bits per byte of the token compressed (a
    repeated or patterned token compresses well). A token of 32 random bytes in base64 (C(openssl rand -base64 32))
    is well above 128 bits; a short word or name is far below.
  - It is an upper bound, not a measure. It counts the letters of words as random letters, so a long passphrase
    of common words passes though it is weaker than the estimate, and it cannot see that a random-looking token
    was copied from somewhere public.
  - The node role refuses a token below 128 bits (C(wglan_min_token_bits)).
positional: _input
options:
  _input:
    description: The token.
    type: str
    required: true
author:
  - wglan.mesh developers (@wglan-mesh)
'''

EXAMPLES = r'''
- name: Refuse a weak token
  ansible.builtin.assert:
    that: wglan_cluster_token | wglan.mesh.token_bits >= 128
    fail_msg: the cluster token is too weak
'''

RETURN = r'''
_value:
  description: The estimate, in bits (0 for an empty token).
  type: int
'''

import math
import string
import zlib

# zlib's fixed cost: a two-byte header, a four-byte checksum, and a block header and end code
ZLIB_OVERHEAD = 8


def token_bits(token):
    text = '' if token is None else str(token)
    if not text:
        return 0
    pool = 0
    for chars, size in ((string.ascii_lowercase, 26), (string.ascii_uppercase, 26), (string.digits, 10)):
        if any(c in chars for c in text):
            pool += size
    if any(not (c in string.ascii_letters or c in string.digits) for c in text):
        pool += 33
    by_classes = len(text) * math.log2(max(pool, 2))
    by_compression = 8 * max(0, len(zlib.compress(text.encode('utf-8'), 9)) - ZLIB_OVERHEAD)
    return int(min(by_classes, by_compression))


class FilterModule:
    def filters(self):
        return {'token_bits': token_bits}
