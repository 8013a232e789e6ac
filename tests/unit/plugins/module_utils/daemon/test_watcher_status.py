"""The watcher's status as `wglan status` prints it and as Prometheus metrics, with a relay's load."""
from ansible_collections.wglan.mesh.plugins.module_utils.daemon import status as watcher

STATUS = dict(interface='wglan0', time=0, reconciles=3, peers=[
    dict(name='a1', public_key='k1', address='200:1001::1/128', endpoint='192.0.2.10:51820', state='up',
         handshake_age=5, via=None, path='direct', rx_bytes=10, tx_bytes=20),
    dict(name='b1', public_key='k2', address='200:1001::2/128', endpoint='', state='stale',
         handshake_age=None, via='a1', path='via a1', rx_bytes=0, tx_bytes=0)],
    relayed=[dict(source='a1', destination='b1', packets=3, bytes=420)], probes=2)


def test_the_status_table_lists_what_the_node_relayed_after_the_peers():
    text = watcher.format_status(STATUS)
    lines = text.splitlines()
    assert lines[1].split() == ['PEER', 'ADDRESS', 'ENDPOINT', 'STATE', 'HANDSHAKE', 'PATH']
    assert lines[3].split()[-2:] == ['via', 'a1'] and lines[4] == ''
    assert lines[5:] == ['relayed for others:', '  a1 -> b1: 3 packets, 420 bytes']
    assert '' not in watcher.format_status(dict(STATUS, relayed=[])).splitlines()


def test_the_metrics_count_the_relay_load_per_pair():
    text = watcher.format_metrics(STATUS)
    assert 'wglan_relay_forwarded_bytes_total{from="a1",to="b1"} 420' in text
    assert 'wglan_relay_forwarded_packets_total{from="a1",to="b1"} 3' in text
    assert '# TYPE wglan_relay_forwarded_bytes_total counter' in text
    assert 'wglan_probes_total 2' in text
    assert 'wglan_relay_forwarded' not in watcher.format_metrics(dict(STATUS, relayed=[])).replace(
        '# HELP wglan_relay_forwarded', '').replace('# TYPE wglan_relay_forwarded', '')


def test_the_status_and_the_metrics_say_where_the_names_are_answered():
    names = dict(via='resolved', server='[200:1001::1]:53', answered=7, dropped=1, not_local=40, over_rate=2, errors=0)
    text = watcher.format_status(dict(STATUS, names=names))
    assert text.splitlines()[-1] == 'names: answered on [200:1001::1]:53 for systemd-resolved (7 answered, 42 kept out)'
    assert watcher.format_status(dict(STATUS, names=dict(via='hosts'))).splitlines()[-1] == 'names: in the hosts file'
    metrics = watcher.format_metrics(dict(STATUS, names=names))
    assert 'wglan_names_queries_total{result="answered"} 7' in metrics
    assert 'wglan_names_queries_total{result="not_local"} 40' in metrics
    assert 'wglan_names_queries_total{' not in watcher.format_metrics(STATUS)


def test_the_metrics_say_what_the_last_reconcile_did_not_admit():
    metrics = watcher.format_metrics(dict(STATUS, refused=dict(not_admitted=2, claim_dropped=5)))
    assert 'wglan_records_refused{reason="not_admitted"} 2' in metrics
    assert 'wglan_records_refused{reason="claim_dropped"} 5' in metrics
    assert 'wglan_records_refused{reason="not_admitted"} 0' in watcher.format_metrics(STATUS)
