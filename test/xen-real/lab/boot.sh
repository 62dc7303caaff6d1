#!/usr/bin/env bash
# Boots the lab under QEMU (TCG: this machine has no usable KVM) in the background: Xen 4.17,
# Debian dom0, 2 vCPUs, 3 GiB (dom0 1 GiB). Fresh qcow2 overlays on top of the built images
# every boot, so each run starts from the pristine host. The only socket on this machine is
# 127.0.0.1:$SSH_PORT -> dom0:22; guests' 10.0.2.100:8080 is connected to 127.0.0.1:$API_PORT.
set -euo pipefail
. "$(dirname "$0")/common.sh"
for f in "$B/boot/xen" "$B/boot/dom0-vmlinuz" "$B/boot/dom0-initrd.img" "$B/dom0.img" "$B/vg0.img"; do
  [ -f "$f" ] || die "missing $f: run build.sh first"
done
if [ -f "$RUN/qemu.pid" ] && kill -0 "$(cat "$RUN/qemu.pid")" 2>/dev/null; then
  die "already running (pid $(cat "$RUN/qemu.pid")); stop.sh first"
fi
rm -rf "$RUN"
mkdir -p "$RUN"
qemu-img create -q -f qcow2 -F raw -b "$B/dom0.img" "$RUN/dom0.qcow2"
qemu-img create -q -f qcow2 -F raw -b "$B/vg0.img" "$RUN/vg0.qcow2"
echo "[127.0.0.1]:$SSH_PORT $(cut -d' ' -f1,2 "$B/ssh/dom0_host_ed25519_key.pub")" >"$B/ssh/known_hosts"
# QEMU runs the guestfwd command with the connection on stdin, stdout and stderr, so socat's
# own messages must go to a file or the guest would read them as the HTTP answer. No commas:
# QEMU option syntax.
GUESTFWD="tcp:10.0.2.100:8080-cmd:socat -lf $RUN/guestfwd.log - TCP:127.0.0.1:$API_PORT"
# -cpu qemu64: -cpu max exposes SMAP, and Xen then crashes the PV dom0 under TCG.
XEN_CMDLINE="console=com1 com1=115200,8n1 dom0_mem=1024M,max:1024M dom0_max_vcpus=2 loglvl=all guest_loglvl=all noreboot"
# QEMU splits multiboot modules on ',': the dom0 command line must have none.
DOM0_CMDLINE="console=hvc0 root=/dev/vda rw net.ifnames=0"
date +%s.%N >"$RUN/boot-start"
qemu-system-x86_64 -name xenlab \
  -machine pc -accel tcg,thread=multi,tb-size=512 -cpu qemu64 -smp 2 -m 3072 \
  -display none -vga std -no-reboot \
  -chardev "file,id=ser0,path=$RUN/console.log" -serial chardev:ser0 \
  -kernel "$B/boot/xen" -append "$XEN_CMDLINE" \
  -initrd "$B/boot/dom0-vmlinuz $DOM0_CMDLINE,$B/boot/dom0-initrd.img" \
  -drive "file=$RUN/dom0.qcow2,format=qcow2,if=virtio,cache=unsafe" \
  -drive "file=$RUN/vg0.qcow2,format=qcow2,if=virtio,cache=unsafe" \
  -netdev "user,id=n0,restrict=on,dhcpstart=10.0.2.16,hostfwd=tcp:127.0.0.1:$SSH_PORT-10.0.2.15:22,guestfwd=$GUESTFWD" \
  -device virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56 \
  -daemonize -pidfile "$RUN/qemu.pid"
say "QEMU pid $(cat "$RUN/qemu.pid"); ssh 127.0.0.1:$SSH_PORT; guests' API 10.0.2.100:8080 -> 127.0.0.1:$API_PORT; console $RUN/console.log"
