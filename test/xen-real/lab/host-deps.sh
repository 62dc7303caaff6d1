#!/usr/bin/env bash
# The Debian packages this machine needs to build and boot the lab. Installs the missing ones
# when run as root (and NORM_NO_INSTALL is unset); otherwise names them and fails, so a
# machine without QEMU fails the tier loudly instead of skipping it.
set -euo pipefail
. "$(dirname "$0")/common.sh"
need=(qemu-system-x86:qemu-system-x86_64 qemu-utils:qemu-img debootstrap:debootstrap
  e2fsprogs:mkfs.ext4 busybox-static:busybox cpio:cpio openssh-client:ssh-keygen socat:socat
  util-linux:losetup iproute2:ss gzip:zcat)
missing=()
for pair in "${need[@]}"; do
  command -v "${pair#*:}" >/dev/null || missing+=("${pair%%:*}")
done
# Firmware and option ROMs QEMU loads at boot (not commands, so checked as files).
[ -f /usr/share/seabios/bios-256k.bin ] || missing+=(seabios)
[ -f /usr/lib/ipxe/qemu/efi-virtio.rom ] || missing+=(ipxe-qemu)
[ "${#missing[@]}" = 0 ] && exit 0
if [ "$(id -u)" = 0 ] && [ -z "${NORM_NO_INSTALL:-}" ]; then
  say "installing Debian packages: ${missing[*]}"
  apt-get update -qq >&2
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2
else
  die "missing Debian packages: ${missing[*]} (apt-get install them, or run as root)"
fi
