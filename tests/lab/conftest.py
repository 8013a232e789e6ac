import pytest

from collection import skip_without
from lab import Lab, new_name, plan

REQUIRED = ('systemd-nspawn', 'debootstrap', 'ansible-playbook', 'nft', 'unshare', 'qemu-system-x86_64')


def pytest_collection_modifyitems(config, items):
    skip_without(items, REQUIRED, 'lab tests')


# The main labs look like a fleet: two Debian releases in one mesh, and hosts whose admins
# run a firewall of each kind Debian ships (hub1's own nftables table drops by default).
RELEASES = {'a2': 'trixie', 'b1': 'trixie', 'b2': 'trixie'}
FIREWALLS = {'hub1': 'nftables', 'a1': 'ufw', 'b1': 'firewalld'}


@pytest.fixture(scope='module')
def lab():
    """Five machines: hub1 on the public net; a1, a2 behind NAT A; b1, b2 behind NAT B.
    a2, b1, b2 run Debian 13, the others Debian 12; hub1, a1 and b1 have host firewalls."""
    instance = Lab(new_name())
    try:
        instance.up(plan(public=1, sites=2, per_site=2, releases=RELEASES, firewalls=FIREWALLS))
        yield instance
    finally:
        instance.down()
