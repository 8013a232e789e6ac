"""plan_holes: which of the admin's chains get our accept rule, and only ours change."""
import itertools

import pytest
from hypothesis import given, strategies as st

from ansible_collections.wglan.mesh.plugins.module_utils.host import firewall as hf
from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError

HANDLES = itertools.count(100)


def chain(family, table, name, hook, policy):
    return {'chain': {'family': family, 'table': table, 'name': name, 'hook': hook, 'policy': policy,
                      'type': 'filter', 'prio': 0, 'handle': next(HANDLES)}}


def admin_ruleset():
    return [
        chain('inet', 'admin', 'input', 'input', 'drop'),
        chain('inet', 'admin', 'forward', 'forward', 'drop'),
        chain('inet', 'admin', 'output', 'output', 'drop'),      # output: never ours to open
        chain('ip6', 'edge', 'in6', 'input', 'drop'),
        chain('inet', 'relaxed', 'input', 'input', 'accept'),   # accepts anyway
        chain('inet', 'wglan', 'prerouting', 'prerouting', 'accept'),
        chain('ip', 'filter', 'INPUT', 'input', 'drop'),        # iptables-nft's
        chain('inet', 'firewalld', 'filter_INPUT', 'input', 'drop'),  # firewalld's (rewritten at its reloads)
        {'rule': {'family': 'inet', 'table': 'admin', 'chain': 'input', 'handle': next(HANDLES),
                  'expr': [{'accept': None}], 'comment': 'the admin'}},
    ]


def applied(ruleset, commands):
    """What nft would hold after the commands (inserted rules get handles)."""
    out = list(ruleset)
    for command in commands:
        if 'insert' in command:
            out.append({'rule': dict(command['insert']['rule'], handle=next(HANDLES))})
        else:
            gone = command['delete']['rule']['handle']
            out = [o for o in out if o.get('rule', {}).get('handle') != gone]
    return out


def test_every_chain_that_drops_by_default_gets_one_rule_and_nothing_else_does():
    holes = hf.wanted_holes('wglan0', [51820], forward_interface='wglan0')
    commands, added, removed, skipped = hf.plan_holes(admin_ruleset(), holes, owner='wglan0')
    assert sorted(added) == ['inet admin forward: wglan.mesh:wglan0 relay',
                             'inet admin input: wglan.mesh:wglan0 udp/51820',
                             'ip6 edge in6: wglan.mesh:wglan0 udp/51820']
    assert removed == [] and skipped == [('ip filter INPUT', 'managed by iptables'),
                                         ('inet firewalld filter_INPUT', 'managed by firewalld')]
    assert all('insert' in c for c in commands)


@given(st.lists(st.integers(1, 65535), max_size=3), st.lists(st.integers(1, 65535), max_size=3), st.booleans(),
       st.lists(st.integers(1, 65535), max_size=3), st.booleans())
def test_planning_again_after_applying_plans_nothing_and_a_change_touches_only_ours(udp, tcp, relay, udp2, relay2):
    ruleset = admin_ruleset()
    first = hf.wanted_holes('wglan0', udp, tcp, 'wglan0' if relay else None)
    commands, _added, _removed, _skipped = hf.plan_holes(ruleset, first, owner='wglan0')
    after = applied(ruleset, commands)
    assert hf.plan_holes(after, first, owner='wglan0')[0] == []
    # another owner's rules (a second mesh) are never touched by this one
    other = hf.plan_holes(after, hf.wanted_holes('wgmgmt', [51900]), owner='wgmgmt')[0]
    assert all('insert' in c for c in other)
    second = hf.wanted_holes('wglan0', udp2, tcp, 'wglan0' if relay2 else None)
    commands2 = hf.plan_holes(after, second, owner='wglan0')[0]
    final = applied(after, commands2)
    assert hf.plan_holes(final, second, owner='wglan0')[0] == []
    admin = [o for o in final if 'rule' in o and not o['rule'].get('comment', '').startswith(hf.COMMENT_PREFIX)]
    assert admin == [o for o in ruleset if 'rule' in o]


def test_absent_removes_all_of_ours():
    ruleset = admin_ruleset()
    after = applied(ruleset, hf.plan_holes(ruleset, hf.wanted_holes('wglan0', [51820]), owner='wglan0')[0])
    commands, added, removed = hf.plan_holes(after, [], owner='wglan0')[:3]
    assert added == [] and len(removed) == 2 and all('delete' in c for c in commands)
    assert applied(after, commands) == ruleset


def test_a_port_range_is_one_rule_and_bad_ports_are_refused():
    holes = hf.wanted_holes('wglan0', ['51820-51851', 51820, '51820'])
    assert [h.comment for h in holes] == ['wglan.mesh:wglan0 udp/51820', 'wglan.mesh:wglan0 udp/51820-51851']
    assert holes[1].expr[0]['match']['right'] == {'range': [51820, 51851]}
    for bad in ('51851-51820', '0', '70000', 'ssh', '1-2-3', True, ''):
        with pytest.raises(WglanError):
            hf.wanted_holes('wglan0', [bad])


def test_ufw_counts_as_on_only_when_its_config_says_so(tmp_path):
    from ansible_collections.wglan.mesh.plugins.module_utils.host import firewall as host_firewall
    conf = tmp_path / 'ufw.conf'
    assert not host_firewall._ufw_enabled(str(conf))  # no file: no ufw
    conf.write_text('# /etc/ufw/ufw.conf\nENABLED=no\nLOGLEVEL=low\n')
    assert not host_firewall._ufw_enabled(str(conf))
    conf.write_text('# /etc/ufw/ufw.conf\n#ENABLED=yes\nENABLED=yes\n')
    assert host_firewall._ufw_enabled(str(conf))
