# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The discovery service's own certificate authority and server certificate, in one directory.

ca.key (0600) and ca.pem: a private CA (ECDSA P-256) made once, whose certificate the nodes get.
server.key (0600) and server.pem: the service's certificate, signed by that CA, for the names and
addresses the nodes use. The server certificate is made again when a name is missing, it is not the
CA's, it does not match its key, or it runs out within renew_days. The CA key never leaves the host.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import datetime
import ipaddress
import os

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.host import state_files

try:
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
    HAS_CRYPTOGRAPHY = True
except ImportError:  # pragma: no cover - exercised by the import sanity test
    HAS_CRYPTOGRAPHY = False

FILES = ('ca.key', 'ca.pem', 'server.key', 'server.pem')


def _now():
    return datetime.datetime.now(datetime.timezone.utc)


def _not_after(cert):
    value = getattr(cert, 'not_valid_after_utc', None)
    if value is None:  # cryptography before 42
        value = cert.not_valid_after.replace(tzinfo=datetime.timezone.utc)
    return value


def _read(path):
    try:
        with open(path, 'rb') as handle:
            return handle.read()
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise WglanError('cannot read %s: %s' % (path, exc.strerror))


def _key_pem(key):
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def _pem(cert):
    return cert.public_bytes(serialization.Encoding.PEM)


def san_entries(names):
    """Names -> (DNS names, IP addresses), each once, in order; an empty or odd name is an error."""
    dns, ips = [], []
    for name in names:
        text = str(name).strip().strip('[]')
        if not text:
            continue
        try:
            ip = ipaddress.ip_address(text)
        except ValueError:
            if len(text) > 253 or not all(part and len(part) <= 63 and part.replace('-', '').replace('_', '').isalnum()
                                          for part in text.rstrip('.').split('.')):
                raise WglanError('%r is neither an address nor a host name' % text)
            if text.lower() not in dns:
                dns.append(text.lower())
            continue
        if ip not in ips:
            ips.append(ip)
    if not dns and not ips:
        raise WglanError('the certificate needs at least one name or address')
    return dns, ips


def _names_of(cert):
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return [], []
    return san.get_values_for_type(x509.DNSName), san.get_values_for_type(x509.IPAddress)


def _load(directory):
    """{file: bytes or None} of what the directory holds."""
    return dict((name, _read(os.path.join(directory, name))) for name in FILES)


def _ca_usable(files):
    if not files['ca.key'] or not files['ca.pem']:
        return None
    try:
        key = serialization.load_pem_private_key(files['ca.key'], password=None)
        cert = x509.load_pem_x509_certificate(files['ca.pem'])
    except ValueError:
        return None
    if cert.public_key().public_numbers() != key.public_key().public_numbers() or _not_after(cert) <= _now():
        return None
    return key, cert


def _server_reason(files, ca_cert, dns, ips, renew_days):
    """Why the server certificate must be made again, or None."""
    if not files['server.key'] or not files['server.pem']:
        return 'missing'
    try:
        key = serialization.load_pem_private_key(files['server.key'], password=None)
        cert = x509.load_pem_x509_certificate(files['server.pem'])
    except ValueError:
        return 'unreadable'
    if cert.public_key().public_numbers() != key.public_key().public_numbers():
        return 'not its key'
    if cert.issuer != ca_cert.subject:
        return 'not the CA\'s'
    try:
        ca_cert.public_key().verify(cert.signature, cert.tbs_certificate_bytes, ec.ECDSA(cert.signature_hash_algorithm))
    except Exception:  # pylint: disable=broad-except
        # (InvalidSignature, or a key of another kind)
        return 'not the CA\'s'
    have_dns, have_ips = _names_of(cert)
    if sorted(have_dns) != sorted(dns) or sorted(map(str, have_ips)) != sorted(map(str, ips)):
        return 'names changed'
    if _not_after(cert) - _now() < datetime.timedelta(days=renew_days):
        return 'runs out within %d days' % renew_days
    return None


def _make_ca(days):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, u'wglan discovery CA %s' % os.urandom(4).hex())])
    now = _now()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=False, content_commitment=False, key_encipherment=False,
                                         data_encipherment=False, key_agreement=False, key_cert_sign=True,
                                         crl_sign=True, encipher_only=False, decipher_only=False), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
            .sign(key, hashes.SHA256()))
    return key, cert


def _make_server(ca_key, ca_cert, dns, ips, days):
    key = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, (dns or [str(ips[0])])[0][:64])])
    alt = [x509.DNSName(n) for n in dns] + [x509.IPAddress(ip) for ip in ips]
    cert = (x509.CertificateBuilder().subject_name(subject).issuer_name(ca_cert.subject).public_key(key.public_key())
            .serial_number(x509.random_serial_number()).not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(min(now + datetime.timedelta(days=days), _not_after(ca_cert)))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
            .sign(ca_key, hashes.SHA256()))
    return key, cert


def ensure(directory, names, days=825, renew_days=60, ca_days=3650, check_mode=False):
    """Make what is missing or due. Returns dict(changed, made (what was made, with why), ca_pem,
    names, not_after). Secrets (the keys) are written 0600 and never returned."""
    if not HAS_CRYPTOGRAPHY:
        raise WglanError('the Python library "cryptography" is required')
    dns, ips = san_entries(names)
    files = _load(directory)
    made = []
    ca = _ca_usable(files)
    if ca is None:
        made.append('ca (%s)' % ('missing' if not files['ca.pem'] else 'unusable'))
        ca = _make_ca(ca_days)
        files['ca.key'], files['ca.pem'] = _key_pem(ca[0]), _pem(ca[1])
    reason = _server_reason(files, ca[1], dns, ips, renew_days)
    if reason is not None:
        made.append('server certificate (%s)' % reason)
        key, cert = _make_server(ca[0], ca[1], dns, ips, days)
        files['server.key'], files['server.pem'] = _key_pem(key), _pem(cert)
    if made and not check_mode:
        if not os.path.isdir(directory):
            os.makedirs(directory, 0o755)
        # the keys first (0600), then the certificates: a service started in between finds a pair or the old one
        for name, mode in (('ca.key', 0o600), ('ca.pem', 0o644), ('server.key', 0o600), ('server.pem', 0o644)):
            state_files.replace(os.path.join(directory, name), files[name], mode)
    cert = x509.load_pem_x509_certificate(files['server.pem'])
    return dict(changed=bool(made), made=made, ca_pem=files['ca.pem'].decode('ascii'),
                names=dns + [str(ip) for ip in ips], not_after=_not_after(cert).strftime('%Y-%m-%dT%H:%M:%SZ'))
