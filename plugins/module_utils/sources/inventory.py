# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""The inventory source: the records of the group members a run was given."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.model.node_records import parse_record


def records_for_members(members, raw_records, saved, warn):
    """The record to use for each member of the group.

    raw_records lines up with members (None where this run has no record for a
    member, e.g. outside a --limit or unreachable). For those the last record
    this node used is kept, so a run that cannot see a node does not drop it.
    Nodes that left the group are dropped. Returns (records, used) where used is
    what to save for next time.
    """
    if raw_records is not None and len(raw_records) != len(members):
        raise WglanError('records must line up with members (%d records for %d members)'
                         % (len(raw_records), len(members)))
    saved = saved or {}
    # (quietly: the node role's first call of a run peers from what each node kept, and a --limit
    # run does so for every member outside the limit; an unreachable host is Ansible's to report)
    records = []
    used = {}
    for index, name in enumerate(members):
        raw = raw_records[index] if raw_records is not None else None
        record = None
        if raw:
            try:
                record = parse_record(raw, name)
            except WglanError as exc:
                warn('node %s: record skipped: %s' % (name, exc))
        if record is None and name in saved:
            try:
                record = parse_record(saved[name], name)
            except WglanError:
                record = None
        if record is None:
            if not raw:
                warn('node %s: no record yet; it joins when it has run once' % name)
            continue
        if record.name != name:
            record.name = name
        records.append(record)
        used[name] = record.as_dict()
    return records, used
