#!/usr/bin/env bash
# Stops the lab and throws its state away: kills the QEMU process named in build/run/qemu.pid
# (only that pid; TERM, then KILL after 5 s) and deletes the overlays. No graceful poweroff:
# nothing in the lab is worth keeping, and the tier also uses this as "the host lost power".
# Safe to run when nothing runs.
set -uo pipefail
. "$(dirname "$0")/common.sh"
if [ -f "$RUN/qemu.pid" ]; then
  pid=$(cat "$RUN/qemu.pid")
  if kill -0 "$pid" 2>/dev/null && grep -q qemu-system "/proc/$pid/cmdline" 2>/dev/null; then
    kill "$pid"
    for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
    kill -0 "$pid" 2>/dev/null && kill -9 "$pid"
    say "stopped QEMU pid $pid"
  fi
  rm -f "$RUN/qemu.pid"
fi
rm -f "$RUN/dom0.qcow2" "$RUN/vg0.qcow2"
exit 0
