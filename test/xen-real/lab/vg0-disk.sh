#!/usr/bin/env bash
# build/vg0.img, dom0's second disk: a PV holding VG vg0 with the golden volume
# vg0/golden-tiny (ext4, label golden-tiny, one file NORM-GOLDEN). This machine has loop
# devices but no device-mapper, so LVM (the rootfs's own, in a chroot) writes metadata only,
# with activation off, and the file system goes through a second loop device mapped onto the
# LV's extents as LVM reports them. Inside dom0 it is an ordinary, autoactivated VG.
set -euo pipefail
. "$(dirname "$0")/common.sh"
R=$B/rootfs
IMG=$B/vg0.img
GOLDEN_SIZE=${GOLDEN_SIZE:-64M}
LOOP='' LOOP2='' GOLD=''
cleanup() {
  [ -n "$LOOP2" ] && losetup -d "$LOOP2" 2>/dev/null
  [ -n "$LOOP" ] && losetup -d "$LOOP" 2>/dev/null
  for m in sys proc dev; do mountpoint -q "$R/$m" 2>/dev/null && umount -l "$R/$m"; done
  rm -rf "$R/run/lock/lvm" "$R/run/lvm" "${GOLD:-/nonexistent}" "$IMG.tmp"
  return 0
}
trap cleanup EXIT
rm -f "$IMG.tmp"
truncate -s 8G "$IMG.tmp"
LOOP=$(losetup -f --show "$IMG.tmp") || die "losetup (this machine needs loop devices)"
mount --bind /dev "$R/dev"
mount -t proc proc "$R/proc"
mount -t sysfs sys "$R/sys"
CFG='global { activation = 0 } devices { use_devicesfile = 0 } backup { backup = 0 archive = 0 }'
# own UTS namespace: the metadata's creation host reads "xenlab", not this machine
lvmc() {
  unshare -u sh -c 'hostname xenlab && exec chroot "$0" "$@"' "$R" env LVM_SUPPRESS_FD_WARNINGS=1 \
    lvm "$@" --config "$CFG" --devices "$LOOP" 2> >(grep -vE 'Activation disabled|not zeroed|NOT backed up' >&2)
}
lvmc pvcreate -q "$LOOP" >/dev/null
lvmc vgcreate -q vg0 "$LOOP" >/dev/null
lvmc lvcreate -q -an -Zn -Wn -L "$GOLDEN_SIZE" -n golden-tiny vg0 >/dev/null
pe_start=$(lvmc pvs --noheadings --units b --nosuffix -o pe_start "$LOOP" | tr -d ' ')
ext=$(lvmc vgs --noheadings --units b --nosuffix -o vg_extent_size vg0 | tr -d ' ')
ranges=$(lvmc lvs --noheadings -o seg_pe_ranges vg0/golden-tiny | tr -d ' ') # /dev/loopN:0-15
case "$ranges" in *" "* | "") die "unexpected LV layout '$ranges'" ;; esac
first=${ranges##*:}
first=${first%-*}
last=${ranges##*-}
GOLD=$(mktemp -d /tmp/xenlab-golden.XXXXXX)
chmod 755 "$GOLD"
echo "norm golden image \"tiny\" (vg0/golden-tiny)" >"$GOLD/NORM-GOLDEN"
LOOP2=$(losetup -f --show -o $((pe_start + first * ext)) --sizelimit $(((last - first + 1) * ext)) "$IMG.tmp")
mkfs.ext4 -q -F -L golden-tiny -d "$GOLD" "$LOOP2"
e2fsck -fn "$LOOP2" >/dev/null 2>&1 || die "e2fsck of golden-tiny"
losetup -d "$LOOP2"
LOOP2=''
losetup -d "$LOOP"
LOOP=''
mv -f "$IMG.tmp" "$IMG"
