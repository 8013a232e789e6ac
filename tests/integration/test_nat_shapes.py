"""Every pair pings in every NAT shape users meet, with the role's default timers (tests/integration/shapes.py).

The two meshes form at once on one discovery service. What is checked:
- every ordered pair of each mesh pings over its mesh IPv6 address, and over its node IPv4
  address where both ends have one (through the mesh: the sites' addresses are private);
- the path each shape must find: through the relay behind a port-preserving NAT where both ends
  are behind symmetric NAT; direct across two levels of NAT, and between two address-and-port
  filtering NATs (hole punching); through the dual-stack relay between the IPv6-only machine
  and the IPv4-only ones, and each pair names the same path at both ends;
- a site that turns symmetric under traffic: its pairs are relayed and ping again, and go direct
  again once the NAT is friendly. (How long each takes is measured by benchmarks/convergence.py
  --shapes, not asserted here.)
"""
import sys
import time

import pytest

import shapes
from netns import wait_for


@pytest.fixture(scope='module')
def world(tmp_path_factory):
    with shapes.world(str(tmp_path_factory.mktemp('shapes'))) as built:
        yield built


def test_every_pair_pings_in_every_shape(world):
    pairs = shapes.all_pairs(world.members('A')) + shapes.all_pairs(world.members('B'))
    first = shapes.converge(world, 240)
    missing = [p for p in pairs if p not in first]
    assert missing == [], (missing, world.unreached(missing),
                           dict((n, world.log(n)[-1500:]) for n in sorted(set(a for a, _b in missing))))
    sys.stdout.write('\nfull mesh: %s\n' % ', '.join('%s-%s %.0f s' % (a, b, t) for (a, b), t in sorted(first.items())))


@pytest.mark.parametrize('shape', shapes.SHAPES, ids=[s[0].split(',')[0] for s in shapes.SHAPES])
def test_each_shape_finds_its_path_at_both_ends(world, shape):
    _title, _mesh, _names, expected = shape

    def wrong():
        out = []
        for (a, b), path in expected.items():
            for here, there in ((a, b), (b, a)):
                if world.path(here, there) != path:
                    out.append((here, there, world.path(here, there), path))
        return out
    assert wait_for(lambda: not wrong(), timeout=60, interval=1), wrong()
    assert world.unreached(list(expected)) == []


def test_a_site_that_turns_symmetric_under_traffic_is_relayed_then_direct_again(world):
    """sb's router starts mapping every destination to a random port while sb and tb ping each
    other: the pair is relayed through pb (the only relay of mesh B) and pings again; friendly
    again, it goes direct."""
    assert world.path('sb', 'tb') == 'direct'
    traffic = [world.background('sb', 'ping -i 0.5 -W 1 %s' % world.state['tb']['address']),
               world.background('tb', 'ping -i 0.5 -W 1 %s' % world.state['sb']['address'])]
    try:
        world.set_nat('rsb', 'symmetric')
        broke = time.monotonic()
        sys.stdout.write('\nrsb symmetric at %s\n' % time.strftime('%H:%M:%S'))

        def relayed_and_answering():
            return (world.unreached([('sb', 'tb'), ('tb', 'sb')]) == []
                    and world.path('sb', 'tb') == 'via pb' and world.path('tb', 'sb') == 'via pb')
        assert wait_for(relayed_and_answering, timeout=120, interval=0.5), (
            world.path('sb', 'tb'), world.path('tb', 'sb'), world.log('sb')[-2000:], world.log('tb')[-2000:])
        took_over = time.monotonic() - broke
        world.set_nat('rsb', 'port-restricted')
        friendly = time.monotonic()
        sys.stdout.write('rsb friendly at %s\n' % time.strftime('%H:%M:%S'))
        assert wait_for(lambda: world.path('sb', 'tb') == 'direct' and world.path('tb', 'sb') == 'direct'
                        and world.unreached([('sb', 'tb'), ('tb', 'sb')]) == [], timeout=120, interval=0.5), (
            world.log('sb')[-2000:], world.log('tb')[-2000:])
        sys.stdout.write('sb-tb: relayed and answering %.0f s after the NAT turned symmetric; direct again %.0f s '
                         'after it turned friendly\n' % (took_over, time.monotonic() - friendly))
    finally:
        for proc in traffic:
            proc.kill()
            proc.wait(10)
