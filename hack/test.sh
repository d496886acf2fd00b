#!/usr/bin/env bash
# The test command. Builds everything once, runs the unit and integration tests, then
# starts a throwaway cluster (its own port and directory, so a developer's cluster is
# never touched) and runs the conformance suite against it with kubectl 1.32 and 1.35.
# Exits non-zero when anything fails.
#
# Knobs (environment):
#   TEST_SECURE_PORT    port of the throwaway cluster (default: 16443)
#   TEST_LOCAL_DIR      its directory (default: _output/test-cluster; data wiped each run)
#   CONFORMANCE_ALL=1   also run the tests listed in conformance/known-failures.txt
#   CONFORMANCE_FILTER  run only conformance tests whose name contains this
set -euo pipefail
export LOCAL_DIR="${TEST_LOCAL_DIR:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/_output/test-cluster}"
export SECURE_PORT="${TEST_SECURE_PORT:-16443}"
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
cd "$ROOT"

SUMMARY=()
FAILED_TESTS=()
FAILED=0
# stage NAME CMD...: runs CMD, records its outcome for the summary.
stage() {
  local name=$1 start=$SECONDS
  shift
  log "=== $name"
  if "$@"; then
    SUMMARY+=("ok      $name ($((SECONDS - start))s)")
  else
    SUMMARY+=("FAILED  $name ($((SECONDS - start))s)")
    FAILED=1
  fi
}

summary() {
  echo
  echo "=== summary"
  printf '  %s\n' "${SUMMARY[@]}"
  ((${#FAILED_TESTS[@]} == 0)) || printf '  failed conformance tests with %s\n' "${FAILED_TESTS[@]}"
  if ((FAILED)); then
    echo "  apiserver log: $LOCAL_DIR/logs/kube-apiserver.log"
    echo "  rerun against a running cluster: CONFORMANCE_KUBECONFIG=$LOCAL_DIR/admin.kubeconfig KUBECTL=$KUBECTL_NEW cargo test --release -p conformance -- --test-threads=1 [NAME]"
  fi
}

CLUSTER_STARTED=0
cluster_down() { ((CLUSTER_STARTED == 0)) || "$ROOT/hack/local-down.sh" || true; }

cluster_up() {
  CLUSTER_STARTED=1
  cluster_down
  rm -rf "$LOCAL_DIR/data" "$LOCAL_DIR/logs"
  # The kubectl suite's expected outputs are upstream's for an API server alone (no
  # controller or scheduler acting on what the tests create); the controllers and the
  # scheduler have their own integration tests (controllers/tests, scheduler/tests).
  COMPONENTS=apiserver SKIP_BUILD=1 SKIP_DEPS=1 "$ROOT/hack/local-up.sh" 9>&- # the cluster must not hold our lock
}

# conformance KUBECTL: the whole suite with one kubectl binary; failed test names are
# kept for the summary.
conformance() {
  local args=(--test-threads=1) t rc=0 failed log
  log="$LOCAL_DIR/logs/conformance-kubectl-1.$(kubectl_minor "$1").log"
  if [[ ${CONFORMANCE_ALL:-0} != 1 ]]; then
    for t in $(grep -v '^\s*#' conformance/known-failures.txt 2>/dev/null); do
      args+=(--skip "$t")
    done
    ((${#args[@]} == 1)) || log "skipping $(((${#args[@]} - 1) / 2)) known failures (conformance/known-failures.txt; CONFORMANCE_ALL=1 runs them)"
  fi
  CONFORMANCE_KUBECONFIG="$LOCAL_DIR/admin.kubeconfig" KUBECTL="$1" \
    run cargo test --release --no-fail-fast -p conformance -- ${CONFORMANCE_FILTER:+"$CONFORMANCE_FILTER"} "${args[@]}" \
    2>&1 | tee "$log" || rc=1
  failed="$(sed -n 's/^test \(\S*\) \.\.\. FAILED$/\1/p' "$log" | sort -u | tr '\n' ' ')"
  [[ -z $failed ]] || FAILED_TESTS+=("kubectl 1.$(kubectl_minor "$1"): $failed(log: $log)")
  return "$rc"
}

# One run at a time per test cluster directory: another run would stop our cluster.
mkdir -p "$(dirname "$LOCAL_DIR")"
exec 9>"$LOCAL_DIR.lock"
if ! flock -n 9; then
  log "another hack/test.sh is using $LOCAL_DIR; waiting (or set TEST_LOCAL_DIR and TEST_SECURE_PORT)"
  flock 9
fi
trap 'cluster_down; summary' EXIT

[[ -x $KUBECTL_NEW && -x $KUBECTL_OLD ]] || run "$ROOT/hack/install-deps.sh"
stage "build (cargo build --release --workspace --all-targets)" \
  cargo build --release --workspace --all-targets
((FAILED)) && exit 1
stage "format (cargo fmt --check)" cargo fmt --all --check
stage "lint (cargo clippy -D warnings)" cargo clippy --release --workspace --all-targets -- -D warnings
stage "unit and integration tests" cargo test --release --no-fail-fast --workspace --exclude conformance
stage "start test cluster on port $SECURE_PORT" cluster_up
if [[ ${SUMMARY[-1]} == ok* ]]; then
  for k in "$KUBECTL_OLD" "$KUBECTL_NEW"; do
    stage "conformance with kubectl 1.$(kubectl_minor "$k") ($k)" conformance "$k"
  done
  # a smoke run: the benchmark still works end to end (its figures are not judged here)
  stage "bench-apiserver --quick" env SKIP_BUILD=1 KUBECONFIG="$LOCAL_DIR/admin.kubeconfig" \
    "$ROOT/hack/bench-apiserver" --quick
else
  SUMMARY+=("FAILED  conformance (no cluster)")
fi
exit "$FAILED"
