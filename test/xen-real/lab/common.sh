# shellcheck shell=bash
# Settings shared by the lab scripts (sourced). Everything the lab builds or runs lives under
# test/xen-real/build/ (git-ignored): build/ holds the images, build/run/ one boot's throw-away
# state (overlays, pid, console log).
LAB=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
REPO=$(cd "$LAB/../../.." && pwd)
B=${XENLAB_BUILD:-$REPO/test/xen-real/build}
RUN=$B/run
# Host loopback port forwarded to dom0's sshd; nothing else listens on this machine.
SSH_PORT=${XENLAB_SSH_PORT:-10022}
# Guests (and dom0) reach 10.0.2.100:8080 on the slirp network; QEMU connects each such
# connection to 127.0.0.1:$API_PORT here, where the tier runs Norm's API.
API_PORT=${XENLAB_API_PORT:-18080}
SSH_OPTS=(-p "$SSH_PORT" -o UserKnownHostsFile="$B/ssh/known_hosts" -o StrictHostKeyChecking=yes
  -o LogLevel=ERROR -o ConnectTimeout=60 -o BatchMode=yes)
# root: only for the test's own look behind Norm's back (console logs, hand-made domains)
xssh() { ssh -i "$B/ssh/root_ed25519" "${SSH_OPTS[@]}" root@127.0.0.1 "$@"; }
# norm: what the control plane uses
nssh() { ssh -i "$B/ssh/norm_ed25519" "${SSH_OPTS[@]}" norm@127.0.0.1 "$@"; }
say() { echo "xenlab: $*" >&2; }
die() {
  say "FAILED: $*"
  exit 1
}
