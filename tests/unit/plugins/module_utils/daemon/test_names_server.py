"""The names responder's answers (daemon.names_server.answer), for every kind of query and for input
no resolver sends; and the pieces around it: its table, its rate, who it admits, resolvectl's text."""
import ipaddress

import dns.edns
import dns.flags
import dns.message
import dns.opcode
import dns.rcode
import dns.rdatatype
import pytest
from hypothesis import given, settings, strategies as st

from ansible_collections.wglan.mesh.plugins.module_utils.daemon import names_server
from ansible_collections.wglan.mesh.plugins.module_utils.daemon.names_server import Bucket, answer, table_of
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.host import resolved
from ansible_collections.wglan.mesh.plugins.module_utils.model import settings as settings_model

DOMAIN = 'wglan.internal'
ENTRIES = [(ipaddress.ip_interface('fd42::b2/128'), 'b2.wglan.internal'),
           (ipaddress.ip_interface('10.98.0.7/32'), 'b2.wglan.internal'),
           (ipaddress.ip_interface('fd42::a1/128'), 'a1.wglan.internal')]
TABLE = table_of(ENTRIES)


def ask(name, rdtype='AAAA', **kw):
    query = dns.message.make_query(name, rdtype, **kw)
    wire = answer(query.to_wire(), TABLE, DOMAIN)
    assert wire is not None
    reply = dns.message.from_wire(wire)
    assert reply.id == query.id and reply.flags & dns.flags.QR
    return reply


def addresses(reply):
    return sorted(item.address for rrset in reply.answer for item in rrset)


def test_the_table_holds_each_name_with_its_addresses_by_family():
    assert TABLE == {'b2.wglan.internal': (('fd42::b2',), ('10.98.0.7',)), 'a1.wglan.internal': (('fd42::a1',), ())}


@pytest.mark.parametrize('rdtype,want', [('AAAA', ['fd42::b2']), ('A', ['10.98.0.7']), ('ANY', ['10.98.0.7', 'fd42::b2'])])
def test_a_node_of_the_mesh_is_answered_with_its_addresses(rdtype, want):
    reply = ask('b2.wglan.internal', rdtype)
    assert reply.rcode() == dns.rcode.NOERROR and reply.flags & dns.flags.AA
    assert addresses(reply) == want
    assert all(rrset.ttl == names_server.TTL for rrset in reply.answer)


def test_names_are_answered_in_any_case_with_the_question_as_asked():
    reply = ask('B2.WGLAN.Internal')
    assert addresses(reply) == ['fd42::b2'] and str(reply.answer[0].name) == 'B2.WGLAN.Internal.'


def test_a_name_without_an_address_of_the_family_asked_is_nodata():
    reply = ask('a1.wglan.internal', 'A')
    assert reply.rcode() == dns.rcode.NOERROR and reply.answer == []
    reply = ask('b2.wglan.internal', 'MX')
    assert reply.rcode() == dns.rcode.NOERROR and reply.answer == []


def test_an_unknown_name_in_the_domain_does_not_exist_and_the_domain_itself_does():
    assert ask('gone.wglan.internal').rcode() == dns.rcode.NXDOMAIN
    assert ask('x.b2.wglan.internal').rcode() == dns.rcode.NXDOMAIN
    apex = ask('wglan.internal')
    assert apex.rcode() == dns.rcode.NOERROR and apex.answer == []


def test_names_outside_the_domain_are_refused():
    for name in ('example.org', 'internal', 'evilwglan.internal'):
        reply = ask(name)
        assert reply.rcode() == dns.rcode.REFUSED and not reply.flags & dns.flags.AA and reply.answer == [], name
    query = dns.message.make_query('b2.wglan.internal', 'A', rdclass='CH')
    assert dns.message.from_wire(answer(query.to_wire(), TABLE, DOMAIN)).rcode() == dns.rcode.REFUSED


def test_edns_is_answered_with_edns_and_never_the_dnssec_bit():
    reply = ask('b2.wglan.internal', use_edns=0, payload=4096, want_dnssec=True)
    assert reply.edns == 0 and reply.payload == names_server.OUR_PAYLOAD
    assert not reply.ednsflags & dns.flags.DO
    assert ask('b2.wglan.internal').edns == -1


def test_a_response_is_never_answered():
    query = dns.message.make_query('b2.wglan.internal', 'AAAA')
    query.flags |= dns.flags.QR
    assert answer(query.to_wire(), TABLE, DOMAIN) is None


def test_other_opcodes_and_several_questions_are_refused_with_the_right_code():
    query = dns.message.make_query('b2.wglan.internal', 'AAAA')
    query.set_opcode(dns.opcode.NOTIFY)
    assert dns.message.from_wire(answer(query.to_wire(), TABLE, DOMAIN)).rcode() == dns.rcode.NOTIMP
    two = dns.message.make_query('b2.wglan.internal', 'AAAA')
    two.question.append(dns.message.make_query('a1.wglan.internal', 'AAAA').question[0])
    assert dns.message.from_wire(answer(two.to_wire(), TABLE, DOMAIN)).rcode() == dns.rcode.FORMERR


def test_a_header_alone_or_less_gets_nothing_and_a_datagram_longer_than_a_query_is_dropped_unread():
    assert answer(b'', TABLE, DOMAIN) is None
    assert answer(b'\x12\x34\x01\x00\x00\x01', TABLE, DOMAIN) is None
    big = dns.message.make_query('b2.wglan.internal', 'AAAA').to_wire() + b'\0' * names_server.MAX_QUERY
    assert answer(big, TABLE, DOMAIN) is None


def test_malformed_queries_get_formerr_with_their_id():
    header = b'\xbe\xef\x01\x00\x00\x01\x00\x00\x00\x00\x00\x00'
    for body in (b'\x03abc',                          # a name cut short
                 b'\xc0\x0c\x00\x01\x00\x01',         # a compression pointer to itself
                 b'\x40abc\x00\x00\x01\x00\x01',      # a label type that does not exist
                 b'\x00\x00\x01\x00\x01junk'):        # bytes after the message
        reply = answer(header + body, TABLE, DOMAIN)
        assert reply is not None and len(reply) == 12, body
        assert reply[:2] == b'\xbe\xef' and reply[2] & 0x80 and reply[3] & 0x0f == dns.rcode.FORMERR, body


@settings(max_examples=400, deadline=None)
@given(st.binary(max_size=600))
def test_any_bytes_give_nothing_or_a_short_reply_with_their_id(data):
    reply = answer(data, TABLE, DOMAIN)
    if reply is not None:
        assert 12 <= len(reply) <= 512 and reply[:2] == data[:2] and reply[2] & 0x80


@settings(max_examples=200, deadline=None)
@given(st.lists(st.from_regex(r'[a-z0-9]{1,20}', fullmatch=True), min_size=1, max_size=4),
       st.sampled_from(['A', 'AAAA', 'ANY', 'TXT', 'SRV']))
def test_any_name_gets_one_of_the_four_answers(labels, rdtype):
    name = '.'.join(labels) + '.' + DOMAIN
    reply = ask(name, rdtype)
    full = name.lower()
    if full in TABLE:
        assert reply.rcode() == dns.rcode.NOERROR
    else:
        assert reply.rcode() == dns.rcode.NXDOMAIN and reply.answer == []


def test_the_bucket_lets_a_second_s_worth_through_then_the_rate():
    now = [100.0]
    bucket = Bucket(10, clock=lambda: now[0])
    assert sum(bucket.take() for _attempt in range(50)) == 10
    now[0] += 0.5
    assert sum(bucket.take() for _attempt in range(50)) == 5
    now[0] += 60
    assert sum(bucket.take() for _attempt in range(50)) == 10


class _Admits(names_server.Responder):
    def __init__(self, address, rate=5):  # (the admission rule alone: no socket)
        self.address = address
        self.own = names_server.own_addresses(address)
        self.bucket = Bucket(rate)
        self.counts = dict(not_local=0, over_rate=0)


def test_only_the_host_s_own_addresses_are_admitted_within_the_rate():
    responder = _Admits('fd42::b2')
    assert responder.admit('fd42::b2') and responder.admit('::1') and responder.admit('127.0.0.9')
    assert responder.admit('::ffff:127.0.0.1')
    for other in ('fd42::a1', '198.51.100.7', '::ffff:198.51.100.7', 'fe80::1%wglan0', 'nonsense'):
        assert not responder.admit(other), other
    # (the others took no token: a flood from elsewhere does not starve the host's own queries)
    assert responder.counts['not_local'] == 5
    assert [responder.admit("fd42::b2") for _attempt in range(4)] == [True, False, False, False]
    assert responder.counts['over_rate'] == 3


@pytest.mark.parametrize('word,want', [
    ('fd42::b2', (ipaddress.ip_address('fd42::b2'), 53)),
    ('[fd42::b2]:5353', (ipaddress.ip_address('fd42::b2'), 5353)),
    ('[fd42::b2]:53#wglan.internal', (ipaddress.ip_address('fd42::b2'), 53)),
    ('198.51.100.1:5300', (ipaddress.ip_address('198.51.100.1'), 5300)),
    ('fe80::1%3', (ipaddress.ip_address('fe80::1'), 53)),
])
def test_resolvectl_s_servers_are_read_in_each_form_it_prints(word, want):
    assert resolved._server(word) == want


def test_the_server_is_given_with_a_port_only_when_not_53():
    assert resolved.server_text('fd42::b2', 53) == 'fd42::b2'
    assert resolved.server_text('fd42::b2', 5300) == '[fd42::b2]:5300'


def test_the_host_s_resolver_is_systemd_resolved_through_its_stub_or_nss(tmp_path):
    conf, nss = tmp_path / 'resolv.conf', tmp_path / 'nsswitch.conf'
    conf.write_text('# managed\nnameserver 127.0.0.53\noptions edns0\n')
    nss.write_text('hosts: files dns\n')
    assert resolved._names_in(str(conf), 'nameserver', resolved.STUB)
    assert not resolved._names_in(str(nss), 'hosts:', 'resolve')
    nss.write_text('hosts: files resolve [!UNAVAIL=return] dns\n')
    assert resolved._names_in(str(nss), 'hosts:', 'resolve')
    conf.write_text('nameserver 192.0.2.53\n')
    assert not resolved._names_in(str(conf), 'nameserver', resolved.STUB)
    assert not resolved._names_in(str(tmp_path / 'missing'), 'nameserver', resolved.STUB)


def test_names_settings_are_checked_as_the_module_would():
    base = dict(settings_model.DEFAULTS, names=True, watcher=True)
    settings_model.check_names(dict(base, names_via='resolved'))
    for bad, text in ((dict(names_via='dns'), 'names_via must be one of'),
                      (dict(names_port=0), 'names_port must be'), (dict(names_port='53'), 'names_port must be'),
                      (dict(names_port=True), 'names_port must be'),
                      (dict(names_via='resolved', watcher=False), 'the watcher answers the names')):
        with pytest.raises(WglanError, match=text):
            settings_model.check_names(dict(base, **bad))
    settings_model.check_names(dict(base, names_via='resolved', watcher=False, names=False))
