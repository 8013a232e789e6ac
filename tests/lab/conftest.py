import pytest

from collection import skip_without
from lab import Lab, new_name, plan

REQUIRED = ('systemd-nspawn', 'debootstrap', 'ansible-playbook', 'nft', 'unshare', 'qemu-system-x86_64')


def pytest_collection_modifyitems(config, items):
    skip_without(items, REQUIRED, 'lab tests')


@pytest.fixture(scope='module')
def lab():
    """Five machines: hub1 on the public net; a1, a2 behind NAT A; b1, b2 behind NAT B."""
    instance = Lab(new_name())
    try:
        instance.up(plan(public=1, sites=2, per_site=2))
        yield instance
    finally:
        instance.down()
