import copy
import json

import pytest

from ansible_collections.wglan.mesh.plugins.module_utils.model import nft_objects
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError


def config(**kw):
    args = dict(interface='wglan0', targets=['192.0.2.0/25', '192.0.2.128/25', '198.51.100.7/32', '2001:db8::/64'])
    args.update(kw)
    return nft_objects.RulesConfig(**args)


def find(objects, kind, **match):
    return [o[kind] for o in objects if kind in o and all(o[kind].get(k) == v for k, v in match.items())]


def test_targets_are_merged_per_family():
    c = config()
    assert [str(n) for n in c.targets4] == ['192.0.2.0/24', '198.51.100.7/32']
    assert [str(n) for n in c.targets6] == ['2001:db8::/64']


@pytest.mark.parametrize('kw,fragment', [
    (dict(wg_mark=0x80), 'inside mark_mask'),
    (dict(route_mark=0x20), 'must differ'),
    (dict(mark_mask=0), 'non-zero'),
    (dict(targets=['192.0.2.1/24']), 'invalid target'),
    (dict(mtu=1000), 'mtu'),
])
def test_bad_config_rejected(kw, fragment):
    with pytest.raises(WglanError) as err:
        config(**kw)
    assert fragment in str(err.value)


def _target_rules(exprs):
    return [i for i, e in enumerate(exprs)
            if e[0].get('match', {}).get('left', {}).get('payload', {}).get('field') == 'daddr']


def test_marks_respect_the_mask():
    objects = nft_objects.desired_objects(config(wg_mark=0x100, route_mark=0x200, mark_mask=0x300))
    exprs = [r['expr'] for r in find(objects, 'rule', chain='output')]
    own = exprs[0][0]['match']
    assert own['left'] == {'&': [{'meta': {'key': 'mark'}}, 0x300]} and own['right'] == 0x100
    mangle = exprs[_target_rules(exprs)[0]][1]['mangle']['value']['|']
    keep, value = mangle[0]['&'][1], mangle[1]
    # bits outside the mask pass through untouched; inside it the result is route_mark
    for other in (0, 0x4000, 0xffff0000, 0x0f00):
        before = other | 0x100
        after = (before & keep) | value
        assert after & ~0x300 & 0xffffffff == before & ~0x300 & 0xffffffff
        assert after & 0x300 == 0x200


def test_wireguard_packets_are_exempt_before_marking_in_both_chains():
    objects = nft_objects.desired_objects(config())
    for chain in ('prerouting', 'output'):
        exprs = [r['expr'] for r in find(objects, 'rule', chain=chain)]
        own = [i for i, e in enumerate(exprs) if e[-1] == {'accept': None}
               and e[0]['match']['left'] == {'&': [{'meta': {'key': 'mark'}}, 0x60]}]
        targets = _target_rules(exprs)
        assert own and targets and own[0] < min(targets)
        assert exprs[targets[0]][0]['match']['left'] == {'payload': {'protocol': 'ip', 'field': 'daddr'}}
        # the IPv6 rule matches IPv6 headers (WgLAN matched IPv6 with IPv4 offsets)
        assert exprs[targets[1]][0]['match']['left'] == {'payload': {'protocol': 'ip6', 'field': 'daddr'}}
        assert exprs[targets[1]][0]['match']['right'] == '@targets6'


def test_replies_to_connections_from_outside_the_link_leave_by_the_main_table():
    objects = nft_objects.desired_objects(config(wg_mark=0x100, route_mark=0x200, mark_mask=0x300))
    pre = [r['expr'] for r in find(objects, 'rule', chain='prerouting')]
    # first in prerouting: a new connection not from the link gets wg_mark in its conntrack mark
    first = pre[0]
    assert first[0]['match'] == {'op': '!=', 'left': {'meta': {'key': 'iifname'}}, 'right': 'wglan0'}
    assert first[1]['match']['left'] == {'ct': {'key': 'state'}} and first[1]['match']['right'] == 'new'
    value = first[2]['mangle']['value']['|']
    assert first[2]['mangle']['key'] == {'ct': {'key': 'mark'}} and value[1] == 0x100
    for chain in ('prerouting', 'output'):
        exprs = [r['expr'] for r in find(objects, 'rule', chain=chain)]
        answer = [i for i, e in enumerate(exprs) if e[0].get('match', {}).get('left') == {'ct': {'key': 'direction'}}]
        assert answer and answer[0] < min(_target_rules(exprs)), chain
        rule = exprs[answer[0]]
        assert rule[0]['match']['right'] == 'reply'
        assert rule[1]['match'] == {'op': '==', 'left': {'&': [{'ct': {'key': 'mark'}}, 0x300]}, 'right': 0x100}
        assert rule[2]['mangle']['key'] == {'meta': {'key': 'mark'}} and rule[2]['mangle']['value']['|'][1] == 0x100
        assert rule[3] == {'accept': None}


def test_neighbour_discovery_is_never_routed_into_the_tunnel():
    exprs = [r['expr'] for r in find(nft_objects.desired_objects(config()), 'rule', chain='output')]
    nd = [i for i, e in enumerate(exprs)
          if e[0]['match']['left'] == {'payload': {'protocol': 'icmpv6', 'field': 'type'}}]
    assert nd and nd[0] < min(_target_rules(exprs)) and exprs[nd[0]][-1] == {'accept': None}
    assert {'nd-neighbor-solicit', 'nd-neighbor-advert'} <= set(exprs[nd[0]][0]['match']['right']['set'])


def test_mss_clamp_values():
    objects = nft_objects.desired_objects(config(mtu=1380))
    clamps = [r['expr'][-1]['mangle']['value'] for r in find(objects, 'rule', chain='postrouting')]
    assert clamps == [1340, 1320]


def test_replace_is_one_transaction_that_tolerates_a_missing_table():
    commands = nft_objects.replace_commands(config())['nftables']
    assert commands[1] == {'add': {'table': {'family': 'inet', 'name': 'wglan'}}}
    assert commands[2] == {'delete': {'table': {'family': 'inet', 'name': 'wglan'}}}
    assert all('add' in c for c in commands[3:])
    json.dumps(commands)


def listed(objects):
    """What nft -j list prints: handles added, one set element shown as a range."""
    out = [{'metainfo': {'version': '1.0.6'}}]
    for handle, obj in enumerate(copy.deepcopy(objects)):
        kind = next(iter(obj))
        obj[kind]['handle'] = handle
        obj[kind]['family'] = 'inet'
        out.append(obj)
    return out


def test_canonical_form_ignores_handles_and_element_spelling():
    wanted = nft_objects.desired_objects(config())
    current = listed(wanted)
    targets4 = [o['set'] for o in current if o.get('set', {}).get('name') == 'targets4'][0]
    targets4['elem'] = [{'range': ['192.0.2.0', '192.0.2.127']}, {'prefix': {'addr': '192.0.2.128', 'len': 25}},
                        '198.51.100.7']
    assert nft_objects.canonical(current) == nft_objects.canonical(wanted)
    assert nft_objects.target_view(current)['targets4'] == ['192.0.2.0/24', '198.51.100.7/32']


def test_canonical_form_sees_real_differences():
    wanted = nft_objects.desired_objects(config())
    assert nft_objects.canonical(nft_objects.desired_objects(config(targets=['192.0.2.0/24']))) != nft_objects.canonical(wanted)
    assert nft_objects.canonical(nft_objects.desired_objects(config(mtu=1400))) != nft_objects.canonical(wanted)
    assert nft_objects.canonical(nft_objects.desired_objects(config(interface='wg9'))) != nft_objects.canonical(wanted)
    tampered = listed(wanted)
    del tampered[-1]
    assert nft_objects.canonical(tampered) != nft_objects.canonical(wanted)


def test_canonical_form_reads_both_nft_spellings_of_a_flag_set():
    # nftables 1.0 (Debian 12) lists the MSS clamp's flag mask as ["syn", "rst"], nftables 1.1
    # (Debian 13) as {"|": ["syn", "rst"]}: the same table, which must not be replaced on every call
    wanted = nft_objects.desired_objects(config())
    as_debian13 = json.loads(json.dumps(listed(wanted)).replace('["syn", "rst"]', '{"|": ["syn", "rst"]}'))
    assert as_debian13 != listed(wanted)
    assert nft_objects.canonical(as_debian13) == nft_objects.canonical(wanted)
    # a real difference in the same spot is still one
    other = json.loads(json.dumps(listed(wanted)).replace('["syn", "rst"]', '{"|": ["syn", "fin"]}'))
    assert nft_objects.canonical(other) != nft_objects.canonical(wanted)
