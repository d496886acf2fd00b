# The control-plane components hack/local-up.sh can start besides the apiserver: which
# binary and cargo package each is, its client identity, its flags, and start order.
# Source it after common.sh, pki.sh and procs.sh; the caller sets LOCAL_DIR, PKI_DIR,
# BIN_DIR, API_HOST, SECURE_PORT and writes kubeconfigs with components::kubeconfig.
# shellcheck shell=bash

# What runs when COMPONENTS is not given: the control plane (nodes come with
# SIMULATED_NODES=N, or the kubelet issue).
DEFAULT_COMPONENTS="apiserver controller-manager scheduler"
# The whole control plane, which SIMULATED_NODES=N starts (plus kubelet-sim).
CONTROL_PLANE="apiserver controller-manager scheduler"

# component -> binary, and binary -> the cargo package that builds it.
declare -A BINARY=(
  [apiserver]=kube-apiserver
  [controller-manager]=kube-controller-manager
  [scheduler]=kube-scheduler
  [kubelet-sim]=kubelet-sim
)
declare -A PACKAGE=(
  [kube-apiserver]=kube-apiserver
  [kube-controller-manager]=kube-controller-manager
  [kube-scheduler]=kube-scheduler
  [kubelet-sim]=kubelet
)
# Start order after the apiserver is ready.
START_ORDER=(controller-manager scheduler kubelet-sim)

# components::resolve: sets COMPONENTS (space separated) and SIMULATED_NODES from the
# environment: SIMULATED_NODES=N implies the whole control plane and kubelet-sim.
components::resolve() {
  SIMULATED_NODES="${SIMULATED_NODES:-0}"
  [[ $SIMULATED_NODES =~ ^[0-9]+$ ]] ||
    die "SIMULATED_NODES must be a number, not '$SIMULATED_NODES'"
  local wanted="${COMPONENTS:-}"
  wanted="${wanted//,/ }"
  if ((SIMULATED_NODES > 0)); then
    wanted="${wanted:-$CONTROL_PLANE}"
    [[ " $wanted " == *" kubelet-sim "* ]] || wanted="$wanted kubelet-sim"
  fi
  COMPONENTS="${wanted:-$DEFAULT_COMPONENTS}"
  # kubelet-sim asked for by name: one node unless told otherwise
  if [[ " $COMPONENTS " == *" kubelet-sim "* ]] && ((SIMULATED_NODES == 0)); then
    SIMULATED_NODES=1
  fi
  local c
  for c in $COMPONENTS; do
    [[ -n ${BINARY[$c]:-} ]] ||
      die "unknown component '$c' in COMPONENTS (known: ${!BINARY[*]})"
  done
}

# components::packages: the cargo packages that build the wanted components.
components::packages() {
  local c
  for c in $COMPONENTS; do echo "${PACKAGE[${BINARY[$c]}]}"; done | sort -u
}

# components::require_binaries: every wanted binary exists, or a message says how to
# build it.
components::require_binaries() {
  local c bin
  for c in $COMPONENTS; do
    bin="${BINARY[$c]}"
    [[ -x $BIN_DIR/$bin ]] ||
      die "component '$c' needs $BIN_DIR/$bin, which is missing; build it with: cargo build --release -p ${PACKAGE[$bin]}"
  done
}

# components::credentials: a client certificate per component, as upstream's identities.
# kubelet-sim acts for many nodes at once, so it cannot be one system:node:<name>
# (the Node authorizer confines each such identity to its own node): it is
# system:kubelet-sim, which components::grant_kubelet_sim binds to the system:node
# ClusterRole (what every kubelet may do, without the per-node confinement).
components::credentials() {
  local c
  for c in $COMPONENTS; do
    case $c in
      controller-manager) pki::client "$PKI_DIR" kube-controller-manager "/CN=system:kube-controller-manager" ;;
      scheduler) pki::client "$PKI_DIR" kube-scheduler "/CN=system:kube-scheduler" ;;
      kubelet-sim) pki::client "$PKI_DIR" kubelet-sim "/CN=system:kubelet-sim" ;;
    esac
  done
  for c in $COMPONENTS; do
    [[ $c == apiserver ]] && continue
    components::kubeconfig "$LOCAL_DIR/${BINARY[$c]}.kubeconfig" "${BINARY[$c]}" \
      "$PKI_DIR/${BINARY[$c]}.crt" "$PKI_DIR/${BINARY[$c]}.key"
  done
}

# components::kubeconfig FILE USER CERT KEY: a kubeconfig for the local apiserver.
components::kubeconfig() {
  local file=$1 user=$2 cert=$3 key=$4 b64="base64 -w0"
  (umask 077 && cat >"$file" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: local
  cluster:
    server: https://$API_HOST:$SECURE_PORT
    certificate-authority-data: $($b64 "$PKI_DIR/ca.crt")
users:
- name: $user
  user:
    client-certificate-data: $($b64 "$cert")
    client-key-data: $($b64 "$key")
contexts:
- name: local
  context:
    cluster: local
    user: $user
current-context: local
EOF
  )
  log "wrote $file"
}

# Health ports keep upstream's distance from the apiserver's port (6443 -> 10257 and
# 10259), so a test cluster on another SECURE_PORT never collides with a developer's.
controller_manager_port() { echo $((SECURE_PORT + 3814)); }
scheduler_port() { echo $((SECURE_PORT + 3816)); }

components::start_controller_manager() {
  # As upstream's local-up: each controller acts as its own service account (the
  # system:kube-controller-manager role alone may not create ReplicaSets or Pods).
  # --secure-port=0: it serves no health endpoint yet.
  # shellcheck disable=SC2086 # KCM_FLAGS is a list of flags
  procs::start kube-controller-manager "$LOCAL_DIR/logs/kube-controller-manager.log" \
    "$BIN_DIR/kube-controller-manager" \
    --kubeconfig="$LOCAL_DIR/kube-controller-manager.kubeconfig" \
    --leader-elect=false \
    --root-ca-file="$PKI_DIR/ca.crt" \
    --cluster-signing-cert-file="$PKI_DIR/ca.crt" \
    --cluster-signing-key-file="$PKI_DIR/ca.key" \
    --service-account-private-key-file="$PKI_DIR/sa.key" \
    --use-service-account-credentials=true \
    --secure-port=0 \
    ${KCM_FLAGS:-} \
    -v=2
}

components::start_scheduler() {
  procs::start kube-scheduler "$LOCAL_DIR/logs/kube-scheduler.log" \
    "$BIN_DIR/kube-scheduler" \
    --kubeconfig="$LOCAL_DIR/kube-scheduler.kubeconfig" \
    --leader-elect=false \
    --bind-address="$API_HOST" \
    --secure-port="$(scheduler_port)" \
    -v=2
}

# components::grant_kubelet_sim: the ClusterRoleBinding of system:kubelet-sim to the
# system:node ClusterRole (created once; an existing one is kept).
components::grant_kubelet_sim() {
  local code body='{"apiVersion":"rbac.authorization.k8s.io/v1","kind":"ClusterRoleBinding",
    "metadata":{"name":"kubelet-sim"},
    "roleRef":{"apiGroup":"rbac.authorization.k8s.io","kind":"ClusterRole","name":"system:node"},
    "subjects":[{"apiGroup":"rbac.authorization.k8s.io","kind":"User","name":"system:kubelet-sim"}]}'
  code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 30 --cacert "$PKI_DIR/ca.crt" \
    --cert "$PKI_DIR/admin.crt" --key "$PKI_DIR/admin.key" -H 'Content-Type: application/json' \
    -X POST --data "$body" \
    "https://$API_HOST:$SECURE_PORT/apis/rbac.authorization.k8s.io/v1/clusterrolebindings")" || true
  [[ $code == 201 || $code == 409 ]] ||
    die "could not bind system:kubelet-sim to the system:node ClusterRole (HTTP $code); see $LOCAL_DIR/logs/kube-apiserver.log"
}

components::start_kubelet_sim() {
  components::grant_kubelet_sim
  # shellcheck disable=SC2086 # KUBELET_SIM_FLAGS is a list of flags
  procs::start kubelet-sim "$LOCAL_DIR/logs/kubelet-sim.log" \
    "$BIN_DIR/kubelet-sim" \
    --kubeconfig="$LOCAL_DIR/kubelet-sim.kubeconfig" \
    --nodes="$SIMULATED_NODES" \
    ${KUBELET_SIM_FLAGS:-} \
    -v=1
}

# components::check_alive NAME: the process is still running a moment after its start.
components::check_alive() {
  local name=$1 log_file="$LOCAL_DIR/logs/$1.log"
  sleep 1
  if ! procs::pid "$name" >/dev/null; then
    tail -n 30 "$log_file" >&2 || true
    die "$name exited during startup; its log's tail is above ($log_file)"
  fi
}

# components::wait_nodes N: N simulated nodes are registered (the apiserver must be ready).
components::wait_nodes() {
  local want=$1 have=0 i
  log "waiting for $want simulated nodes to register"
  for ((i = 0; i < READY_TIMEOUT + want / 20; i++)); do
    procs::pid kubelet-sim >/dev/null ||
      die "kubelet-sim exited; see $LOCAL_DIR/logs/kubelet-sim.log"
    # metadata only: thousands of full Node objects would make each poll heavy
    have="$(curl -sf --max-time 30 --cacert "$PKI_DIR/ca.crt" --cert "$PKI_DIR/admin.crt" \
      --key "$PKI_DIR/admin.key" "https://$API_HOST:$SECURE_PORT/api/v1/nodes" \
      -H 'Accept: application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1' |
      grep -o '"sim.kubelet/simulated":"true"' | wc -l)" || have=0
    if ((have >= want)); then
      log "$have simulated nodes registered"
      return
    fi
    sleep 1
  done
  die "only $have of $want simulated nodes registered; see $LOCAL_DIR/logs/kubelet-sim.log"
}

# components::start_all: starts the wanted components other than the apiserver, in order.
components::start_all() {
  local c
  for c in "${START_ORDER[@]}"; do
    [[ " $COMPONENTS " == *" $c "* ]] || continue
    "components::start_${c//-/_}"
    components::check_alive "${BINARY[$c]}"
  done
  [[ " $COMPONENTS " != *" kubelet-sim "* ]] || components::wait_nodes "$SIMULATED_NODES"
}
