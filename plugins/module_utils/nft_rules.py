# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The nftables table wglan owns: model (pure) and applier (nft -j).

Design (see REFERENCE.md):
- WireGuard's own UDP packets carry wg_mark (the device fwmark) and are left
  alone, so the tunnel never routes into itself.
- Packets to a target prefix get route_mark; an ip rule sends route_mark to a
  routing table whose default routes point at the WireGuard link.
- Marks are read and written under mark_mask only: bits outside the mask
  belong to others (Cilium, Calico, kube-proxy) and are kept.
- Replies leave the way the request came: a connection that arrives from
  outside the WireGuard link gets wg_mark in its conntrack mark, and its
  replies get wg_mark as their packet mark, so they take the main table even
  when the other end's address is a target. (A discovery service or API
  server on a mesh node answers a peer that reaches it over the underlay
  while that peer's addresses are routed through a relay, or before the
  peer can handshake: without this the answers went into the tunnel.)
- IPv6 neighbour discovery the node sends is never routed into the tunnel
  (its solicitations and advertisements to a target's address on an IPv6
  underlay: the neighbour must still be found on the link).
- TCP MSS is clamped on the way out of the link (MTU - 40 for IPv4, - 60 for IPv6).
The table is always replaced in one nft transaction.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import json
import socket
import subprocess

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError

DEFAULT_TABLE = 'wglan'
DEFAULT_WG_MARK = 0x20
DEFAULT_ROUTE_MARK = 0x40
DEFAULT_MARK_MASK = 0x60
FAMILY = 'inet'
NFT = 'nft'
MANGLE_PRIORITY = -150
_SET4 = 'targets4'
_SET6 = 'targets6'


class RulesConfig:
    """targets None: keep what the table's sets hold (ensure_table reads them)."""

    def __init__(self, interface, targets=(), table=DEFAULT_TABLE, wg_mark=DEFAULT_WG_MARK,
                 route_mark=DEFAULT_ROUTE_MARK, mark_mask=DEFAULT_MARK_MASK, mtu=1420):
        self.keep_targets = targets is None
        targets = targets or ()
        self.interface = interface
        self.table = table
        self.wg_mark = int(wg_mark)
        self.route_mark = int(route_mark)
        self.mark_mask = int(mark_mask)
        self.mtu = int(mtu)
        validate_marks(self.wg_mark, self.route_mark, self.mark_mask)
        if not 1280 <= self.mtu <= 65535:
            raise WglanError('mtu must be between 1280 and 65535')
        nets = [n if isinstance(n, (ipaddress.IPv4Network, ipaddress.IPv6Network)) else _parse_target(n)
                for n in targets]
        self.targets4 = list(ipaddress.collapse_addresses([n for n in nets if n.version == 4]))
        self.targets6 = list(ipaddress.collapse_addresses([n for n in nets if n.version == 6]))


def _parse_target(value):
    try:
        return ipaddress.ip_network(str(value).strip(), strict=True)
    except ValueError as exc:
        raise WglanError('invalid target %r: %s' % (value, exc))


def validate_marks(wg_mark, route_mark, mark_mask):
    for name, value in (('wg_mark', wg_mark), ('route_mark', route_mark), ('mark_mask', mark_mask)):
        if not 0 < value <= 0xFFFFFFFF:
            raise WglanError('%s must be a non-zero 32-bit value' % name)
    if wg_mark & ~mark_mask or route_mark & ~mark_mask:
        raise WglanError('wg_mark and route_mark must lie inside mark_mask (0x%x)' % mark_mask)
    if wg_mark == route_mark:
        raise WglanError('wg_mark and route_mark must differ')


def _meta(key):
    return {'meta': {'key': key}}


def _match(left, right, op='=='):
    return {'match': {'op': op, 'left': left, 'right': right}}


def _set_mark(config, mark, key=None):
    # (mark & ~(mask & ~value)) | value: the bits under the mask become value, the others stay;
    # the form nft itself prints back.
    key = key or _meta('mark')
    keep = (~(config.mark_mask & ~mark)) & 0xFFFFFFFF
    return {'mangle': {'key': key, 'value': {'|': [{'&': [key, keep]}, mark]}}}


def _set_route_mark(config):
    return _set_mark(config, config.route_mark)


def _ct(key):
    return {'ct': {'key': key}}


def _element(net):
    if net.prefixlen == net.max_prefixlen:
        return str(net.network_address)
    return {'prefix': {'addr': str(net.network_address), 'len': net.prefixlen}}


def desired_objects(config):
    """The table as nft JSON objects (without the add/delete commands around them)."""
    t = {'family': FAMILY, 'table': config.table}
    objects = [{'table': {'family': FAMILY, 'name': config.table}}]
    for name, kind, nets in ((_SET4, 'ipv4_addr', config.targets4), (_SET6, 'ipv6_addr', config.targets6)):
        body = dict(t, name=name, type=kind, flags=['interval'])
        if nets:
            body['elem'] = [_element(n) for n in nets]
        objects.append({'set': body})
    chains = (('prerouting', 'filter', 'prerouting'), ('output', 'route', 'output'),
              ('postrouting', 'filter', 'postrouting'))
    for name, kind, hook in chains:
        objects.append({'chain': dict(t, name=name, type=kind, hook=hook, prio=MANGLE_PRIORITY, policy='accept')})
    own = [_match({'&': [_meta('mark'), config.mark_mask]}, config.wg_mark), {'accept': None}]
    # a connection from outside the link: remembered in its conntrack mark
    from_outside = [_match(_meta('iifname'), config.interface, '!='), _match(_ct('state'), 'new', 'in'),
                    _set_mark(config, config.wg_mark, _ct('mark'))]
    # its replies go back the way it came (the main table), not into the tunnel
    answer = [_match(_ct('direction'), 'reply'), _match({'&': [_ct('mark'), config.mark_mask]}, config.wg_mark),
              _set_mark(config, config.wg_mark), {'accept': None}]
    # neighbour discovery stays on its link, also toward a target's address (an IPv6 underlay)
    neighbours = [_match({'payload': {'protocol': 'icmpv6', 'field': 'type'}},
                         {'set': ['nd-neighbor-solicit', 'nd-neighbor-advert', 'nd-redirect']}), {'accept': None}]
    to4 = [_match({'payload': {'protocol': 'ip', 'field': 'daddr'}}, '@' + _SET4), _set_route_mark(config)]
    to6 = [_match({'payload': {'protocol': 'ip6', 'field': 'daddr'}}, '@' + _SET6), _set_route_mark(config)]
    for chain, rules in (('prerouting', (from_outside, own, answer, to4, to6)),
                         ('output', (own, answer, neighbours, to4, to6))):
        for expr in rules:
            objects.append({'rule': dict(t, chain=chain, expr=expr)})
    for proto, overhead in (('ipv4', 40), ('ipv6', 60)):
        mss = config.mtu - overhead
        option = {'tcp option': {'name': 'maxseg', 'field': 'size'}}
        objects.append({'rule': dict(t, chain='postrouting', expr=[
            _match(_meta('oifname'), config.interface),
            _match(_meta('nfproto'), proto),
            _match({'&': [{'payload': {'protocol': 'tcp', 'field': 'flags'}}, ['syn', 'rst']]}, 'syn'),
            _match(option, mss, '>'),
            {'mangle': {'key': option, 'value': mss}},
        ])})
    return objects


def replace_commands(config):
    """One transaction: create-if-missing, delete, re-create. Atomic for readers."""
    table = {'family': FAMILY, 'name': config.table}
    commands = [{'add': {'table': table}}, {'delete': {'table': table}}]
    commands.extend({'add': obj} for obj in desired_objects(config))
    return {'nftables': [{'metainfo': {'json_schema_version': 1}}] + commands}


def delete_commands(table):
    return {'nftables': [{'delete': {'table': {'family': FAMILY, 'name': table}}}]}


def _element_interval(elem, version):
    cls = ipaddress.IPv4Network if version == 4 else ipaddress.IPv6Network
    if isinstance(elem, dict) and 'elem' in elem:
        elem = elem['elem'].get('val', elem['elem'])
    if isinstance(elem, str):
        value = int(ipaddress.ip_address(elem))
        return value, value
    if 'prefix' in elem:
        net = cls('%s/%d' % (elem['prefix']['addr'], elem['prefix']['len']))
        return int(net.network_address), int(net.broadcast_address)
    if 'range' in elem:
        low, high = elem['range']
        return int(ipaddress.ip_address(low)), int(ipaddress.ip_address(high))
    raise WglanError('unexpected set element in nft output: %r' % (elem,))


def _merged(intervals):
    out = []
    for start, end in sorted(intervals):
        if out and start <= out[-1][1] + 1:
            out[-1] = (out[-1][0], max(out[-1][1], end))
        else:
            out.append((start, end))
    return out


def _same_spelling(value):
    """One spelling for what nft versions print differently: nftables 1.1 prints a set of
    flags as {"|": ["syn", "rst"]} where 1.0 prints ["syn", "rst"] (both mean the same)."""
    if isinstance(value, dict):
        if list(value) == ['|'] and isinstance(value['|'], list) and all(isinstance(v, str) for v in value['|']):
            return list(value['|'])
        return dict((k, _same_spelling(v)) for k, v in value.items())
    if isinstance(value, list):
        return [_same_spelling(v) for v in value]
    return value


def canonical(objects):
    """Comparable form of a table: handles dropped, set elements as merged intervals,
    one spelling for what nft versions print differently."""
    out = []
    for obj in objects:
        kind = next(iter(obj))
        if kind not in ('table', 'set', 'chain', 'rule'):
            continue
        body = dict(obj[kind])
        body.pop('handle', None)
        body.pop('family', None)
        body.pop('comment', None)
        if kind == 'set':
            version = 4 if body.get('type') == 'ipv4_addr' else 6
            body['elem'] = _merged(_element_interval(e, version) for e in body.get('elem', []))
            body['flags'] = sorted(body.get('flags', []))
        out.append((kind, json.dumps(_same_spelling(body), sort_keys=True)))
    return sorted(out)


def _run_nft(args, payload=None):
    try:
        proc = subprocess.run([NFT] + args, input=payload, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              universal_newlines=True, timeout=60, check=False)
    except FileNotFoundError:
        raise WglanError('nft (nftables) is not installed')
    except subprocess.TimeoutExpired:
        raise WglanError('nft did not finish within 60s')
    return proc


def read_table(table):
    """The table's objects as nft lists them, or None when it does not exist."""
    proc = _run_nft(['-j', 'list', 'table', FAMILY, table])
    if proc.returncode != 0:
        if 'No such file or directory' in proc.stderr or 'does not exist' in proc.stderr:
            return None
        raise WglanError('nft list table failed: %s' % proc.stderr.strip())
    try:
        return json.loads(proc.stdout)['nftables']
    except (ValueError, KeyError):
        raise WglanError('nft printed JSON this module cannot read')


def apply_commands(commands):
    proc = _run_nft(['-j', '-f', '-'], json.dumps(commands))
    if proc.returncode != 0:
        raise WglanError('nft refused the ruleset (nothing was changed): %s' % proc.stderr.strip())


def target_view(objects):
    """{'targets4': [...], 'targets6': [...]} as CIDR strings, for diffs and reports."""
    view = {_SET4: [], _SET6: []}
    for obj in objects or []:
        body = obj.get('set')
        if not body or body.get('name') not in view:
            continue
        version = 4 if body.get('type') == 'ipv4_addr' else 6
        cls = ipaddress.IPv4Address if version == 4 else ipaddress.IPv6Address
        for start, end in _merged(_element_interval(e, version) for e in body.get('elem', [])):
            view[body['name']].extend(str(n) for n in ipaddress.summarize_address_range(cls(start), cls(end)))
    return view


def ensure_table(config, present=True, check_mode=False):
    """Make the table match config (or be gone). Returns (changed, before, after) target views.

    Anything that differs, set elements or rules, replaces the whole table in
    one transaction: there is never a moment with half a ruleset.
    """
    current = read_table(config.table)
    before = None if current is None else target_view(current)
    if not present:
        if current is not None and not check_mode:
            apply_commands(delete_commands(config.table))
        return current is not None, before, None
    if config.keep_targets:
        held = target_view(current) if current is not None else {_SET4: [], _SET6: []}
        config.targets4 = [ipaddress.ip_network(n) for n in held[_SET4]]
        config.targets6 = [ipaddress.ip_network(n) for n in held[_SET6]]
    wanted = desired_objects(config)
    after = target_view(wanted)
    if current is not None and canonical(current) == canonical(wanted):
        return False, before, after
    if not check_mode:
        apply_commands(replace_commands(config))
    return True, before, after


# -- the relay path: IPv6 forwarded at the WireGuard link's ingress -------------------------------
#
# A relay forwards what a peer sends it for another peer, with no forwarding sysctl (Linux's IPv6
# switch is host-wide and also changes how every interface treats router advertisements; the IPv4
# one of the link would forward to anywhere): a netdev table hooks the WireGuard link's ingress and
# sends packets for the addresses of the peers this node reaches directly back out of the same
# link. The hop limit / TTL goes down by one on the way, through maps (nftables has no
# arithmetic). IPv4's header checksum is fixed up by hand, as RFC 1624 says (a TTL one lower is a
# checksum 0x0100 higher, with the end-around carry): nftables 1.0.6 of Debian 12 refuses
# 'ip ttl set <map>', so the TTL and checksum bytes are written as raw payload, which nftables
# leaves the checksum of alone. A packet whose hop limit is used up goes on to the host's stack,
# which does not forward it (no ICMP time exceeded is sent: a netdev hook cannot make one).
# Nothing else is touched: packets for this node, and for anything else, take their usual way. The
# table's comment names the link it was made for, by name and index: a netdev chain is bound to
# the device it was made on, and a recreated link needs a new one.

def relay_table_name(table=DEFAULT_TABLE):
    """The netdev relay table that goes with wglan's inet table of that name."""
    return table + '_relay'


RELAY_TABLE = relay_table_name()
RELAY_PAIRS = 4096
RELAY_FAMILIES = ((6, 'ipv6_addr'), (4, 'ipv4_addr'))


def relay_fingerprint(ifname, ifindex):
    # (the families are named: a table of an older version, which relayed IPv6 only, is made anew)
    return 'wglan.mesh relay %s %d ipv6 ipv4' % (ifname, ifindex)


def _relay_elements(nets):
    return ', '.join(str(n) for n in nets)


def relay_ruleset(ifname, ifindex, nets, table=RELAY_TABLE):
    """nft text that makes the relay table anew in one transaction. load6 and load4 count what is
    forwarded per (source, destination) pair (bounded: past RELAY_PAIRS pairs new ones are
    forwarded, not counted: a full set makes the update rule fail, and the next rule forwards)."""
    by_family = _relay_nets(nets)
    down = ', '.join('%d : %d' % (i, i - 1) for i in range(2, 256))
    up = ', '.join('%d : %d' % (i, i + 1) for i in range(0, 255))
    fwd = 'fwd to "%s"' % ifname
    lines = [
        'table netdev %s {}' % table,
        'delete table netdev %s' % table,
        'table netdev %s {' % table,
        '  comment "%s"' % relay_fingerprint(ifname, ifindex),
        '  map hoplimit { typeof ip6 hoplimit : ip6 hoplimit; elements = { %s }; }' % down,
        # IPv4: byte 8 of the header is the TTL, bytes 10-11 the header checksum
        '  map ttl { typeof @nh,64,8 : @nh,64,8; elements = { %s }; }' % down,
        '  map plus1 { typeof @nh,80,8 : @nh,80,8; elements = { %s }; }' % up]
    for version, kind in RELAY_FAMILIES:
        elements = (' elements = { %s };' % _relay_elements(by_family[version])) if by_family[version] else ''
        lines += ['  set peers%d { type %s; flags interval;%s }' % (version, kind, elements),
                  '  set load%d { type %s . %s; flags dynamic; counter; size %d; }' % (version, kind, kind, RELAY_PAIRS)]
    lines += [
        '  chain ingress {',
        '    type filter hook ingress device "%s" priority 0; policy accept;' % ifname,
        '    ip6 daddr @peers6 ip6 hoplimit > 1 jump relay6',
        '    ip daddr @peers4 ip ttl > 1 jump relay4',
        '  }',
        '  chain relay6 {',
        '    update @load6 { ip6 saddr . ip6 daddr }',
        '    ip6 hoplimit set ip6 hoplimit map @hoplimit %s' % fwd,
        '  }',
        '  chain relay4 {',
        '    update @load4 { ip saddr . ip daddr }',
        # checksum's high byte below 0xff: it goes up by one
        '    @nh,80,8 != 255 @nh,64,8 set @nh,64,8 map @ttl @nh,80,8 set @nh,80,8 map @plus1 %s' % fwd,
        # high byte 0xff: it wraps to 0 and the carry goes round into the low byte (a checksum of
        # 0xffff, which no sender computes, finds no low byte in plus1 and is not forwarded)
        '    @nh,64,8 set @nh,64,8 map @ttl @nh,80,8 set 0 @nh,88,8 set @nh,88,8 map @plus1 %s' % fwd,
        '  }',
        '}', '']
    return '\n'.join(lines)


def _relay_nets(nets):
    """{6: [networks], 4: [networks]}, each family collapsed."""
    parsed = [ipaddress.ip_network(str(n)) for n in nets]
    return dict((version, list(ipaddress.collapse_addresses(n for n in parsed if n.version == version)))
                for version in (6, 4))


def _table_comment(family, table):
    """The table's comment; '' when it has none, None when the table does not exist. (Read from the
    text form: nft 1.0.6 leaves comments out of its JSON.)"""
    proc = _run_nft(['-t', 'list', 'table', family, table])
    if proc.returncode != 0:
        return None
    for line in proc.stdout.splitlines()[1:]:
        line = line.strip()
        if line.startswith('comment "') and line.endswith('"'):
            return line[len('comment "'):-1]
        if line.endswith('{') or line == '}':
            break
    return ''


def ensure_relay_table(ifname, nets, present=True, table=RELAY_TABLE):
    """Make the relay table forward, on ifname, what arrives for nets (the IPv6 and IPv4 allowed IPs
    of the peers this node reaches directly), or be gone. Returns whether the table was made (or
    removed). A table made for this very link keeps its counters: only its sets of destinations are
    replaced (in one transaction)."""
    comment = _table_comment('netdev', table)
    if not present:
        if comment is None:
            return False
        proc = _run_nft(['delete', 'table', 'netdev', table])
        if proc.returncode != 0:
            raise WglanError('nft delete table netdev %s failed: %s' % (table, proc.stderr.strip()))
        return True
    try:
        ifindex = socket.if_nametoindex(ifname)  # (not /sys: a container's may show another namespace)
    except OSError:
        raise WglanError('no interface %s to relay on' % ifname)
    by_family = _relay_nets(nets)
    if comment == relay_fingerprint(ifname, ifindex):
        payload = ''
        for version, _kind in RELAY_FAMILIES:
            payload += 'flush set netdev %s peers%d\n' % (table, version)
            if by_family[version]:
                payload += 'add element netdev %s peers%d { %s }\n' % (table, version,
                                                                       _relay_elements(by_family[version]))
        made = False
    else:
        payload, made = relay_ruleset(ifname, ifindex, nets, table), True
    proc = _run_nft(['-f', '-'], payload)
    if proc.returncode != 0:
        raise WglanError('nft refused the relay table (nothing was changed): %s' % proc.stderr.strip())
    return made


def relay_load(table=RELAY_TABLE):
    """{(source address, destination address): (packets, bytes)} the relay forwarded, both families;
    {} without a table."""
    out = {}
    for version, _kind in RELAY_FAMILIES:
        proc = _run_nft(['-j', 'list', 'set', 'netdev', table, 'load%d' % version])
        if proc.returncode != 0:
            continue
        try:
            objects = json.loads(proc.stdout)['nftables']
        except (ValueError, KeyError, TypeError):
            continue
        for obj in objects:
            for entry in (obj.get('set') or {}).get('elem') or []:
                elem = entry.get('elem') if isinstance(entry, dict) else None
                if not isinstance(elem, dict):
                    continue
                pair = (elem.get('val') or {}).get('concat') if isinstance(elem.get('val'), dict) else None
                counter = elem.get('counter') or {}
                if isinstance(pair, list) and len(pair) == 2:
                    out[(str(pair[0]), str(pair[1]))] = (int(counter.get('packets', 0)),
                                                         int(counter.get('bytes', 0)))
    return out
