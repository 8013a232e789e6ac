#!/usr/bin/env bash
# Installs what the demo and the tests need, on Debian 12 (bookworm) or newer, as root.
# Idempotent: safe to run again; skips apt when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

APT_PACKAGES=(
  wireguard-go wireguard-tools nftables iproute2 iputils-ping procps
  python3 python3-venv python3-pip python3-pyroute2 python3-cryptography python3-yaml
  python3-pytest python3-hypothesis make git debootstrap systemd-container openssh-client conntrack
  qemu-system-x86 e2fsprogs shellcheck python3-jmespath python3-kubernetes python3-aiohttp python3-dnspython
  python3-graphviz graphviz chromium openssl
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
.venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt

# .venv-latest: the current releases of the libraries, for the unit tests.
if [ ! -x .venv-latest/bin/python ]; then
  /usr/bin/python3 -m venv .venv-latest
fi
.venv-latest/bin/pip install -q --disable-pip-version-check --upgrade pyroute2 cryptography jmespath kubernetes pytest hypothesis pyyaml aiohttp dnspython graphviz
# kubectl from Debian's kubernetes-client, to prove the tests' Kubernetes API
# double behaves like the real API for what the collection uses. Unpacked into
# build/ rather than installed: on some machines another package owns /usr/bin/kubectl.
if [ ! -x build/kubectl-debian/kubectl ]; then
  tmp=$(mktemp -d)
  chmod 755 "$tmp"
  if ! (cd "$tmp" && apt-get download -q kubernetes-client >/dev/null 2>&1); then
    apt-get update -q
    (cd "$tmp" && apt-get download -q kubernetes-client)
  fi
  dpkg-deb -x "$tmp"/kubernetes-client_*.deb "$tmp/root"
  mkdir -p build/kubectl-debian
  install -m 0755 "$tmp/root/usr/bin/kubectl" build/kubectl-debian/kubectl
  rm -rf "$tmp"
fi
# community.general (ufw) and ansible.posix (firewalld): the modules the role opens the
# WireGuard port with on hosts running those firewalls. Taken from the `ansible` package
# on PyPI (Galaxy is not reachable offline), unpacked into build/ecosystem.
ECOSYSTEM=build/ecosystem
ANSIBLE_BUNDLE=ansible==12.3.0
if [ "$(cat "$ECOSYSTEM/.stamp" 2>/dev/null)" != "$ANSIBLE_BUNDLE" ]; then
  rm -rf "$ECOSYSTEM" && mkdir -p "$ECOSYSTEM/download"
  .venv/bin/pip download -q --disable-pip-version-check --no-deps -d "$ECOSYSTEM/download" "$ANSIBLE_BUNDLE"
  .venv/bin/python - "$ECOSYSTEM" <<'PY'
import glob, sys, zipfile
target = sys.argv[1]
wheel = glob.glob(target + '/download/ansible-*.whl')[0]
keep = ('ansible_collections/community/general/', 'ansible_collections/ansible/posix/')
with zipfile.ZipFile(wheel) as bundle:
    bundle.extractall(target, [n for n in bundle.namelist() if n.startswith(keep)])
PY
  rm -rf "$ECOSYSTEM/download"
  echo "$ANSIBLE_BUNDLE" > "$ECOSYSTEM/.stamp"
fi
# .venv-tools: the ecosystem's own tools, apart from the controller's ansible-core: antsibull-docs
# and Sphinx (make docs-site), galaxy-importer and ansible-builder (make ecosystem).
if [ ! -x .venv-tools/bin/python ]; then
  /usr/bin/python3 -m venv .venv-tools
fi
TOOLS_PINS="antsibull-docs==2.28.0 sphinx==9.0.4 sphinx-ansible-theme==0.10.4 myst-parser==5.2.0 ansible-pygments==0.1.2 galaxy-importer==0.4.44 ansible-builder==3.2.0"
if [ "$(cat .venv-tools/.stamp 2>/dev/null)" != "$TOOLS_PINS" ]; then
  # shellcheck disable=SC2086
  .venv-tools/bin/pip install -q --disable-pip-version-check $TOOLS_PINS
  echo "$TOOLS_PINS" > .venv-tools/.stamp
fi
# promtool, Prometheus's checker (the dashboard's queries, the watcher's metrics), unpacked from
# Debian's package into build/ rather than installed (the package would start a Prometheus server).
if [ ! -x build/promtool/promtool ]; then
  tmp=$(mktemp -d)
  chmod 755 "$tmp"
  if ! (cd "$tmp" && apt-get download -q prometheus >/dev/null 2>&1); then
    apt-get update -q
    (cd "$tmp" && apt-get download -q prometheus)
  fi
  dpkg-deb -x "$tmp"/prometheus_*.deb "$tmp/root"
  mkdir -p build/promtool
  install -m 0755 "$tmp/root/usr/bin/promtool" build/promtool/promtool
  rm -rf "$tmp"
fi
echo "setup: done"
