import os
import shutil

import pytest

from lab import Lab, new_name, plan

REQUIRED = ('systemd-nspawn', 'debootstrap', 'ansible-playbook', 'nft', 'unshare')


def pytest_collection_modifyitems(config, items):
    missing = [tool for tool in REQUIRED if shutil.which(tool) is None]
    reason = None
    if os.geteuid() != 0:
        reason = 'the lab needs root'
    elif missing:
        reason = 'missing tools: %s' % ', '.join(missing)
    if reason and not os.environ.get('CI'):
        for item in items:
            item.add_marker(pytest.mark.skip(reason=reason))


@pytest.fixture(scope='module')
def lab():
    """Five machines: hub1 on the public net; a1, a2 behind NAT A; b1, b2 behind NAT B."""
    instance = Lab(new_name())
    try:
        instance.up(plan(public=1, sites=2, per_site=2))
        yield instance
    finally:
        instance.down()
