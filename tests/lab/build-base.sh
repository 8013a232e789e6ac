#!/usr/bin/env bash
# Builds (once) the Debian trees lab machines boot from, read-only, under a volatile
# overlay: one per release given (default: bookworm and trixie, the two the lab mixes).
# A tree is rebuilt when missing or when its package list or setup changes.
#   build-base.sh [RELEASE ...]
set -euo pipefail

if [ "$#" -gt 1 ]; then
  # The releases side by side: most of a build is waiting on the mirror.
  pids=()
  for release in "$@"; do "$0" "$release" & pids+=("$!"); done
  failed=0
  for pid in "${pids[@]}"; do wait "$pid" || failed=1; done
  exit "$failed"
elif [ "$#" -eq 0 ]; then
  exec "$0" bookworm trixie
fi
RELEASE=$1
LAB_DIR=${WGLAN_LAB_DIR:-/var/lib/wglan-lab}
TREE="$LAB_DIR/$RELEASE"
MIRROR=${WGLAN_LAB_MIRROR:-http://deb.debian.org/debian}
# sudo: the lab's Ansible logs in as "admin" and becomes root through it, as on cloud images.
# ufw and firewalld: host firewalls some machines turn on (both off in the tree). systemd-resolved
# (off; lab.py RESOLVED turns it on) and python3-dnspython: names through it. graphviz: `wglan graph`.
PACKAGES=(
  systemd systemd-sysv dbus openssh-server sudo python3 python3-pyroute2 python3-cryptography
  python3-apt python3-kubernetes python3-aiohttp python3-dnspython python3-graphviz graphviz systemd-resolved nftables iproute2 iputils-ping wireguard-tools wireguard-go procps kmod ca-certificates
  linux-image-amd64 initramfs-tools ufw firewalld
)
STAMP_VALUE="v9 $RELEASE ${PACKAGES[*]}"

if [ -f "$TREE/.wglan-lab-stamp" ] && [ "$(cat "$TREE/.wglan-lab-stamp")" = "$STAMP_VALUE" ]; then
  echo "lab base: $TREE is current"
  exit 0
fi

mkdir -p "$LAB_DIR"
tmp="$LAB_DIR/$RELEASE.tmp.$$"
# (what an interrupted debootstrap left mounted in the tree is unmounted before it is removed)
remove_tree() {
  awk -v t="$1/" 'index($2, t) == 1 { print $2 }' /proc/mounts | sort -r | while read -r m; do umount -l "$m" || true; done
  rm -rf "$1"
}
trap 'remove_tree "$tmp"' EXIT
trap 'exit 143' TERM INT
# Trees an interrupted build left behind (its process no longer runs).
for old in "$LAB_DIR/$RELEASE".tmp.*; do
  if [ -d "$old" ] && ! kill -0 "${old##*.}" 2>/dev/null; then remove_tree "$old"; fi
done
echo "lab base: $RELEASE: debootstrap into $tmp"
debootstrap --variant=minbase "$RELEASE" "$tmp" "$MIRROR" >"$LAB_DIR/debootstrap-$RELEASE.log" 2>&1 || {
  tail -20 "$LAB_DIR/debootstrap-$RELEASE.log"; exit 1; }
echo "lab base: $RELEASE: installing packages"
cp /etc/resolv.conf "$tmp/etc/resolv.conf" 2>/dev/null || true
chroot "$tmp" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${PACKAGES[@]}" \
  >"$LAB_DIR/packages-$RELEASE.log" 2>&1 || { tail -20 "$LAB_DIR/packages-$RELEASE.log"; exit 1; }
chroot "$tmp" apt-get clean
# The lab has no name server (the builder's is outside the lab, and nothing may be sent
# there): an empty resolv.conf makes lookups fail at once instead of after two 5 s
# timeouts (Ansible's fact gathering looks up the host name: 10 s per host and run).
# (systemd-resolved is installed, off, for the machines the lab gives it: lab.py RESOLVED. Its
# package points resolv.conf at its stub; the machines without it keep the empty file. It never
# asks the links by multicast.)
rm -f "$tmp/etc/resolv.conf" && : > "$tmp/etc/resolv.conf"
chroot "$tmp" systemctl disable systemd-resolved.service >/dev/null 2>&1 || true
mkdir -p "$tmp/etc/systemd/resolved.conf.d"
printf '[Resolve]\nLLMNR=no\nMulticastDNS=no\n' > "$tmp/etc/systemd/resolved.conf.d/wglan-lab.conf"
printf '127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n' > "$tmp/etc/hosts"
# Lab machines: root over SSH with the lab key only, no consoles to wait on.
mkdir -p "$tmp/root/.ssh" && chmod 700 "$tmp/root/.ssh"
sed -i 's/^#\?PermitRootLogin.*/PermitRootLogin prohibit-password/' "$tmp/etc/ssh/sshd_config"
echo 'UseDNS no' >> "$tmp/etc/ssh/sshd_config"
for unit in getty@tty1.service console-getty.service apt-daily.timer apt-daily-upgrade.timer; do
  chroot "$tmp" systemctl mask "$unit" >/dev/null 2>&1 || true
done
# The operator's account: SSH with the lab key (bind-mounted, or from wglan.key= on qemu),
# password-less sudo. Ansible runs as this user and becomes root, as fleets do.
chroot "$tmp" useradd --create-home --shell /bin/bash admin
install -d -m 0700 -o "$(chroot "$tmp" id -u admin)" -g "$(chroot "$tmp" id -g admin)" "$tmp/home/admin/.ssh"
echo 'admin ALL=(ALL) NOPASSWD:ALL' > "$tmp/etc/sudoers.d/admin"
chmod 0440 "$tmp/etc/sudoers.d/admin"
# Host firewalls are off until a machine's admin turns one on (Debian enables firewalld when installed).
chroot "$tmp" systemctl disable firewalld.service >/dev/null 2>&1 || true
# Kernel machines (qemu) take their address from ip= on the kernel command line
# (systemd-network-generator) and the lab's SSH key from wglan.key=; nspawn
# machines have neither on their command line, so both stay idle there.
chroot "$tmp" systemctl enable systemd-networkd.service systemd-network-generator.service >/dev/null 2>&1
# In nspawn machines the lab sets the addresses from outside and networkd manages no
# link, so the stock wait-online would hold network-online.target (and every unit
# ordered after it, like wglan-discovery) for its full 2 minutes. Wait for any
# link, briefly: qemu machines have theirs from ip= by then.
mkdir -p "$tmp/etc/systemd/system/systemd-networkd-wait-online.service.d"
cat > "$tmp/etc/systemd/system/systemd-networkd-wait-online.service.d/wglan-lab.conf" <<'UNIT'
[Service]
ExecStart=
ExecStart=/lib/systemd/systemd-networkd-wait-online --any --timeout=5
UNIT
cat > "$tmp/etc/systemd/system/wglan-lab-key.service" <<'UNIT'
[Unit]
Description=wglan lab: root's SSH key from the kernel command line
ConditionKernelCommandLine=wglan.key
Before=ssh.service

[Service]
Type=oneshot
ExecStart=/bin/sh -c 'k=$(sed -n "s/.*wglan.key=\([^ ]*\).*/\1/p" /proc/cmdline); for h in /root /home/admin; do mkdir -p $h/.ssh; echo "ssh-ed25519 $k" > $h/.ssh/authorized_keys; chmod 600 $h/.ssh/authorized_keys; done; chown -R admin:admin /home/admin/.ssh'

[Install]
WantedBy=multi-user.target
UNIT
chroot "$tmp" systemctl enable wglan-lab-key.service >/dev/null 2>&1
: > "$tmp/etc/machine-id"
# debootstrap copies the builder's host name; without the file each machine keeps
# the name the lab gives it (nspawn --hostname, systemd.hostname= for qemu).
rm -f "$tmp/etc/hostname"
echo "$STAMP_VALUE" > "$tmp/.wglan-lab-stamp"
rm -rf "$TREE"
mv "$tmp" "$TREE"
trap - EXIT
echo "lab base: ready at $TREE"
