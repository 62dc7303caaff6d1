#!/usr/bin/env bash
# The kernel-boot guest image's initramfs (build/boot/guest-initrd.gz): busybox, the Xen
# front-end drivers from the dom0 kernel (so vif and vbd connect), and the heartbeat agent
# Norm ships (agent/norm-heartbeat, unchanged), which reads its settings from the kernel
# command line Norm renders into xl.cfg `extra=`.
set -euo pipefail
. "$(dirname "$0")/common.sh"
R=$B/rootfs
BUSYBOX=$R/bin/busybox
[ -x "$BUSYBOX" ] || die "no busybox in $R (run rootfs.sh)"
D=$(mktemp -d /tmp/xenlab-initrd.XXXXXX)
trap 'rm -rf "$D"' EXIT
mkdir -p "$D"/{bin,sbin,etc,proc,sys,dev,tmp,usr/bin,usr/sbin,usr/local/sbin,lib/modules}
cp "$BUSYBOX" "$D/bin/busybox"
for a in $("$D/bin/busybox" --list-full); do
  [ "$a" = bin/busybox ] && continue
  mkdir -p "$D/$(dirname "$a")"
  ln -sf /bin/busybox "$D/$a"
done
KDIR=$(ls -d "$R"/lib/modules/* | sort -V | tail -1)
for m in drivers/net/xen-netfront.ko drivers/block/xen-blkfront.ko; do
  cp "$KDIR/kernel/$m" "$D/lib/modules/"
done
cat >"$D/etc/inittab" <<'IT'
::sysinit:/etc/rcS
hvc0::respawn:-/bin/sh
::respawn:/usr/local/sbin/norm-heartbeat
IT
cat >"$D/etc/rcS" <<'RC'
#!/bin/sh
mount -t proc proc /proc
mount -t sysfs sys /sys
mount -t devtmpfs dev /dev 2>/dev/null
for m in /lib/modules/*.ko; do insmod "$m" 2>/dev/null; done
ip link set lo up
echo "guest: up, kernel $(uname -r)"
RC
chmod +x "$D/etc/rcS"
install -m 0755 "$REPO/agent/norm-heartbeat" "$D/usr/local/sbin/norm-heartbeat"
ln -sf /bin/busybox "$D/init"
mkdir -p "$B/boot"
(cd "$D" && find . | cpio -o -H newc --quiet | gzip -9) >"$B/boot/guest-initrd.gz"
