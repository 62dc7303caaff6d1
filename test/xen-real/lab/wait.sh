#!/usr/bin/env bash
# Waits until dom0 answers `sudo -n xl list` over SSH as norm (~40 s after boot.sh here);
# fails when QEMU died or after XENLAB_BOOT_TIMEOUT seconds (default 900: a loaded shared machine).
set -euo pipefail
. "$(dirname "$0")/common.sh"
limit=${XENLAB_BOOT_TIMEOUT:-900}
start=$(cat "$RUN/boot-start")
until nssh 'sudo -n xl list >/dev/null' 2>/dev/null; do
  kill -0 "$(cat "$RUN/qemu.pid" 2>/dev/null || echo 0)" 2>/dev/null || {
    tail -30 "$RUN/console.log" >&2
    die "QEMU is gone; console log above"
  }
  if [ $(($(date +%s) - ${start%.*})) -gt "$limit" ]; then
    tail -30 "$RUN/console.log" >&2
    die "dom0 not reachable after ${limit} s"
  fi
  sleep 2
done
awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "xenlab: dom0 answers xl over ssh %.1f s after boot\n", b - a }' >&2
