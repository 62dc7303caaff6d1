#!/usr/bin/env bash
# Builds the lab into test/xen-real/build/ (never committed): host packages when missing, the
# dom0 tree (rootfs.sh, ~100 s) and the images (image.sh, a few seconds). Each stage is redone
# only when its scripts (or the agent / sudoers drop-in it installs) changed since it last ran;
# FRESH=1 rebuilds everything. The booted lab never writes to these images (boot.sh puts
# throw-away overlays on top), so a cached build is as pristine as a new one.
set -euo pipefail
. "$(dirname "$0")/common.sh"
"$LAB/host-deps.sh"
mkdir -p "$B"
t0=$(date +%s)
stamp() { cat "$@" | sha256sum | cut -d' ' -f1; }
ROOTFS_STAMP=$(stamp "$LAB/rootfs.sh")
IMAGE_STAMP=$(stamp "$LAB/common.sh" "$LAB/image.sh" "$LAB/guest-initrd.sh" "$LAB/vg0-disk.sh" \
  "$REPO/agent/norm-heartbeat" "$REPO/ansible/roles/xen_host/tests/sudoers-norm.rendered" <(echo "$ROOTFS_STAMP"))
if [ "${FRESH:-0}" = 1 ] || [ "$(cat "$B/rootfs.stamp" 2>/dev/null)" != "$ROOTFS_STAMP" ] || [ ! -x "$B/rootfs/usr/sbin/xl" ]; then
  rm -f "$B/rootfs.stamp" "$B/image.stamp"
  "$LAB/rootfs.sh"
  echo "$ROOTFS_STAMP" >"$B/rootfs.stamp"
fi
if [ "$(cat "$B/image.stamp" 2>/dev/null)" != "$IMAGE_STAMP" ] || [ ! -f "$B/dom0.img" ] || [ ! -f "$B/vg0.img" ]; then
  rm -f "$B/image.stamp"
  "$LAB/image.sh"
  echo "$IMAGE_STAMP" >"$B/image.stamp"
fi
say "build ready in $(($(date +%s) - t0)) s ($B)"
