"""The discovery service's CA and certificate (host.discovery_tls, the module wglan_discovery_tls), and the
node role's filters that find the services and their CAs. Real files in a temporary directory; the
certificates are checked with the ssl module as a client would."""
import base64
import datetime
import os
import ssl
import stat

import pytest
from cryptography import x509

from ansible_collections.wglan.mesh.plugins.filter.discovery_ca import discovery_ca
from ansible_collections.wglan.mesh.plugins.filter.discovery_urls import discovery_urls
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.host import discovery_tls


def cert(path):
    with open(os.path.join(path, 'server.pem'), 'rb') as handle:
        return x509.load_pem_x509_certificate(handle.read())


def test_made_once_keys_private_and_a_second_run_changes_nothing(tmp_path):
    path = str(tmp_path / 'tls')
    first = discovery_tls.ensure(path, ['hub1', '203.0.113.10'])
    assert first['changed'] and first['made'] == ['ca (missing)', 'server certificate (missing)']
    assert first['names'] == ['hub1', '203.0.113.10'] and 'PRIVATE' not in repr(first)
    for name, mode in (('ca.key', 0o600), ('server.key', 0o600), ('ca.pem', 0o644), ('server.pem', 0o644)):
        assert stat.S_IMODE(os.stat(os.path.join(path, name)).st_mode) == mode, name
    again = discovery_tls.ensure(path, ['203.0.113.10', 'hub1'])
    assert again['changed'] is False and again['ca_pem'] == first['ca_pem']
    # a client that trusts the CA alone accepts the certificate for both names
    context = ssl.create_default_context(cadata=first['ca_pem'])
    assert context.cert_store_stats()['x509_ca'] == 1
    assert cert(path).issuer.rfc4514_string().startswith('CN=wglan discovery CA')


def test_a_new_name_an_expiring_or_foreign_certificate_is_made_again(tmp_path):
    path = str(tmp_path / 'tls')
    first = discovery_tls.ensure(path, ['hub1'])
    named = discovery_tls.ensure(path, ['hub1', 'discovery.example.net'])
    assert named['made'] == ['server certificate (names changed)'] and named['ca_pem'] == first['ca_pem']
    soon = discovery_tls.ensure(path, ['hub1', 'discovery.example.net'], days=825, renew_days=900)
    assert soon['made'] == ['server certificate (runs out within 900 days)']
    other = str(tmp_path / 'other')
    discovery_tls.ensure(other, ['hub1', 'discovery.example.net'])
    for name in ('server.pem', 'server.key'):  # another CA's certificate put in place
        os.replace(os.path.join(other, name), os.path.join(path, name))
    foreign = discovery_tls.ensure(path, ['hub1', 'discovery.example.net'])
    assert foreign['made'] == ["server certificate (not the CA's)"]
    remaining = discovery_tls.ensure(path, ['hub1', 'discovery.example.net'])
    expires = datetime.datetime.strptime(remaining['not_after'], '%Y-%m-%dT%H:%M:%SZ')
    assert remaining['changed'] is False and expires > datetime.datetime.utcnow() + datetime.timedelta(days=800)


def test_check_mode_writes_nothing_and_bad_names_are_clear(tmp_path):
    path = str(tmp_path / 'tls')
    planned = discovery_tls.ensure(path, ['hub1'], check_mode=True)
    assert planned['changed'] and not os.path.exists(path)
    for names in ([], ['bad name!'], ['a' * 300]):
        with pytest.raises(WglanError):
            discovery_tls.ensure(path, names)
    assert not os.path.exists(path)


HOSTVARS = {
    'hub1': {'ansible_host': '203.0.113.10'},
    'hub2': {'ansible_host': '2001:db8::2', 'wglan_discovery_port': 9443},
    'plain': {'wglan_discovery_tls': 'false'},
    'own': {'wglan_discovery_tls_cert': '/etc/ssl/own.pem'},
}


def test_the_urls_of_the_discovery_hosts():
    assert discovery_urls(['hub1', 'hub2', 'plain', 'hub1'], HOSTVARS) == [
        'https://203.0.113.10:8443', 'https://[2001:db8::2]:9443', 'http://plain:8443']


def test_the_cas_come_from_this_runs_result_or_from_what_was_read():
    pem = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'
    other = pem.replace('MIIB', 'MIIC')
    hostvars = dict(HOSTVARS, hub1=dict(HOSTVARS['hub1'], wglan_discovery_tls_result={'ca_pem': pem}))
    found = discovery_ca(['hub1', 'hub2', 'plain', 'own'], hostvars)
    assert found == dict(pem=pem, missing=['hub2']), 'plain HTTP and own certificates need no CA of ours'
    read = {'results': [{'item': 'hub2', 'content': base64.b64encode(other.encode()).decode()}]}
    assert discovery_ca(['hub1', 'hub2'], hostvars, read) == dict(pem=pem + other, missing=[])
    unreadable = {'results': [{'item': 'hub2', 'failed': True, 'msg': 'file not found'}]}
    assert discovery_ca(['hub2'], hostvars, unreadable)['missing'] == ['hub2']
