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
# listens on now (it may have moved behind a shared NAT), its IPv4 overlay address (its watcher moves it
# when a node with a smaller key claims it too), and the relays it uses.
LOCATION = ('node_ips', 'public_ip', 'observed', 'port', 'address4')


# How many key rotations a node's key is followed through, and how many announcements are kept.
SUCCESSION_DEPTH = 16
SUCCESSORS_KEPT = 4096


def located(record, live, public_key=None):
    """record, with where the node is taken from live (the same node's record from a live source), and
    the next key live announces (a key rotation under way: the record kept from a run cannot know it).
    public_key: the node switched to this key (live's), which the record then stands for."""
    values = dict((name, getattr(record, name)) for name in NodeRecord.__slots__ if name != 'unrouted')
    for name in LOCATION:
        if getattr(live, name):
            values[name] = getattr(live, name)
    if live.relays is not None:  # {} too: the node says it asks for no relay
        values['relays'] = live.relays
    values['next_key'] = live.next_key
    if public_key is not None:
        values['public_key'] = public_key
    out = NodeRecord(**values)
    out.unrouted = record.unrouted
    return out


def announced(records):
    """{public key: [next public key, switch time]} of the records that announce a key rotation."""
    return dict((r.public_key, [r.next_key[0], r.next_key[1]]) for r in records if r.next_key is not None)


def kept_successors(kept, fresh):
    """The announcements to keep: the fresh ones over those kept (a dict of the same form; anything else
    in it is ignored), the SUCCESSORS_KEPT latest by switch time."""
    out = {}
    for key, value in (kept or {}).items() if isinstance(kept, dict) else ():
        if isinstance(key, str) and isinstance(value, list) and len(value) == 2 and isinstance(value[0], str) \
                and isinstance(value[1], (int, float)) and not isinstance(value[1], bool):
            out[key] = [value[0], value[1]]
    out.update(fresh)
    return _latest(out, lambda value: value[1])


def withdrawals(kept, records, now):
    """The keys of nodes that left the mesh ({key: time it was seen}), kept until a record of the same key
    that is not a withdrawal shows the node back (it joined again): kept over what records (a live
    source's, now) say, the SUCCESSORS_KEPT latest."""
    out = {}
    for key, at in (kept or {}).items() if isinstance(kept, dict) else ():
        if isinstance(key, str) and isinstance(at, (int, float)) and not isinstance(at, bool):
            out[key] = at
    for record in records:
        if record.withdrawn:
            out.setdefault(record.public_key, now)
        else:
            out.pop(record.public_key, None)
    return _latest(out, lambda value: value)


def _latest(kept, when):
    """kept ({key: value}), the SUCCESSORS_KEPT latest by when(value) when it holds more."""
    if len(kept) <= SUCCESSORS_KEPT:
        return kept
    return dict(sorted(kept.items(), key=lambda item: (-when(item[1]), item[0]))[:SUCCESSORS_KEPT])


def without_withdrawn(records, withdrawn):
    """records less those of nodes that left the mesh (a withdrawal is the node's own last record, signed by
    its key: it wins over a record kept from before, such as the inventory's of the last run)."""
    return [r for r in records if not r.withdrawn and r.public_key not in withdrawn]


def succeeds(successors, old, new):
    """Whether key new took over from key old through announced rotations (old announced new, or a key
    old announced announced new, and so on)."""
    key = old
    for _step in range(SUCCESSION_DEPTH):
        nxt = (successors.get(key) or [None])[0]
        if nxt is None or nxt == old:
            return False
        if nxt == new:
            return True
        key = nxt
    return False


def merge(earlier, discovered, warn, source='discovery', live=True, successors=None):
    """NodeRecords from earlier sources first, then the records of source they do not already cover.

    live: the records came from the source now (not the copy kept from the last time it answered);
    then they also update the location of the earlier records of the same nodes.
    successors: announced key rotations ({key: [next key, time]}): a record of a node whose earlier
    record has a key that announced this one's (the node rotated its key since that record was made)
    takes that record's place, with the new key. Any other record of a known name with another key is
    refused: a source of lower precedence does not take a node's name.
    """
    merged = list(earlier)
    index = dict((r.public_key, i) for i, r in enumerate(earlier))
    keys = set(index)
    by_name = dict((r.name, i) for i, r in enumerate(earlier))
    names = set(r.name for r in earlier)
    successors = successors or {}
    for record in discovered:
        if record.public_key in keys:
            if live and record.public_key in index:  # the same node, known from a source of higher precedence
                merged[index[record.public_key]] = located(merged[index[record.public_key]], record)
            continue
        if record.name in by_name and succeeds(successors, merged[by_name[record.name]].public_key, record.public_key):
            at = by_name[record.name]
            index.pop(merged[at].public_key, None)
            merged[at] = located(merged[at], record, public_key=record.public_key)
            index[record.public_key] = at
            keys.add(record.public_key)
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
