#!/usr/bin/env bash
# Builds and starts a local cluster in the background; a second run restarts it and
# keeps its data. Stop it with hack/local-down.sh.
#
# Knobs (environment):
#   COMPONENTS   components to run, space or comma separated: apiserver,
#                controller-manager, scheduler, kubelet-sim (default: DEFAULT_COMPONENTS
#                in hack/lib/components.sh)
#   SIMULATED_NODES=N  the whole control plane plus kubelet-sim with N simulated nodes
#                named sim-0 .. sim-<N-1> (8 CPU, 32Gi, 110 pods each)
#   KUBELET_SIM_FLAGS  more kubelet-sim flags, e.g. "--zones=3 --cpu=16"
#   KCM_FLAGS    more kube-controller-manager flags, e.g. "--controllers=nodelifecycle"
#   STORAGE      embedded (default) | etcd: a real etcd (Debian's etcd-server) on loopback,
#                its data in $LOCAL_DIR/etcd, and the apiserver on it with --etcd-servers
#   ETCD_PORT    etcd's client port with STORAGE=etcd (default: SECURE_PORT+1; peer: +2)
#   SECURE_PORT  the apiserver's HTTPS port (default: 6443)
#   API_HOST     the address it binds to and clients use (default: 127.0.0.1)
#   LOCAL_DIR    where PKI, kubeconfig, data, logs and pids live (default: _output/local)
#   BIN_DIR      where the binaries are (default: target/release)
#   SKIP_BUILD=1 use the binaries already in BIN_DIR
#   SKIP_DEPS=1  do not run hack/install-deps.sh
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"
source "$ROOT/hack/lib/pki.sh"
source "$ROOT/hack/lib/procs.sh"
source "$ROOT/hack/lib/components.sh"

STORAGE="${STORAGE:-embedded}"
SECURE_PORT="${SECURE_PORT:-6443}"
API_HOST="${API_HOST:-127.0.0.1}"
SERVICE_CLUSTER_IP_RANGE="10.0.0.0/24"
SERVICE_IP="10.0.0.1" # the first address of the range: the kubernetes Service
BIN_DIR="${BIN_DIR:-$ROOT/target/release}"
PKI_DIR="$LOCAL_DIR/pki"
KUBECONFIG_FILE="$LOCAL_DIR/admin.kubeconfig"
READY_TIMEOUT="${READY_TIMEOUT:-60}"
ETCD_PORT="${ETCD_PORT:-$((SECURE_PORT + 1))}"
ETCD_URL="http://127.0.0.1:$ETCD_PORT"

check_knobs() {
  components::resolve
  [[ " $COMPONENTS " == *" apiserver "* ]] || die "COMPONENTS must include apiserver"
  case $STORAGE in
    embedded) ;;
    etcd) command -v etcd >/dev/null || [[ ${SKIP_DEPS:-0} != 1 ]] ||
      die "STORAGE=etcd needs etcd (Debian's etcd-server; hack/install-deps.sh installs it)" ;;
    *) die "unknown STORAGE '$STORAGE' (known: embedded, etcd)" ;;
  esac
  [[ $SECURE_PORT =~ ^[0-9]+$ ]] || die "SECURE_PORT must be a number, not '$SECURE_PORT'"
}

build() {
  local p args=()
  for p in $(components::packages); do args+=(-p "$p"); done
  run cargo build --release "${args[@]}" ||
    die "cargo build --release ${args[*]} failed (a component's package may not exist yet)"
}

# sa_keys DIR: the key pair that signs and verifies service-account tokens (kept across runs).
sa_keys() {
  [[ -f $1/sa.key && -f $1/sa.pub ]] && return
  log "generating the service-account signing key in $1"
  openssl genrsa -out "$1/sa.key" 2048 2>/dev/null
  openssl rsa -in "$1/sa.key" -pubout -out "$1/sa.pub" 2>/dev/null
}

write_kubeconfig() {
  local b64="base64 -w0"
  (umask 077 && cat >"$KUBECONFIG_FILE" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://$API_HOST:$SECURE_PORT
    certificate-authority-data: $($b64 "$PKI_DIR/ca.crt")
users:
- name: kubernetes-admin
  user:
    client-certificate-data: $($b64 "$PKI_DIR/admin.crt")
    client-key-data: $($b64 "$PKI_DIR/admin.key")
contexts:
- name: local
  context:
    cluster: local
    user: kubernetes-admin
current-context: local
EOF
  )
  log "wrote $KUBECONFIG_FILE"
}

port_in_use() { (exec 3<>"/dev/tcp/$API_HOST/$SECURE_PORT") 2>/dev/null; }

# start_etcd: a one-member etcd on loopback for STORAGE=etcd (its data kept across runs).
start_etcd() {
  local peer="http://127.0.0.1:$((ETCD_PORT + 1))" i
  (exec 3<>"/dev/tcp/127.0.0.1/$ETCD_PORT") 2>/dev/null &&
    die "etcd's port 127.0.0.1:$ETCD_PORT is already in use by a process we did not start (set ETCD_PORT)"
  mkdir -p "$LOCAL_DIR/etcd"
  procs::start etcd "$LOCAL_DIR/logs/etcd.log" etcd --name=local \
    --data-dir="$LOCAL_DIR/etcd" \
    --listen-client-urls="$ETCD_URL" --advertise-client-urls="$ETCD_URL" \
    --listen-peer-urls="$peer" --initial-advertise-peer-urls="$peer" \
    --initial-cluster="local=$peer"
  for ((i = 0; i < READY_TIMEOUT * 5; i++)); do
    curl -sf --max-time 2 "$ETCD_URL/health" | grep -q '"health":"true"' && {
      log "etcd is ready at $ETCD_URL"
      return
    }
    procs::pid etcd >/dev/null || break
    sleep 0.2
  done
  tail -n 20 "$LOCAL_DIR/logs/etcd.log" >&2 || true
  die "etcd did not become healthy; its log's tail is above ($LOCAL_DIR/logs/etcd.log)"
}

start_apiserver() {
  port_in_use && die "port $API_HOST:$SECURE_PORT is already in use by a process we did not start"
  mkdir -p "$LOCAL_DIR/data"
  local storage=(--data-dir="$LOCAL_DIR/data")
  [[ $STORAGE == etcd ]] && storage=(--etcd-servers="$ETCD_URL")
  procs::start kube-apiserver "$LOCAL_DIR/logs/kube-apiserver.log" \
    "$BIN_DIR/kube-apiserver" \
    --secure-port="$SECURE_PORT" \
    --bind-address="$API_HOST" \
    --advertise-address="$API_HOST" \
    --tls-cert-file="$PKI_DIR/apiserver.crt" \
    --tls-private-key-file="$PKI_DIR/apiserver.key" \
    --client-ca-file="$PKI_DIR/ca.crt" \
    "${storage[@]}" \
    --service-cluster-ip-range="$SERVICE_CLUSTER_IP_RANGE" \
    --service-node-port-range=30000-32767 \
    --authorization-mode=Node,RBAC \
    --enable-admission-plugins=NodeRestriction \
    --service-account-issuer=https://kubernetes.default.svc.cluster.local \
    --service-account-key-file="$PKI_DIR/sa.pub" \
    --service-account-signing-key-file="$PKI_DIR/sa.key" \
    --api-audiences=https://kubernetes.default.svc.cluster.local \
    -v=2
}

wait_ready() {
  local pid i log_file="$LOCAL_DIR/logs/kube-apiserver.log"
  log "waiting up to ${READY_TIMEOUT}s for https://$API_HOST:$SECURE_PORT/readyz"
  for ((i = 0; i < READY_TIMEOUT * 5; i++)); do
    if ! pid="$(procs::pid kube-apiserver)"; then
      tail -n 30 "$log_file" >&2 || true
      die "kube-apiserver exited during startup; its log's tail is above ($log_file)"
    fi
    if curl -sf --max-time 2 --cacert "$PKI_DIR/ca.crt" --cert "$PKI_DIR/admin.crt" \
      --key "$PKI_DIR/admin.key" "https://$API_HOST:$SECURE_PORT/readyz" >/dev/null; then
      log "kube-apiserver (pid $pid) is ready"
      return
    fi
    sleep 0.2
  done
  tail -n 30 "$log_file" >&2 || true
  die "kube-apiserver not ready after ${READY_TIMEOUT}s; its log's tail is above ($log_file).
    Try: curl -k --cert $PKI_DIR/admin.crt --key $PKI_DIR/admin.key https://$API_HOST:$SECURE_PORT/readyz?verbose"
}

print_rss() {
  local pid
  sleep 2
  pid="$(procs::pid kube-apiserver)" || die "kube-apiserver exited after becoming ready"
  log "kube-apiserver idle RSS: $(awk '/^VmRSS:/ {print $2, $3}' "/proc/$pid/status")"
}

check_knobs
[[ ${SKIP_DEPS:-0} == 1 ]] || "$ROOT/hack/install-deps.sh"
[[ ${SKIP_BUILD:-0} == 1 ]] || build
if [[ $API_HOST =~ ^[0-9.]+$ || $API_HOST == *:* ]]; then HOST_SAN="IP:$API_HOST"; else HOST_SAN="DNS:$API_HOST"; fi
pki::ensure "$PKI_DIR" "$HOST_SAN,IP:$SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
sa_keys "$PKI_DIR"
write_kubeconfig
components::require_binaries
components::credentials
procs::stop_all
[[ $STORAGE == etcd ]] && start_etcd
start_apiserver
wait_ready
components::start_all
print_rss
echo
echo "Cluster is up (logs in $LOCAL_DIR/logs, stop it with hack/local-down.sh). To use it:"
echo "  export KUBECONFIG=$KUBECONFIG_FILE"
