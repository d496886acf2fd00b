# PKI for a local cluster, made with openssl. Source it, then call pki::ensure DIR SANS.
# Keys are EC P-256 in PKCS#8 PEM. Files are made only when absent, so a restarted
# cluster keeps its CA and clients keep trusting it; the serving certificate is remade
# when the wanted SANs change (e.g. a new API_HOST).
# shellcheck shell=bash

# pki::key FILE: a new P-256 private key, readable by the owner only.
pki::key() {
  (umask 077 && openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$1" 2>/dev/null)
}

# pki::ca DIR: the self-signed cluster CA (ca.crt, ca.key).
pki::ca() {
  local dir=$1
  [[ -f $dir/ca.crt && -f $dir/ca.key ]] && return
  log "generating cluster CA in $dir"
  pki::key "$dir/ca.key"
  openssl req -x509 -new -sha256 -days 3650 -key "$dir/ca.key" -out "$dir/ca.crt" \
    -subj "/CN=kubernetes-ca" -config <(cat <<'EOF'
[req]
distinguished_name = dn
x509_extensions = v3_ca
[dn]
[v3_ca]
basicConstraints = critical, CA:TRUE
keyUsage = critical, digitalSignature, keyCertSign, cRLSign
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid:always
EOF
  )
}

# pki::leaf DIR NAME SUBJECT EXT_KEY_USAGE [SANS]: NAME.crt/NAME.key signed by the CA.
pki::leaf() {
  local dir=$1 name=$2 subject=$3 eku=$4 sans=${5:-}
  log "generating $name certificate ($subject${sans:+, SANs $sans})"
  pki::key "$dir/$name.key"
  openssl req -new -key "$dir/$name.key" -subj "$subject" -out "$dir/$name.csr"
  openssl x509 -req -sha256 -days 825 -in "$dir/$name.csr" -out "$dir/$name.crt" \
    -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
    -extensions v3_leaf -extfile <(cat <<EOF
[v3_leaf]
basicConstraints = critical, CA:FALSE
keyUsage = critical, digitalSignature
extendedKeyUsage = $eku
subjectKeyIdentifier = hash
authorityKeyIdentifier = keyid, issuer
${sans:+subjectAltName = $sans}
EOF
  ) 2>/dev/null
  rm -f "$dir/$name.csr"
}

# pki::ensure DIR APISERVER_SANS: CA, apiserver serving cert and admin client cert.
pki::ensure() {
  local dir=$1 sans=$2
  mkdir -p "$dir"
  pki::ca "$dir"
  if [[ ! -f $dir/apiserver.crt || $(cat "$dir/apiserver.sans" 2>/dev/null) != "$sans" ]]; then
    pki::leaf "$dir" apiserver "/CN=kube-apiserver" serverAuth "$sans"
    echo "$sans" >"$dir/apiserver.sans"
  fi
  [[ -f $dir/admin.crt ]] ||
    pki::leaf "$dir" admin "/O=system:masters/CN=kubernetes-admin" clientAuth
}

# pki::client DIR NAME SUBJECT: a client certificate NAME.crt/NAME.key, made once (and
# again when the identity it should carry changed).
pki::client() {
  [[ -f $1/$2.crt && -f $1/$2.key && $(cat "$1/$2.subject" 2>/dev/null) == "$3" ]] && return
  pki::leaf "$1" "$2" "$3" clientAuth
  echo "$3" >"$1/$2.subject"
}
