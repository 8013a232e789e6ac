# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The nftables table wglan owns: model (pure) and applier (nft -j).

Design (the README's "How the rules work"):
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
The table is always replaced in one nft transaction."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import ipaddress
import json
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError


DEFAULT_TABLE = 'wglan'


DEFAULT_WG_MARK = 0x20


DEFAULT_ROUTE_MARK = 0x40


DEFAULT_MARK_MASK = 0x60


FAMILY = 'inet'


MANGLE_PRIORITY = -150


_SET4 = 'targets4'


_SET6 = 'targets6'


class RulesConfig:
    """targets None: keep what the table's sets hold (ensure_table reads them)."""

    def __init__(self, interface, targets=(), table=DEFAULT_TABLE, wg_mark=DEFAULT_WG_MARK,
                 route_mark=DEFAULT_ROUTE_MARK, mark_mask=DEFAULT_MARK_MASK, mtu=1420, allow=None):
        self.keep_targets = targets is None
        self.allow = None if allow is None else list(allow)  # [model.segments.Allow]: the filter; None: none
        self.kept = []  # objects of the table as it is, kept as they are (the watcher's filter, for a run)
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
    if config.allow is not None:
        objects.extend(filter_objects(config))
    for obj in config.kept:
        kind = next(iter(obj))
        objects.append({kind: dict((k, v) for k, v in obj[kind].items() if k != 'handle')})
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


FILTER_CHAINS = (('filter_in', 'input'), ('filter_fwd', 'forward'))
FILTER_PRIORITY = 0


def _allow_set(index, version):
    return 'allow%d_%d' % (index, version)


def filter_objects(config):
    """The segment policy's filter (model.segments.allowed): what arrives on the WireGuard link for this
    node (input) or through it (forward, pod networking) passes when it answers a connection this node
    made, or comes from an allowed source (to an allowed port); the rest is dropped. Other links pass."""
    t = {'family': FAMILY, 'table': config.table}
    objects = []
    rules = []
    for index, allow in enumerate(config.allow):
        for version, kind, nets, proto_name in ((4, 'ipv4_addr', allow.nets4, 'ip'), (6, 'ipv6_addr', allow.nets6, 'ip6')):
            if not nets:
                continue
            name = _allow_set(index, version)
            objects.append({'set': dict(t, name=name, type=kind, flags=['interval'], elem=[_element(n) for n in nets])})
            source = _match({'payload': {'protocol': proto_name, 'field': 'saddr'}}, '@' + name)
            kinds = [_match(_meta('l4proto'), allow.proto)] if allow.proto else []
            if allow.ports:
                for low, high in allow.ports:
                    port = low if low == high else {'range': [low, high]}
                    rules.append([source] + kinds + [_match({'payload': {'protocol': 'th', 'field': 'dport'}}, port),
                                                     {'accept': None}])
            else:
                rules.append([source] + kinds + [{'accept': None}])
    for chain, hook in FILTER_CHAINS:
        objects.append({'chain': dict(t, name=chain, type='filter', hook=hook, prio=FILTER_PRIORITY, policy='accept')})
        body = [[_match(_meta('iifname'), config.interface, '!='), {'accept': None}],
                [_match(_ct('state'), ['established', 'related'], 'in'), {'accept': None}]]
        body += rules + [[{'drop': None}]]
        objects.extend({'rule': dict(t, chain=chain, expr=expr)} for expr in body)
    return objects


def filter_view(objects):
    """The filter's own objects of a table (its sets, chains and their rules), to keep as they are."""
    names = set(chain for chain, _hook in FILTER_CHAINS)
    out = []
    for obj in objects or []:
        kind = next(iter(obj))
        body = obj[kind]
        if (kind == 'set' and str(body.get('name', '')).startswith('allow')) or \
                (kind == 'chain' and body.get('name') in names) or (kind == 'rule' and body.get('chain') in names):
            out.append(obj)
    return out


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
