#!/usr/bin/env bash
# Stage 1 of the build: a Debian bookworm dom0 tree in build/rootfs, from Debian packages only
# (debootstrap, then kernel, Xen 4.17 hypervisor and tools, LVM, sudo and sshd in a chroot
# with bookworm-updates and -security enabled, so hypervisor and xl come from one suite and
# match). ~100 s with a near mirror. The mirror is this machine's own apt source (MIRROR= and
# SECURITY_MIRROR= override it); no mirror address is left in the image.
set -euo pipefail
. "$(dirname "$0")/common.sh"
R=$B/rootfs
SUITE=bookworm
srcs() { cat /etc/apt/sources.list.d/*.sources /etc/apt/sources.list 2>/dev/null || true; }
MIRROR=${MIRROR:-$(srcs | awk '/^URIs:/ && $2 !~ /security/ {print $2; exit} $1=="deb" && $2 !~ /security/ {print $2; exit}')}
SECURITY_MIRROR=${SECURITY_MIRROR:-$(srcs | awk '/^URIs:/ && $2 ~ /security/ {print $2; exit} $1=="deb" && $2 ~ /security/ {print $2; exit}')}
[ -n "$MIRROR" ] || die "no Debian mirror in this machine's apt sources; set MIRROR="

unmount() {
  for m in dev/pts dev proc sys; do mountpoint -q "$R/$m" 2>/dev/null && umount -l "$R/$m"; done
  return 0
}
unmount
rm -rf "$R"
mkdir -p "$B"
t0=$(date +%s)
PKGS=systemd-sysv,udev,kmod,dbus,initramfs-tools,zstd,openssh-server,bridge-utils,ifupdown
PKGS=$PKGS,iproute2,netbase,procps,busybox-static,cpio,ca-certificates
debootstrap --variant=minbase --include="$PKGS" "$SUITE" "$R" "$MIRROR" >"$B/debootstrap.log" 2>&1 ||
  { tail -20 "$B/debootstrap.log" >&2; die "debootstrap"; }
rm -f "$R/var/log/bootstrap.log"
{
  echo "deb $MIRROR $SUITE main"
  echo "deb $MIRROR $SUITE-updates main"
  [ -n "$SECURITY_MIRROR" ] && echo "deb $SECURITY_MIRROR $SUITE-security main"
} >"$R/etc/apt/sources.list"
trap unmount EXIT
mount -t proc proc "$R/proc"
mount -t sysfs sys "$R/sys"
mount --bind /dev "$R/dev"
mount --bind /dev/pts "$R/dev/pts"
export DEBIAN_FRONTEND=noninteractive
chroot "$R" apt-get -qq update
chroot "$R" apt-get -qq -y dist-upgrade >/dev/null
# The packages issue 10 names for a Norm-ready Debian dom0.
chroot "$R" apt-get -qq -y install --no-install-recommends linux-image-amd64 \
  xen-hypervisor-4.17-amd64 xen-utils-4.17 xen-utils-common xenstore-utils lvm2 sudo >/dev/null
chroot "$R" apt-get clean
rm -rf "$R"/var/lib/apt/lists/*
echo "# dom0 is offline (QEMU restrict=on)" >"$R/etc/apt/sources.list"
unmount
trap - EXIT
say "rootfs built in $(($(date +%s) - t0)) s ($(chroot "$R" dpkg-query -W -f='${Version}' xen-utils-4.17) xen-utils)"
