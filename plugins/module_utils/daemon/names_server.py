# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The names responder: a tiny DNS server on this node's mesh address that answers <name>.<domain>
for the host's own systemd-resolved (the mesh interface's per-link DNS server, host.resolved).

It answers A and AAAA for the names of the mesh (the watcher's table, swapped whole at each
reconcile), NXDOMAIN for other names in the domain and REFUSED for names outside it. It is for this
host only: a query from any address that is not the host's own (the responder's address or
loopback) gets nothing, so neither a peer through the tunnel nor a neighbour that routes the mesh
address at this host can use it. Datagrams longer than a query (512 bytes) are dropped unread,
replies are never longer than the query allows, a response is never answered (no loops), and a
token bucket bounds the replies per second. Messages are parsed and built by dnspython; the socket
loop is the standard library's UDP server, one datagram at a time (no state per client).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import socket
import socketserver
import threading
import time

try:
    import dns.exception
    import dns.flags
    import dns.message
    import dns.name
    import dns.opcode
    import dns.rcode
    import dns.rdataclass
    import dns.rdatatype
    import dns.rrset
    HAS_DNSPYTHON = True
except ImportError:
    HAS_DNSPYTHON = False

MAX_QUERY = 512         # a stub resolver's query is far smaller; anything longer is dropped unread
TTL = 2                 # seconds: a removed node stops resolving within a reconcile and this (resolved caches it)
OUR_PAYLOAD = 1232      # the EDNS payload size we announce (the DNS flag day's value)
RATE = 1000             # replies per second, and the burst, for the whole responder


def table_of(entries):
    """{host name: (IPv6 addresses, IPv4 addresses)} of [(address, host name)] (model.peer_names.entries)."""
    table = {}
    for address, name in entries or ():
        six, four = table.setdefault(name.lower(), ([], []))
        ip = str(getattr(address, 'ip', address))
        (six if ipaddress.ip_address(ip).version == 6 else four).append(ip)
    return dict((name, (tuple(six), tuple(four))) for name, (six, four) in table.items())


def _failure(wire, rcode):
    """A bare reply (header only) with rcode, for a query dnspython could not read; None when even the
    header is not there or it is a response."""
    if len(wire) < 12 or wire[2] & 0x80:
        return None
    flags = 0x8000 | ((wire[2] & 0x79) << 8) | rcode  # QR, the query's opcode and RD
    return wire[:2] + flags.to_bytes(2, 'big') + b'\0' * 8


def answer(wire, table, domain):
    """The reply (bytes) to one datagram, or None to send nothing. Never raises on any input."""
    if len(wire) > MAX_QUERY:
        return None
    try:
        query = dns.message.from_wire(wire)
    except dns.message.ShortHeader:
        return None
    except Exception:  # any malformed message (dnspython raises several kinds): FORMERR, like any server
        return _failure(wire, 1)
    if query.flags & dns.flags.QR:
        return None
    response = dns.message.make_response(query, our_payload=OUR_PAYLOAD)
    response.flags |= dns.flags.AA
    response.flags &= ~dns.flags.RA
    if query.opcode() != dns.opcode.QUERY:
        response.set_rcode(dns.rcode.NOTIMP)
    elif len(query.question) != 1:
        response.set_rcode(dns.rcode.FORMERR)
    else:
        _answer_question(response, query.question[0], table, domain)
    limit = max(512, min(query.payload, OUR_PAYLOAD)) if query.edns >= 0 else 512
    try:
        return response.to_wire(max_size=limit)
    except dns.exception.TooBig:
        return _failure(wire, 2)


def _answer_question(response, question, table, domain):
    zone = dns.name.from_text(domain)
    name = question.name
    if question.rdclass != dns.rdataclass.IN or not name.is_subdomain(zone):
        response.set_rcode(dns.rcode.REFUSED)
        response.flags &= ~dns.flags.AA
        return
    found = table.get(name.to_text(omit_final_dot=True).lower())
    if found is None:
        if name != zone:
            response.set_rcode(dns.rcode.NXDOMAIN)
        return  # (the zone's own name exists, with no address: NODATA)
    six, four = found
    wanted = []
    if question.rdtype in (dns.rdatatype.AAAA, dns.rdatatype.ANY):
        wanted.append((dns.rdatatype.AAAA, six))
    if question.rdtype in (dns.rdatatype.A, dns.rdatatype.ANY):
        wanted.append((dns.rdatatype.A, four))
    for rdtype, addresses in wanted:
        if addresses:
            response.answer.append(dns.rrset.from_text_list(name, TTL, dns.rdataclass.IN, rdtype, list(addresses)))


def own_addresses(address):
    """The sources a responder on address answers: that address and loopback."""
    return frozenset([ipaddress.ip_address(str(address)), ipaddress.ip_address('::1'), ipaddress.ip_address('127.0.0.1')])


class Bucket:
    """A token bucket: rate per second, as large as one second's worth."""

    def __init__(self, rate, clock=time.monotonic):
        self.rate, self.clock = rate, clock
        self.tokens, self.at = float(rate), clock()

    def take(self):
        now = self.clock()
        self.tokens = min(float(self.rate), self.tokens + (now - self.at) * self.rate)
        self.at = now
        if self.tokens < 1.0:
            return False
        self.tokens -= 1.0
        return True


class _Server(socketserver.UDPServer):
    max_packet_size = MAX_QUERY + 1     # (a longer datagram arrives cut, and is dropped as too long)
    allow_reuse_address = False

    def __init__(self, responder, address, port):
        self.address_family = socket.AF_INET6 if ':' in address else socket.AF_INET
        self.responder = responder
        socketserver.UDPServer.__init__(self, (address, port), _Handler)

    def verify_request(self, request, client_address):
        return self.responder.admit(client_address[0])

    def handle_error(self, request, client_address):
        self.responder.counts['errors'] += 1


class _Handler(socketserver.BaseRequestHandler):
    def handle(self):
        data, sock = self.request
        responder = self.server.responder
        table, domain = responder.names
        reply = answer(data, table, domain)
        if reply is None:
            responder.counts['dropped'] += 1
            return
        sock.sendto(reply, self.client_address)
        responder.counts['answered'] += 1


class Responder:
    """The responder on address:port (raises OSError when it cannot listen), serving in a thread of its own."""

    def __init__(self, address, port, domain, entries=(), rate=RATE):
        if not HAS_DNSPYTHON:
            raise OSError('python3-dnspython is not installed')
        self.address, self.port = str(address), int(port)
        self.names = (table_of(entries), domain)
        self.own = own_addresses(self.address)
        self.bucket = Bucket(rate)
        self.counts = dict(answered=0, dropped=0, not_local=0, over_rate=0, errors=0)
        self.server = _Server(self, self.address, self.port)
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs=dict(poll_interval=0.5),
                                       name='wglan-names', daemon=True)
        self.thread.start()

    def admit(self, source):
        """Whether to read a datagram from source: this host's own address, within the rate."""
        try:
            ip = ipaddress.ip_address(source.split('%', 1)[0])
        except ValueError:
            ip = None
        if ip is not None and ip.version == 6 and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if ip not in self.own and not (ip is not None and ip.is_loopback):
            self.counts['not_local'] += 1
            return False
        if not self.bucket.take():
            self.counts['over_rate'] += 1
            return False
        return True

    def update(self, entries, domain):
        """The names it answers from now on (one swap: a query sees the old table or the new one)."""
        self.names = (table_of(entries), domain)

    def close(self):
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
