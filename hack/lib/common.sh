# Shared helpers for hack/ scripts. Source it; it defines paths and logging only.
# shellcheck shell=bash

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
OUTPUT_BIN="$ROOT/_output/bin"
# Where a local cluster keeps its PKI, kubeconfig, data, logs and pid files.
# hack/test.sh points it elsewhere so tests never touch a developer's cluster.
LOCAL_DIR="$(realpath -m "${LOCAL_DIR:-$ROOT/_output/local}")"

log() { printf '+++ %s\n' "$*" >&2; }
die() { printf '!!! %s\n' "$*" >&2; exit 1; }

# Runs a command after printing it.
run() { log "$*"; "$@"; }

# kubectl binaries used by the scripts and the conformance suite.
# KUBECTL_NEW: 1.35, installed by hack/install-deps.sh from the npm registry.
# KUBECTL_OLD: 1.32, the machine's (Google Cloud SDK's) when present, else installed too.
KUBECTL_NEW="${KUBECTL_NEW:-$OUTPUT_BIN/kubectl}"
kubectl_old_default() {
  local sdk=/usr/lib/google-cloud-sdk/bin/kubectl.1.32
  if [[ -x $sdk ]]; then echo "$sdk"; else echo "$OUTPUT_BIN/kubectl-1.32"; fi
}
KUBECTL_OLD="${KUBECTL_OLD:-$(kubectl_old_default)}"

# Prints the client minor version of a kubectl binary ("35"), or nothing.
kubectl_minor() {
  "$1" version --client 2>/dev/null | sed -n 's/^Client Version: v1\.\([0-9]*\)\..*/\1/p'
}
