# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""wglan_ca (the fleet CA and its revocation list) and wglan_certificate (a node's certificate), both
run on the controller: the CA key never crosses SSH, and never appears in a result, a log or a diff."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.host import state_files
from ansible_collections.wglan.mesh.plugins.module_utils.model import certificates
from ansible_collections.wglan.mesh.plugins.module_utils.model.keys import normalize_key
from ansible_collections.wglan.mesh.plugins.module_utils.module_support import require_libs, run_or_fail

CA_ARGUMENTS = dict(
    path=dict(type='path'),
    key=dict(type='str', no_log=True),
    mesh=dict(type='str', default='wglan0'),
    # (None: the list is left as it is; public keys are no secret)
    revoke_keys=dict(type='list', elements='str', no_log=False),
    revoke_names=dict(type='list', elements='str'),
)

CERT_ARGUMENTS = dict(
    path=dict(type='path'),
    key=dict(type='str', no_log=True),
    mesh=dict(type='str', default='wglan0'),
    record=dict(type='dict', required=True),
    signer=dict(type='str', required=True),
    certificate=dict(type='str'),
    node_ip_prefixes=dict(type='list', elements='str'),
    others=dict(type='dict', default={}),
    lifetime_days=dict(type='int', default=365),
    renew_days=dict(type='int', default=30),
)


def ca_key(params, check_mode, create=True):
    """(raw CA key, created): from params['key'] (a vaulted variable), else the file at params['path'],
    made there (0600) when it does not exist yet and create is true."""
    if params.get('key'):
        return certificates.parse_ca_key(params['key']), False
    path = params.get('path')
    if not path:
        raise WglanError('give the CA key as key (a vaulted variable) or its file as path')
    if os.path.exists(path):
        mode = os.stat(path).st_mode & 0o777
        if mode & 0o077:
            raise WglanError('the CA key %s is readable by others (mode %o): chmod 0600 it' % (path, mode))
        try:
            return certificates.parse_ca_key(state_files.read_text(path)), False
        except WglanError as exc:
            raise WglanError('%s: %s' % (path, exc))
    if not create:
        raise WglanError('the CA key %s does not exist: run wglan_ca first' % path)
    raw = certificates.new_ca_key()
    if not check_mode:
        state_files.replace(path, certificates.ca_key_text(raw).encode('ascii'), 0o600)
    return raw, True


def revocations_path(params):
    return params['path'] + '.revoked' if params.get('path') else None


def _held_list(path, public, mesh):
    """The revocation list kept at path, when this CA signed it for mesh; else None."""
    if not path or not os.path.exists(path):
        return None
    try:
        return certificates.read_revocations(state_files.read_text(path), public, mesh)
    except WglanError:
        return None


def revocation_list(params, raw, check_mode):
    """(the list's text or None, changed): the list naming revoke_keys and revoke_names, kept beside the
    key file: the same names and keys keep the same list (and its issue time); others make a new one.
    Neither given: the list kept is left as it is."""
    path = revocations_path(params)
    held = _held_list(path, certificates.ca_public_key(raw), params['mesh'])
    if params['revoke_keys'] is None and params['revoke_names'] is None:
        return (held.text if held is not None else None), False
    keys = sorted(set(normalize_key(k, 'a key in revoke_keys') for k in params['revoke_keys'] or ()))
    names = sorted(set(params['revoke_names'] or ()))
    if not keys and not names and held is None:
        return None, False
    if held is not None and sorted(held.keys) == keys and sorted(held.names) == names:
        return held.text, False
    issued = int(time.time())
    if held is not None and issued <= held.issued:
        issued = held.issued + 1  # (the newer list always wins, also within one second)
    text = certificates.revocation_list(raw, params['mesh'], keys, names, issued)
    if path and not check_mode:
        state_files.replace(path, (text + '\n').encode('ascii'), 0o644)
    return text, True


def run_ca(module):
    require_libs(module, 'cryptography')
    params = module.params
    raw, created = run_or_fail(module, ca_key, params, module.check_mode)
    listed, list_changed = run_or_fail(module, revocation_list, params, raw, module.check_mode)
    result = dict(changed=created or list_changed, created=created, public_key=certificates.ca_public_key(raw),
                  mesh=params['mesh'], revocations=listed)
    if params.get('path'):
        result['path'] = params['path']
    if module._diff:
        result['diff'] = dict(before=dict(created=False, revoked_keys=None),
                              after=dict(created=created, revoked_keys=params['revoke_keys'] or [],
                                         revoked_names=params['revoke_names'] or []))
    return result


def claimed(record, signer, mesh, prefixes, now, lifetime=certificates.DEFAULT_LIFETIME):
    """The Certificate a node's record (wglan_record's) asks for, not signed yet. prefixes None: the node's
    IPs, exactly (the default)."""
    if not isinstance(record.get('name'), str) or not record.get('public_key'):
        raise WglanError('record: a node record with a name and a public key is needed (wglan_record\'s)')
    if prefixes is None:
        prefixes = [str(value).split('/', maxsplit=1)[0] for value in record.get('node_ips') or []]
    return certificates.wanted(mesh, record['name'], record['public_key'], signer,
                               [record.get('address'), record.get('address4')], record.get('pod_cidrs') or [],
                               prefixes, record.get('segments') or [], now, lifetime)


def stands(certificate, ca_public, wanted, now, renew_before=certificates.RENEW_BEFORE):
    """Whether the certificate (text or None) was signed by this CA and grants what wanted claims for long
    enough: else it is signed again (another CA's, or a corrupt one, too)."""
    if not certificate:
        return False
    try:
        certificates.read_certificate(certificate, ca_public)
    except WglanError:
        return False
    return not certificates.needs_renewal(certificate, wanted, now, renew_before)


def overlapping(params, wanted, ca_public):
    """What the wanted certificate would share with the other nodes' (others: {name: certificate})."""
    grants = {wanted.name: wanted}
    for name, text in (params['others'] or {}).items():
        if name == wanted.name or not text:
            continue
        try:
            grants[name] = certificates.read_certificate(text, ca_public)
        except WglanError:
            continue  # (a certificate this CA did not sign grants nothing)
    return [(a, b, what) for a, b, what in certificates.overlaps(grants) if wanted.name in (a, b)]


def run_certificate(module):
    require_libs(module, 'cryptography')
    params = module.params
    now = int(time.time())
    raw, _created = run_or_fail(module, ca_key, params, module.check_mode, create=False)
    ca_public = certificates.ca_public_key(raw)
    wanted = run_or_fail(module, claimed, params['record'], params['signer'], params['mesh'], params['node_ip_prefixes'],
                         now, params['lifetime_days'] * certificates.DAY)
    clashes = overlapping(params, wanted, ca_public)
    if clashes:
        module.fail_json(msg='refused to sign the certificate of %s: %s' % (wanted.name, '; '.join(
            'it would share %s with %s' % (what, b if a == wanted.name else a) for a, b, what in clashes)))
    current = params.get('certificate')
    renew = not stands(current, ca_public, wanted, now, params['renew_days'] * certificates.DAY)
    text = certificates.sign_certificate(raw, wanted) if renew else current
    grant = certificates.grant_of(text)
    result = dict(changed=renew, certificate=text, fingerprint=certificates.fingerprint(text),
                  name=wanted.name, expires=grant.not_after, ca_public_key=ca_public)
    if module._diff:
        result['diff'] = dict(before=dict(certificate=certificates.fingerprint(current) if current else None),
                              after=dict(certificate=result['fingerprint']))
    return result


def certificate_request(record, signer, ca_public, mesh, prefixes, now):
    """What a node asks the controller to sign ({record, signer}), or None when the certificate its record
    carries stands (wglan_certificate would keep it)."""
    if stands(record.get('certificate'), ca_public, claimed(record, signer, mesh, prefixes, now), now):
        return None
    return dict(record=record, signer=signer)
