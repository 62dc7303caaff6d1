#!/usr/bin/env bash
# Stage 2 of the build (a few seconds; re-run alone after changing the lab's configuration):
# configures build/rootfs as a Norm-ready Xen host, the way ansible/playbooks/xen-host.yml
# prepares one, and packs it into build/dom0.img; builds the guest image and the LVM disk
# build/vg0.img; copies Xen, the dom0 kernel and its initrd to build/boot/ for QEMU.
#
# Norm-ready, as the xen_host role does it (roles/xen_host/tasks/norm-user.yml):
#   user norm, /bin/sh, key-only (build/ssh/norm_ed25519);
#   /etc/sudoers.d/norm = the role's template as rendered (roles/xen_host/tests/
#     sudoers-norm.rendered, which scripts/ci-ansible keeps equal to the template), visudo-checked;
#   /var/lib/norm (root 0755), /var/lib/norm/domains (norm 0750, the xl.cfg upload directory),
#   /var/lib/norm/images (norm 0755) with the kernel-boot image in images/tiny/;
#   bridge xenbr0 over eth0; VG vg0 with the golden volume vg0/golden-tiny.
set -euo pipefail
. "$(dirname "$0")/common.sh"
R=$B/rootfs
[ -x "$R/usr/sbin/xl" ] || die "run rootfs.sh first"
t0=$(date +%s)
mkdir -p "$B/boot" "$B/ssh"
for k in root norm; do
  [ -f "$B/ssh/${k}_ed25519" ] || ssh-keygen -q -t ed25519 -N '' -C "$k@xenlab" -f "$B/ssh/${k}_ed25519"
done

echo xenlab >"$R/etc/hostname"
printf '127.0.0.1\tlocalhost\n127.0.1.1\txenlab\n' >"$R/etc/hosts"
cat >"$R/etc/fstab" <<'F'
/dev/vda	/		ext4	defaults,noatime	0 1
xenfs		/proc/xen	xenfs	defaults		0 0
F
# eth0 (net.ifnames=0) is the bridge's port and the bridge holds dom0's address on QEMU's
# user-mode network: guests' vifs join xenbr0 and so reach 10.0.2.0/24 and the guestfwd.
cat >"$R/etc/network/interfaces" <<'N'
auto lo
iface lo inet loopback

iface eth0 inet manual

auto xenbr0
iface xenbr0 inet static
	address 10.0.2.15/24
	gateway 10.0.2.2
	bridge_ports eth0
	bridge_stp off
	bridge_fd 0
	bridge_maxwait 0
N
install -d -m 700 "$R/root/.ssh"
install -m 600 "$B/ssh/root_ed25519.pub" "$R/root/.ssh/authorized_keys"
cat >"$R/etc/ssh/sshd_config.d/xenlab.conf" <<'S'
PermitRootLogin prohibit-password
PasswordAuthentication no
UseDNS no
S
cat >"$R/etc/modules-load.d/xen.conf" <<'M'
xenfs
xen-evtchn
xen-gntdev
xen-gntalloc
xen-privcmd
xen-blkback
xen-netback
bridge
M
cat >"$R/etc/default/xen" <<'X'
XENSTORED_ARGS=
# every guest console in /var/log/xen/console/guest-<name>.log (root only): the tier prints
# the agent's lines from there
XENCONSOLED_ARGS="--log=guest --log-dir=/var/log/xen/console"
X
install -d "$R/var/log/xen/console"
chroot "$R" update-rc.d xen defaults >/dev/null 2>&1 || true
sed -i 's/^XENDOMAINS_SAVE=.*/XENDOMAINS_SAVE=/' "$R/etc/default/xendomains" 2>/dev/null || true
# Boot time under emulation: nothing periodic, no waiting for network-online.
for u in apt-daily.timer apt-daily-upgrade.timer e2scrub_all.timer e2scrub_reap.service fstrim.timer \
  man-db.timer systemd-networkd-wait-online.service; do
  chroot "$R" systemctl mask "$u" >/dev/null 2>&1 || true
done
chroot "$R" systemctl enable ssh.service >/dev/null 2>&1 || true

# ---- Norm-ready, as roles/xen_host/tasks/norm-user.yml ----
chroot "$R" id -u norm >/dev/null 2>&1 || chroot "$R" useradd --create-home --user-group --shell /bin/sh norm
# '*': no password but not locked, so sshd takes the key (the role sets the same)
chroot "$R" usermod --shell /bin/sh --password '*' norm
NUID=$(chroot "$R" id -u norm)
NGID=$(chroot "$R" id -g norm)
install -d -m 700 -o "$NUID" -g "$NGID" "$R/home/norm/.ssh"
install -m 600 -o "$NUID" -g "$NGID" "$B/ssh/norm_ed25519.pub" "$R/home/norm/.ssh/authorized_keys"
install -m 0440 -o 0 -g 0 "$REPO/ansible/roles/xen_host/tests/sudoers-norm.rendered" "$R/etc/sudoers.d/norm"
for c in $(sed -n 's/^Cmnd_Alias NORM_CMDS = //p' "$R/etc/sudoers.d/norm" | tr -d ','); do
  [ -x "$R$c" ] || die "the sudoers drop-in names $c, which the host does not have"
done
chroot "$R" visudo -c -q -f /etc/sudoers.d/norm
chroot "$R" visudo -c -q
install -d -m 0755 -o 0 -g 0 "$R/var/lib/norm"
install -d -m 0750 -o "$NUID" -g "$NGID" "$R/var/lib/norm/domains"
install -d -m 0755 -o "$NUID" -g "$NGID" "$R/var/lib/norm/images" "$R/var/lib/norm/images/tiny"

# ---- the kernel-boot image "tiny": the dom0 kernel + busybox initramfs with the agent ----
KVER=$(ls "$R"/boot/vmlinuz-* | sed 's|.*/vmlinuz-||' | sort -V | tail -1)
"$LAB/guest-initrd.sh"
install -m 0644 -o "$NUID" -g "$NGID" "$R/boot/vmlinuz-$KVER" "$R/var/lib/norm/images/tiny/vmlinuz"
install -m 0644 -o "$NUID" -g "$NGID" "$B/boot/guest-initrd.gz" "$R/var/lib/norm/images/tiny/initrd.gz"

"$LAB/vg0-disk.sh"

cp "$R/boot/vmlinuz-$KVER" "$B/boot/dom0-vmlinuz"
cp "$R/boot/initrd.img-$KVER" "$B/boot/dom0-initrd.img"
# QEMU's multiboot loader takes Xen's ELF32 image, not the .gz
zcat "$R/boot/xen-4.17-amd64.gz" >"$B/boot/xen"
# The host key is baked into the image, so it is the same on every boot: pinnable.
cp "$R/etc/ssh/ssh_host_ed25519_key.pub" "$B/ssh/dom0_host_ed25519_key.pub"
rm -f "$B/dom0.img"
mkfs.ext4 -q -F -L xenlab-root -d "$R" "$B/dom0.img" 4G
say "image configured and packed in $(($(date +%s) - t0)) s"
