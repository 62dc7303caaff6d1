#!/usr/bin/env bash
# One command to bring the lab up: build (cached), boot on fresh overlays, wait for dom0.
# Stop it with stop.sh. A failed start stops what it started.
set -euo pipefail
. "$(dirname "$0")/common.sh"
"$LAB/build.sh"
"$LAB/boot.sh"
"$LAB/wait.sh" || {
  "$LAB/stop.sh"
  exit 1
}
