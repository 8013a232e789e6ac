"""The Grafana dashboard (deploy/grafana/wglan-mesh.json) against what the watcher exports: every
metric and label a panel asks for is one the watcher's /metrics has (daemon.status.format_metrics),
and Prometheus's own promtool (Debian's, unpacked into build/promtool by setup) parses every query
and lints the exposition. Grafana itself cannot run here (no package, no network): its import is the
one check left out; the structure it needs is checked instead (unique ids, a 24-column grid with no
overlap, the datasource variable on every panel and query)."""
import json
import os
import re
import shutil
import subprocess

import pytest

from ansible_collections.wglan.mesh.plugins.module_utils.daemon import status as status_module
from collection import ROOT

DASHBOARD = os.path.join(ROOT, 'deploy', 'grafana', 'wglan-mesh.json')
PROMTOOL = os.path.join(ROOT, 'build', 'promtool', 'promtool')
SCRAPE_LABELS = {'instance', 'job'}  # (Prometheus adds them to every sample it scrapes)

FULL = dict(interface='wglan0', time=1, reconciles=3, probes=1, peers=[
    dict(name='a1', public_key='k1', address='200:1001::1/128', endpoint='192.0.2.10:51820', state='up',
         handshake_age=5, via=None, path='direct', rx_bytes=10, tx_bytes=20)],
    relayed=[dict(source='a1', destination='b1', packets=3, bytes=420)],
    names=dict(via='resolved', server='[200:1001::1]:53', answered=1, dropped=0, not_local=0, over_rate=0))


def exported():
    """{metric name: set of its labels} of the watcher's exposition."""
    metrics = {}
    for line in status_module.format_metrics(FULL).splitlines():
        if line.startswith('# TYPE '):
            metrics.setdefault(line.split()[2], set())
        elif line and not line.startswith('#'):
            name, _sep, rest = line.partition('{')
            metrics.setdefault(name.split()[0], set()).update(re.findall(r'(\w+)="', rest))
    return metrics


def dashboard():
    with open(DASHBOARD) as handle:
        return json.load(handle)


def queries():
    return [(panel['title'], target) for panel in dashboard()['panels'] for target in panel['targets']]


def test_every_metric_a_panel_asks_for_is_one_the_watcher_exports_with_those_labels():
    metrics = exported()
    assert 'wglan_names_queries_total' in metrics and 'wglan_peer_up' in metrics
    used = set()
    for title, target in queries():
        names = set(re.findall(r'\bwglan_[a-z_]+', target['expr']))
        assert names, title
        for name in names:
            assert name in metrics, '%s: %s is not exported' % (title, name)
        used |= names
        grouped = set()
        for clause in re.findall(r'\b(?:by|on)\s*\(([^)]*)\)', target['expr']):
            grouped |= set(label.strip() for label in clause.split(',') if label.strip())
        grouped |= set(re.findall(r'{{\s*(\w+)\s*}}', target.get('legendFormat', '')))
        carried = set.union(*(metrics[n] for n in names)) | SCRAPE_LABELS
        assert grouped <= carried, '%s: labels %s are on none of %s' % (title, grouped - carried, names)
    # the four: peers up, relayed pairs, handshake age, traffic
    assert {'wglan_peer_up', 'wglan_peer_relayed', 'wglan_peer_last_handshake_age_seconds',
            'wglan_peer_receive_bytes_total', 'wglan_peer_transmit_bytes_total'} <= used


def test_the_dashboard_is_what_grafana_imports():
    data = dashboard()
    assert data['uid'] and data['title'] and data['schemaVersion'] >= 36
    variables = dict((v['name'], v) for v in data['templating']['list'])
    assert variables['datasource']['type'] == 'datasource' and variables['datasource']['query'] == 'prometheus'
    ids = [panel['id'] for panel in data['panels']]
    assert len(ids) == len(set(ids))
    cells = set()
    for panel in data['panels']:
        grid = panel['gridPos']
        assert grid['x'] >= 0 and grid['x'] + grid['w'] <= 24 and grid['h'] > 0, panel['title']
        mine = set((x, y) for x in range(grid['x'], grid['x'] + grid['w']) for y in range(grid['y'], grid['y'] + grid['h']))
        assert not cells & mine, 'panel %s overlaps another' % panel['title']
        cells |= mine
        assert panel['datasource']['uid'] == '${datasource}', panel['title']
        for target in panel['targets']:
            assert target['datasource']['uid'] == '${datasource}' and target['refId'], panel['title']


def _promtool():
    found = PROMTOOL if os.path.exists(PROMTOOL) else shutil.which('promtool')
    if found is None:
        # (ansible-test units runs a copy without build/: there the two promtool tests are skipped;
        # `make unit` runs them, and in CI a missing promtool fails)
        if os.environ.get('CI'):
            pytest.fail('no %s (scripts/setup.sh unpacks it)' % PROMTOOL)
        pytest.skip('no %s (scripts/setup.sh unpacks it)' % PROMTOOL)
    return found


def test_promtool_parses_every_query(tmp_path):
    promtool = _promtool()
    rules = ['groups:', '  - name: wglan_dashboard', '    rules:']
    for index, (_title, target) in enumerate(queries()):
        expr = target['expr'].replace('$instance', '.*')
        rules += ['      - record: wglan_dashboard_query_%d' % index, '        expr: %s' % json.dumps(expr)]
    path = tmp_path / 'rules.yml'
    path.write_text('\n'.join(rules) + '\n')
    done = subprocess.run([promtool, 'check', 'rules', str(path)], stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          universal_newlines=True, timeout=60, check=False)
    assert done.returncode == 0 and 'SUCCESS: %d rules found' % len(queries()) in done.stdout, done.stdout


def test_promtool_finds_nothing_wrong_in_the_exposition():
    promtool = _promtool()
    done = subprocess.run([promtool, 'check', 'metrics'], input=status_module.format_metrics(FULL),
                          stdout=subprocess.PIPE, stderr=subprocess.STDOUT, universal_newlines=True, timeout=60, check=False)
    assert done.returncode == 0 and done.stdout.strip() == '', done.stdout
