#!/usr/bin/env bash
# Installs what the demo and the tests need, on Debian 12 (bookworm) or newer, as root.
# Idempotent: safe to run again; skips apt when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  wireguard-go wireguard-tools nftables iproute2 iputils-ping procps
  python3 python3-venv python3-pip python3-pyroute2 python3-cryptography python3-yaml
  python3-pytest python3-hypothesis make git debootstrap systemd-container openssh-client conntrack
  qemu-system-x86 e2fsprogs shellcheck python3-jmespath
)

missing=()
for pkg in "${APT_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "setup: installing ${missing[*]}"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -q
  apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# .venv: the controller. It sees Debian's python3-pyroute2 / python3-cryptography
# (what managed Debian hosts have) and adds ansible-core and the test tools.
if [ ! -x .venv/bin/python ]; then
  /usr/bin/python3 -m venv --system-site-packages .venv
fi
.venv/bin/pip install -q --disable-pip-version-check -r requirements.txt

# .venv-latest: the current releases of the libraries, for the unit tests.
if [ ! -x .venv-latest/bin/python ]; then
  /usr/bin/python3 -m venv .venv-latest
fi
.venv-latest/bin/pip install -q --disable-pip-version-check --upgrade pyroute2 cryptography jmespath pytest hypothesis pyyaml
echo "setup: done"
