#!/usr/bin/env bash
# ansible-test on a copy of the collection at .../ansible_collections/wglan/mesh (where it wants it):
#   scripts/ansible-test.sh units          the unit tests, in ansible-test's own environment
#   scripts/ansible-test.sh sanity         ansible-test sanity (every test, no ignore file)
#   scripts/ansible-test.sh integration    the targets of tests/integration/targets, on this machine as
#                                          root, inside a network namespace made here (and removed
#                                          after, also on failure): they never touch the machine's own
# More arguments go to ansible-test (a target's name, -v).
set -euo pipefail
cd "$(dirname "$0")/.."
what=${1:?units, sanity or integration}
shift
[ -x .venv/bin/ansible-test ] || { echo "ansible-test: .venv/bin/ansible-test is missing: run 'make setup' first" >&2; exit 2; }
BASE=/tmp/wglan-mesh-ansible-test-$what
DIR=$BASE/ansible_collections/wglan/mesh
export PATH=$PWD/.venv/bin:$PATH
PYVER=$(.venv/bin/python -c 'import sys; print("%d.%d" % sys.version_info[:2])')

# Everything ansible-test needs from outside the copy, made ready before any of its commands: the
# copy itself, and pip's bootstrap script (ansible-test would download it from a host that is not a
# package registry; scripts/ansible_test_pip.py writes it from ensurepip). Every mode calls this,
# so no suite depends on what another one left in ~/.ansible.
prepare() {
  rm -rf "$BASE" && mkdir -p "$DIR"
  git ls-files -co --exclude-standard | grep -v -e '^build/' -e '^\.venv' | tar -cf - -T - | tar -xf - -C "$DIR"
  .venv/bin/python scripts/ansible_test_pip.py
}
prepare
case "$what" in
  units)
    cd "$DIR" && ansible-test units --venv --requirements --python "$PYVER" --color no "$@"
    ;;
  sanity)
    cd "$DIR" && ansible-test sanity --venv --python "$PYVER" --color no "$@"
    ;;
  integration)
    NS=wglan-at-$$
    cleanup() {
      for pid in $(ip netns pids "$NS" 2>/dev/null); do kill -9 "$pid" 2>/dev/null || true; done
      ip netns del "$NS" 2>/dev/null || true
      for ifname in wgat0 wgat1 wgat2 wgat3 wgnd0 wgnd1; do rm -f "/var/run/wireguard/$ifname.sock"; done
      rm -rf "$BASE"
    }
    trap cleanup EXIT
    ip netns add "$NS"
    ip netns exec "$NS" ip link set lo up
    # (--local: the controller's environment, which sees Debian's pyroute2 and cryptography, as hosts do)
    cd "$DIR" && ip netns exec "$NS" env PATH="$PATH" ansible-test integration --local --python "$PYVER" \
      --allow-destructive --color no "$@"
    ;;
  *) echo "units, sanity or integration" >&2; exit 2 ;;
esac
