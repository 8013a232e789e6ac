"""Node certificates (model.certificates): what a member with the token can no longer take.

Each attack of a token holder is played against admit (every source's records pass it) and the
topology built from what it admits: squatting another node's slot with its key, taking a name,
claiming an address a key that sorts first would win, a stolen token with no certificate, an
expired certificate, one of another mesh, a revoked node still publishing. Real Ed25519 signatures
throughout (the cryptography library); nothing is mocked."""
import base64
import ipaddress

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.model import certificates as certs
from ansible_collections.wglan.mesh.plugins.module_utils.model import plan
from ansible_collections.wglan.mesh.plugins.module_utils.model.keys import generate_private_key, public_key_from_private
from ansible_collections.wglan.mesh.plugins.module_utils.model.node_records import parse_record

NOW = 1800000000
MESH = 'wglan0'
CA = certs.new_ca_key()
CA_PUBLIC = certs.ca_public_key(CA)


class Node:
    def __init__(self, name, index, node_ips=None, pods=(), segments=(), prefixes=None):
        self.name = name
        self.private = generate_private_key()
        self.public = public_key_from_private(self.private)
        self.address = 'fdaa::%x' % index
        self.address4 = '10.9.0.%d' % index
        self.node_ips = node_ips or ['192.0.2.%d/24' % index]
        self.pods = list(pods)
        self.segments = list(segments)
        grant = prefixes if prefixes is not None else [ip.split('/')[0] for ip in self.node_ips]
        self.cert = certs.issue(CA, MESH, name, self.public, certs.signer_of(self.private),
                                [self.address, self.address4], self.pods, grant, self.segments, now=NOW)

    def raw(self, **changes):
        data = dict(name=self.name, public_key=self.public, address=self.address, address4=self.address4,
                    node_ips=list(self.node_ips), port=51820, pod_cidrs=list(self.pods), segments=list(self.segments),
                    certificate=self.cert)
        data.update(changes)
        return data

    def record(self, signer=None, **changes):
        """Its record as it publishes it: claims signed with its key (or signer's, a forger's)."""
        return parse_record(certs.sign_claims(self.raw(**changes), (signer or self).private))


def trust(revocations=None):
    return certs.Trust(MESH, CA_PUBLIC, revocations)


def admit(records, now=NOW, revocations=None):
    lines = []
    out = certs.admit(records, trust(revocations), now, lines.append)
    return out, lines


def by_name(records):
    return dict((r.name, r) for r in records)


A, B, C, INSIDER = Node('a', 1), Node('b', 2), Node('c', 3), Node('insider', 4)


def test_certified_records_are_admitted_whole():
    records, lines = admit([A.record(), B.record()])
    assert [r.name for r in records] == ['a', 'b'] and lines == []
    assert str(records[0].address) == A.address and str(records[0].address4) == A.address4


def test_a_certificate_round_trips_and_any_change_breaks_its_signature():
    cert = certs.read_certificate(A.cert, CA_PUBLIC)
    assert (cert.name, cert.public_key, cert.mesh) == ('a', A.public, MESH)
    head, payload, signature = A.cert.split('.')
    forged = certs._b64u(certs._unb64u(payload).replace(b'"a"', b'"b"'))
    with pytest.raises(WglanError, match='not signed by this mesh'):
        certs.read_certificate('.'.join([head, forged, signature]), CA_PUBLIC)
    other_ca = certs.ca_public_key(certs.new_ca_key())
    with pytest.raises(WglanError, match='not signed by this mesh'):
        certs.read_certificate(A.cert, other_ca)
    for junk in ('', 'x', 'wglan-cert-1.a.b', 'wglan-cert-1.' + 'A' * 9000, None):
        with pytest.raises(WglanError):
            certs.read_certificate(junk, CA_PUBLIC)


def test_a_squatter_with_the_token_cannot_stand_for_another_nodes_key():
    """The squatter publishes c's key with c's certificate (certificates are public to members) and its
    own endpoint: it cannot sign c's claims, so the record is no peer and the real c is."""
    squat = C.record(signer=INSIDER, node_ips=['198.51.100.66/24'])
    records, lines = admit([squat])
    assert records == [] and 'not signed by its own key' in lines[0]
    # a certificate of its own with c's key in the record: for another key
    stolen_key = INSIDER.record(public_key=C.public)
    assert admit([stolen_key])[0] == []
    real = admit([C.record()])[0]
    assert [r.name for r in real] == ['c']


def test_a_member_cannot_take_another_nodes_name():
    records, lines = admit([A.record(), INSIDER.record(name='a')])
    assert [r.public_key for r in records] == [A.public]
    assert "claims the name 'a'" in lines[0]


def test_an_address_claim_by_a_key_that_sorts_first_is_dropped_and_the_owner_keeps_it():
    """Without certificates resolve_overlaps gives a contested address to the smallest key: the insider
    claims a's mesh address, IPv4 overlay address and node IP. Its certified addresses stay its own."""
    lines = []
    forged = INSIDER.record(address=A.address, address4=A.address4, node_ips=INSIDER.node_ips + A.node_ips)
    records = certs.admit([A.record(), forged], trust(), NOW, lines.append)
    insider = by_name(records)['insider']
    assert str(insider.address) == INSIDER.address and str(insider.address4) == INSIDER.address4
    me = parse_record(Node('me', 9).raw())
    topo = plan.topology([], me, records, me.public_key)
    routes = dict((p.name, set(str(n) for n in p.allowed_ips)) for p in topo.peers)
    assert {'%s/128' % A.address, '%s/32' % A.address4, '192.0.2.1/32'} <= routes['a']
    assert not routes['insider'] & routes['a']
    assert any('left out' in line and 'address' in line for line in lines)


def test_a_stolen_token_without_a_certificate_joins_nobody():
    outsider = Node('outsider', 5)
    bare = parse_record(certs.sign_claims(outsider.raw(certificate=None), outsider.private))
    records, lines = admit([bare])
    assert records == [] and 'no certificate' in lines[0]


def test_in_the_transition_from_the_token_records_without_a_certificate_stay_and_the_rest_is_checked():
    """A mesh moving from the token to certificates: while the nodes get theirs, a record that carries none is
    taken whole (as under the token), unless its name or key is revoked; one that carries a certificate is
    checked as always (a forged or foreign one admits nothing, an ungranted claim is left out)."""
    outsider = Node('outsider', 5)
    bare = parse_record(certs.sign_claims(outsider.raw(certificate=None), outsider.private))
    forged = A.record(signer=B)  # a certificate with claims another key signed
    greedy = B.record(address=C.address)
    moving = certs.Trust(MESH, CA_PUBLIC, uncertified=True)
    lines = []
    records = certs.admit([bare, forged, greedy], moving, NOW, lines.append)
    assert [r.name for r in records] == ['b', 'outsider']
    assert str(records[0].address) == B.address and 'not signed by its own key' in lines[0]
    revoked = certs.newest_revocations([certs.revocation_list(CA, MESH, names=['outsider'], now=NOW)], CA_PUBLIC, MESH)
    listed = certs.Trust(MESH, CA_PUBLIC, revoked, uncertified=True)
    lines = []
    assert certs.admit([bare], listed, NOW, lines.append) == [] and 'revoked' in lines[0]
    # once the transition ends, the record without a certificate is dropped as always
    assert admit([bare])[0] == []


def test_expired_not_yet_valid_and_other_mesh_certificates_are_refused_with_a_line():
    assert admit([A.record()], now=NOW + certs.DEFAULT_LIFETIME + 1)[0] == []
    assert 'expired' in admit([A.record()], now=NOW + certs.DEFAULT_LIFETIME + 1)[1][0]
    # a clock an hour behind (or ahead) still admits: not_before is backdated a day
    assert len(admit([A.record()], now=NOW - 3600)[0]) == 1
    assert len(admit([A.record()], now=NOW + 3600)[0]) == 1
    assert 'not valid yet' in admit([A.record()], now=NOW - 2 * certs.DAY)[1][0]
    other = certs.issue(CA, 'other-mesh', 'a', A.public, certs.signer_of(A.private), [A.address], now=NOW)
    records, lines = admit([A.record(certificate=other)])
    assert records == [] and "for mesh 'other-mesh'" in lines[0]


def test_a_revoked_node_still_publishing_is_dropped_and_an_older_list_is_ignored():
    old = certs.revocation_list(CA, MESH, names=['b'], now=NOW)
    new = certs.revocation_list(CA, MESH, keys=[A.public], now=NOW + 10)
    newest = certs.newest_revocations([old, new], CA_PUBLIC, MESH)
    assert newest.issued == NOW + 10
    records, lines = admit([A.record(), B.record()], revocations=newest)
    assert [r.name for r in records] == ['b'] and 'revoked' in lines[0]
    # a node holding the newer list ignores the older one
    assert certs.newest_revocations([old], CA_PUBLIC, MESH, newest) is newest
    # a list signed by another CA, or for another mesh, is skipped with a line
    warned = []
    forged = certs.revocation_list(certs.new_ca_key(), MESH, names=['c'], now=NOW + 99)
    elsewhere = certs.revocation_list(CA, 'other-mesh', names=['c'], now=NOW + 99)
    assert certs.newest_revocations([forged, elsewhere], CA_PUBLIC, MESH, newest, warned.append) is newest
    assert len(warned) == 2


def test_pod_cidrs_segments_and_node_ips_not_granted_are_left_out_alone():
    node = Node('pods', 6, pods=['10.244.6.0/24'], segments=['east'])
    claimed = node.record(pod_cidrs=['10.244.6.0/25', '10.244.0.0/16'], segments=['east', 'west'],
                          node_ips=node.node_ips + ['203.0.113.9/24'])
    records, lines = admit([claimed])
    kept = records[0]
    assert [str(n) for n in kept.pod_cidrs] == ['10.244.6.0/25']
    assert kept.segments == ('east',)
    assert kept.unrouted == {ipaddress.ip_address('203.0.113.9')}
    assert len(kept.node_ips) == 2  # still where it may be reached
    assert 'pod CIDR 10.244.0.0/16' in lines[0] and 'segment west' in lines[0]


def test_a_node_ip_granted_only_by_a_wide_prefix_is_never_routed_away_from_its_exact_holder():
    laptop = Node('laptop', 7, node_ips=['198.51.100.7/24'], prefixes=['0.0.0.0/0'])
    records, _lines = admit([A.record(), laptop.record(node_ips=['192.0.2.1/24'])])
    got = by_name(records)
    assert ipaddress.ip_address('192.0.2.1') in got['laptop'].unrouted
    assert not got['a'].unrouted
    # alone, the laptop's address in its wide prefix is routed to it
    alone = admit([laptop.record()])[0][0]
    assert not alone.unrouted


def test_a_key_rotation_is_followed_only_when_the_previous_key_signed_the_next():
    node = Node('rot', 8)
    nxt = generate_private_key()
    step = certs.succession_step('rot', node.private, nxt)
    rotated = parse_record(certs.sign_claims(node.raw(public_key=public_key_from_private(nxt), succession=[step]), nxt))
    assert [r.public_key for r in admit([rotated])[0]] == [public_key_from_private(nxt)]
    # an insider's key in a step that the node's key never signed
    bogus = [INSIDER.public, certs.signer_of(INSIDER.private), step[2]]
    forged = parse_record(certs.sign_claims(node.raw(public_key=INSIDER.public, succession=[bogus]), INSIDER.private))
    records, lines = admit([forged])
    assert records == [] and 'not signed by the key before it' in lines[0]


def test_overlapping_certified_addresses_and_pod_cidrs_are_found_for_the_signer():
    grant = certs.read_certificate(A.cert, CA_PUBLIC)
    twin = certs.read_certificate(certs.issue(CA, MESH, 'twin', B.public, certs.signer_of(B.private),
                                              [A.address], ['10.244.0.0/16']), CA_PUBLIC)
    pods = certs.read_certificate(certs.issue(CA, MESH, 'pods', C.public, certs.signer_of(C.private),
                                              [C.address], ['10.244.3.0/24']), CA_PUBLIC)
    found = certs.overlaps({'a': grant, 'twin': twin, 'pods': pods})
    assert ('a', 'twin', 'address %s' % A.address) in found
    assert any(a == 'pods' and b == 'twin' and 'pod CIDR' in what for a, b, what in found)
    assert certs.overlaps({'a': grant, 'pods': pods}) == []


def test_a_certificate_is_renewed_only_when_its_claims_change_or_it_nears_expiry():
    wanted = certs.wanted(MESH, 'a', A.public, certs.signer_of(A.private), [A.address, A.address4], [],
                          [A.node_ips[0].split('/')[0]], [], now=NOW)
    assert not certs.needs_renewal(A.cert, wanted, NOW + 3600)
    assert certs.needs_renewal(A.cert, wanted, NOW + certs.DEFAULT_LIFETIME - certs.RENEW_BEFORE + 1)
    moved = certs.wanted(MESH, 'a', A.public, certs.signer_of(A.private), [A.address], [], [], [], now=NOW)
    assert certs.needs_renewal(A.cert, moved, NOW)
    assert certs.needs_renewal(None, wanted, NOW) and certs.needs_renewal('junk', wanted, NOW)


def test_the_ca_key_text_round_trips_and_corrupt_ones_fail_without_echoing_it():
    text = certs.ca_key_text(CA)
    assert certs.parse_ca_key(text) == CA
    secret = base64.b64encode(CA).decode('ascii')
    for bad in ('', 'nonsense', certs.CA_KEY_HEAD + '!!!', certs.CA_KEY_HEAD + secret[:20], b'\xff\xfe'):
        with pytest.raises(WglanError) as caught:
            certs.parse_ca_key(bad)
        assert secret not in str(caught.value)


FORGERIES = st.lists(st.tuples(
    st.sampled_from(['a', 'b', 'c', 'insider']),          # whose record
    st.sampled_from([None, 'a', 'b', 'c', 'insider']),    # a name it claims instead of its own
    st.sampled_from([None, 'a', 'b', 'c']),               # whose addresses it claims
    st.booleans(),                                        # signed by the insider instead of its node
), max_size=8)
NODES = dict(a=A, b=B, c=C, insider=INSIDER)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(FORGERIES)
def test_property_the_peers_hold_only_certified_claims(forgeries):
    """Any mix of honest and forged records: every admitted record is certified for its key and name,
    and every address routed to a peer is one its certificate grants."""
    records = [n.record() for n in (A, B, C)]
    for whose, name, addresses, by_insider in forgeries:
        node = NODES[whose]
        changes = {}
        if name:
            changes['name'] = name
        if addresses:
            victim = NODES[addresses]
            changes.update(address=victim.address, address4=victim.address4, node_ips=victim.node_ips)
        records.append(node.record(signer=INSIDER if by_insider else None, **changes))
    admitted, _lines = admit(records)
    me = parse_record(Node('me', 99).raw())
    topo = plan.topology([], me, admitted, me.public_key)
    granted = dict((n.public, certs.read_certificate(n.cert, CA_PUBLIC)) for n in NODES.values())
    for record in admitted:
        cert = granted[record.public_key]
        assert record.name == cert.name
    for peer in topo.peers:
        cert = granted[peer.public_key]
        for net in peer.allowed_ips:
            ip = net.network_address
            assert ip in cert.addresses or cert.grants_node_ip(ip), (peer.name, net)
