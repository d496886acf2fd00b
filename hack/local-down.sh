#!/usr/bin/env bash
# Stops the local cluster started by hack/local-up.sh (same LOCAL_DIR). Only processes
# named in its pid files, and only when they are still ours, are signalled; data is kept.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
source "$ROOT/hack/lib/procs.sh"

procs::stop_all
log "local cluster in $LOCAL_DIR stopped"
