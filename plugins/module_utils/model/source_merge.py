# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""Records from several sources combined into one list, and peer selection (pure)."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.model.node_records import NodeRecord


try:
    import jmespath
    HAS_JMESPATH = True
except ImportError:  # pragma: no cover - exercised by the import sanity test
    HAS_JMESPATH = False


# What a live source knows better than a record kept from earlier: where the node is, the port it
# listens on now (it may have moved behind a shared NAT), and the relays it uses.
LOCATION = ('node_ips', 'public_ip', 'observed', 'port')


def located(record, live):
    """record, with where the node is taken from live (the same node's record from a live source)."""
    values = dict((name, getattr(record, name)) for name in NodeRecord.__slots__)
    for name in LOCATION:
        if getattr(live, name):
            values[name] = getattr(live, name)
    if live.relays is not None:  # {} too: the node says it asks for no relay
        values['relays'] = live.relays
    return NodeRecord(**values)


def merge(earlier, discovered, warn, source='discovery', live=True):
    """NodeRecords from earlier sources first, then the records of source they do not already cover.

    live: the records came from the source now (not the copy kept from the last time it answered);
    then they also update the location of the earlier records of the same nodes.
    """
    merged = list(earlier)
    index = dict((r.public_key, i) for i, r in enumerate(earlier))
    keys = set(index)
    names = set(r.name for r in earlier)
    for record in discovered:
        if record.public_key in keys:
            if live and record.public_key in index:  # the same node, known from a source of higher precedence
                merged[index[record.public_key]] = located(merged[index[record.public_key]], record)
            continue
        if record.name in names:
            warn('%s: node %s has another public key than the %s known from a source of higher precedence; '
                 'that one is used' % (source, record.name, record.name))
            continue
        keys.add(record.public_key)
        names.add(record.name)
        merged.append(record)
    return merged


def select(records, me, expression):
    """Records chosen by a JMESPath expression over {"self": me, "nodes": [records]}.

    The expression returns node records or names; e.g. hub and spoke:
    "self.name == 'hub1' && nodes || nodes[?name == 'hub1']".
    """
    if not HAS_JMESPATH:
        raise WglanError('the Python library "jmespath" is required for peer_selector')
    data = {'self': me.as_dict() if me is not None else {}, 'nodes': [r.as_dict() for r in records]}
    try:
        chosen = jmespath.search(expression, data)
    except jmespath.exceptions.JMESPathError as exc:
        raise WglanError('peer_selector is not a valid JMESPath expression: %s' % exc)
    if chosen is None:
        chosen = []
    if not isinstance(chosen, list):
        raise WglanError('peer_selector must give a list of nodes or names, not %s' % type(chosen).__name__)
    wanted = set()
    for item in chosen:
        if isinstance(item, dict) and 'name' in item:
            wanted.add(item['name'])
        elif isinstance(item, str):
            wanted.add(item)
        else:
            raise WglanError('peer_selector gave %r, expected node records or names' % (item,))
    return [r for r in records if r.name in wanted or (me is not None and r.public_key == me.public_key)]
