# -*- coding: utf-8 -*-
# Copyright (c) 2026 wglan.mesh contributors
# GNU General Public License v3.0+ (see LICENSE or https://www.gnu.org/licenses/gpl-3.0.txt)
"""wglan_node: this host as a node of the mesh in one call.

Each step is one of the collection's modules (its options as a dict, validated with that module's
own argument spec, run by that module's own code), in the order a node needs them; a step not
given is not run. One call costs one connection and one Python start on the host instead of one
per module, which is what a run over a fleet spends its time on.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import shutil
import subprocess
import time

from ansible.module_utils.common.arg_spec import ArgumentSpecValidator

from ansible_collections.wglan.mesh.plugins.module_utils.errors import WglanError
from ansible_collections.wglan.mesh.plugins.module_utils.daemon import names_server
from ansible_collections.wglan.mesh.plugins.module_utils.host import links, meshes_on_host, resolved, watcher_state
from ansible_collections.wglan.mesh.plugins.module_utils.model import meshes
from ansible_collections.wglan.mesh.plugins.module_utils.model import keys as key_model
from ansible_collections.wglan.mesh.plugins.module_utils.model import platforms, settings, source_merge
from ansible_collections.wglan.mesh.plugins.module_utils.shells import address, certificates, firewall, info, keys, peers
from ansible_collections.wglan.mesh.plugins.module_utils.shells import record, rules, watcher
from ansible_collections.wglan.mesh.plugins.module_utils.sources import kubernetes_api

# (option, shell, what the shell's own argument spec adds): in the order they run
STEPS = (
    ('keys', keys, {}),
    ('address', address, dict(mutually_exclusive=address.MUTUALLY_EXCLUSIVE)),
    ('record', record, {}),
    ('firewall', firewall, {}),
    ('mesh', peers, {}),
    ('rules', rules, {}),
    ('watcher', watcher, {}),
)
# seconds with no other peer answering after which the wait before the record ends
SETTLE = 3
# given at the top level, where Ansible's own no_log keeps them out of every log and output
MESH_TOP = ('peers', 'cluster_token')

ARGUMENTS = dict((name, dict(type='dict')) for name, _shell, _extra in STEPS)
ARGUMENTS['keys']['no_log'] = False  # (the key file's path: the key itself is never an option)
ARGUMENTS.update(
    peers=dict(type='list', elements='dict', options=peers.PEER_OPTIONS),
    cluster_token=dict(type='str', no_log=True),
    wait=dict(type='int', default=0),
    packages=dict(type='bool', default=True),
    supported_os_only=dict(type='bool', default=True),
    mesh_name=dict(type='str', default=''),
    rotate_keys=dict(type='bool', default=False),
    meshes_root=dict(type='path', default=meshes_on_host.ROOT),
    certificate=dict(type='str'),
    node_ip_prefixes=dict(type='list', elements='str'),
)


class StepFailed(Exception):
    def __init__(self, msg, details):
        super(StepFailed, self).__init__(msg)
        self.msg, self.details = msg, details


class Step:
    """What a module's code sees of its module: its own validated options, the node call's check
    and diff mode and warnings; fail_json stops the node call at this step."""

    def __init__(self, node, name, shell, extra, given):
        validated = ArgumentSpecValidator(shell.ARGUMENTS, **extra).validate(given)
        node.no_log_values.update(getattr(validated, '_no_log_values', ()))
        if validated.error_messages:
            node.fail_json(msg='%s: %s' % (name, '; '.join(validated.error_messages)))
        self.name, self.params = name, validated.validated_parameters
        self.check_mode, self._diff, self._node = node.check_mode, node._diff, node

    def warn(self, text):
        self._node.warn(text)

    def fail_json(self, msg, **details):
        raise StepFailed(msg, details)


def kernel_has_wireguard():
    if os.path.isdir('/sys/module/wireguard'):
        return True
    try:
        return subprocess.run(['modprobe', '--dry-run', '--quiet', 'wireguard'], stdin=subprocess.DEVNULL,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, timeout=30,
                              check=False).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


def missing_packages(given):
    """The Debian packages the steps given need and the host lacks (libraries that do not import,
    commands not on the PATH, wireguard-go where the kernel has no WireGuard)."""
    mesh = given.get('mesh') or {}
    wanted = [('python3-cryptography', key_model.HAS_CRYPTOGRAPHY), ('python3-pyroute2', links.HAS_PYROUTE2),
              ('nftables', shutil.which('nft')), ('iproute2', shutil.which('ip')),
              ('wireguard-tools', shutil.which('wg'))]
    if mesh.get('peer_selector'):
        wanted.append(('python3-jmespath', source_merge.HAS_JMESPATH))
    if mesh.get('kubernetes') or mesh.get('kubeconfig'):
        wanted.append(('python3-kubernetes', kubernetes_api.HAS_KUBERNETES))
    if mesh.get('names') and mesh.get('watcher') and mesh.get('names_via') != 'hosts' \
            and (mesh.get('names_via') == 'resolved' or resolved.in_use()):
        wanted.append(('python3-dnspython', names_server.HAS_DNSPYTHON))  # (the watcher's names responder)
    missing = [package for package, present in wanted if not present]
    if given.get('mesh') is not None and not shutil.which('wireguard-go') and not kernel_has_wireguard():
        missing.append('wireguard-go')
    return missing


OS_RELEASE = '/etc/os-release'


def os_release():
    """The host's os-release fields ({} without the file)."""
    try:
        with open(OS_RELEASE) as handle:
            return platforms.parse_os_release(handle.read())
    except (OSError, UnicodeDecodeError):
        return {}


def os_family(fields):
    """'Debian' for Debian and its derivatives (as Ansible's os_family says), else the os-release ID."""
    if 'debian' in [fields.get('ID', '')] + fields.get('ID_LIKE', '').split():
        return 'Debian'
    return fields.get('ID') or None


def _chain(name, given, results, steps_given):
    """A step's options completed from the steps before it (what the user gave wins)."""
    params = dict(given)
    key = (results.get('keys') or {}).get('public_key')
    where = results.get('address') or {}
    if name == 'record':
        if key:
            params.setdefault('public_key', key)
        if where.get('address'):
            params.setdefault('address', where['address'])
    elif name == 'mesh':
        if where.get('cidr'):
            params.setdefault('addresses', [where['cidr']])
        if 'record' in results:
            params.setdefault('publish', results['record']['record'])
    elif name == 'rules':
        if 'targets' not in params and 'watcher' not in steps_given and 'mesh' in results:
            params['targets'] = results['mesh'].get('targets') or []
    return params


def _summary(results, result):
    if 'keys' in results:
        result['public_key'] = results['keys'].get('public_key')
    if 'address' in results:
        result.update(address=results['address']['address'], cidr=results['address']['cidr'])
    if 'record' in results:
        result.update(record=results['record']['record'], record_digest=results['record']['digest'],
                      record_changed=bool(results['record']['changed']))
    if 'firewall' in results:
        result['firewall_manager'] = results['firewall']['manager']
    if 'mesh' in results:
        result['live_sources'] = results['mesh'].get('live_sources', False)
        if 'records_used' in results['mesh']:  # (peers from the inventory's records)
            result['records_used'] = results['mesh']['records_used']


def _wait(node, given):
    """Before the record (so that it carries what this node observes): until every peer of the
    interface answered, or wait seconds passed."""
    ifname = (given.get('record') or {}).get('interface') or (given.get('mesh') or {}).get('interface') or 'wglan0'
    found = info.gather_waiting(ifname, node.params['wait'], settle=SETTLE)
    return dict(waited=found.get('waited', 0), peers_up=found.get('peers_up', 0))


def _certificate_state(node, given, results):
    """In a mesh with a CA: the node's certificate as its record carries it, and what it asks the controller to
    sign (certificate_request: its record and signing key) when that certificate does not grant its record."""
    mesh, record, signer = given['mesh'], results['record']['record'], results['record'].get('signer')
    if signer is None:  # (no private_key_path in the record step, or check mode on a new node: no key yet)
        return dict(certificate=record.get('certificate'), certificate_request=None)
    request = certificates.certificate_request(record, signer, mesh['ca_public_key'],
                                               mesh.get('mesh_name') or mesh.get('interface') or 'wglan0',
                                               node.params['node_ip_prefixes'], int(time.time()))
    return dict(certificate=record.get('certificate'), certificate_request=request)


def run(node):
    """Every step given, in order. Returns the node's result; a failing step fails the call, naming it."""
    given = dict((name, node.params[name]) for name, _shell, _extra in STEPS if node.params[name] is not None)
    for name in MESH_TOP:
        # the token always at the top (Ansible's no_log); peers there too when given at both places
        if name in (given.get('mesh') or {}) and (name == 'cluster_token' or node.params[name] is not None):
            node.fail_json(msg='mesh: give %s at the top level of wglan_node, not in mesh' % name)
        if node.params[name] is not None:
            given['mesh'] = dict(given.get('mesh') or {}, **{name: node.params[name]})
    try:
        claims = meshes.claims_of_call(node.params['mesh_name'], given)
        clashes = meshes.conflicts(claims, meshes_on_host.others(claims.mesh, node.params['meshes_root']))
    except WglanError as exc:
        node.fail_json(msg=str(exc))
    if clashes:
        node.fail_json(msg='this host is in another mesh that this one would step on (nothing was changed): %s'
                       % '; '.join(clashes), conflicts=clashes)
    if node.params['certificate']:
        # a new certificate: the record step puts it in the record, the mesh step keeps it on the node
        for name in ('record', 'mesh'):
            if name in given:
                given[name] = dict(given[name] or {}, certificate=node.params['certificate'])
    if node.params['rotate_keys'] and 'mesh' in given:
        refused = settings.rotation_refused(given['mesh'])
        if refused:
            node.fail_json(msg='%s (nothing was changed)' % refused)
    release = os_release()
    refused = platforms.refusal(release) if node.params['supported_os_only'] else None
    if refused:
        node.fail_json(msg=refused, os_family=os_family(release))
    result = dict(changed=False, os_family=os_family(release), missing=[], steps=[])
    if node.params['packages']:
        result['missing'] = missing_packages(given)
        if result['missing']:
            return result  # the role installs them and calls again; nothing was touched
    if not 0 <= node.params['wait'] <= 3600:
        node.fail_json(msg='wait must be between 0 and 3600 seconds')
    if 'mesh' in given:
        # what this mesh takes of the host, for the other meshes' calls to check against and their watchers
        # to leave alone (an interface's addresses are no node's IPs): before the interface exists
        try:
            result['changed'] = meshes_on_host.write(
                claims, meshes_on_host.claims_path(claims.mesh, node.params['meshes_root']), node.check_mode)
        except WglanError as exc:
            node.fail_json(msg='mesh: %s' % exc)
    if 'mesh' in given and (given['mesh'] or {}).get('interface'):
        # whom this node reaches before the call changes anything: a run compares it with its end
        status = (given.get('watcher') or {}).get('status_path') or meshes.paths(node.params['mesh_name'])['status']
        result['reached_before'] = info.reached_now(given['mesh']['interface'], status,
                                                    (given['mesh'] or {}).get('relays_path') or watcher_state.PATHS)
    results, diffs, facts = {}, [], {}
    result['seconds'] = seconds = {}
    for name, shell, extra in STEPS:
        if name not in given:
            continue
        if name == 'record' and node.params['wait']:
            started = time.monotonic()
            result['wait'] = _wait(node, given)
            seconds['wait'] = round(time.monotonic() - started, 2)
        started = time.monotonic()
        step = Step(node, name, shell, extra, _chain(name, given[name] or {}, results, given))
        try:
            outcome = shell.run(step)
        except StepFailed as exc:
            node.fail_json(msg='%s: %s' % (name, exc.msg), steps=result['steps'], **exc.details)
        diff = outcome.pop('diff', None)
        if diff is not None:
            diffs.append(dict(diff, before_header='%s (before)' % name, after_header='%s (after)' % name))
        facts.update(outcome.pop('ansible_facts', None) or {})
        results[name] = outcome
        seconds[name] = round(time.monotonic() - started, 2)
        result['steps'].append(name)
        result['changed'] = result['changed'] or bool(outcome.get('changed'))
    result.update(results)
    _summary(results, result)
    if 'mesh' in results and results['mesh'].get('interface'):
        found = info.gather_waiting(results['mesh']['interface'], 0)
        result.update(peers_up=found.get('peers_up', 0), peers_relayed=found.get('peers_relayed', 0),
                      peers_total=len(found.get('peers') or ()))
        result['all_up'] = result['peers_up'] + result['peers_relayed'] == result['peers_total']
    if 'record' in results and (given.get('mesh') or {}).get('ca_public_key'):
        try:
            result.update(_certificate_state(node, given, results))
        except WglanError as exc:
            node.fail_json(msg='certificate: %s' % exc)
    if facts:
        result['ansible_facts'] = facts
    if diffs and node._diff:
        result['diff'] = diffs
    return result
