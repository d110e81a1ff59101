#!/usr/bin/env bash
# apiserver.sh build|start|stop|status — the apiserver lane: a real kube-apiserver + etcd on
# loopback, as controller-runtime's envtest runs them. `start` prints the path of an admin
# kubeconfig as its last line of output.
#
# Binaries (kube-apiserver, etcd, helm, kubectl) are built once from the Go module proxy with the build
# module in e2e/k8s-build (pinned k8s.io/kubernetes, its staging modules replaced by their published
# versions) and cached in ~/.cache/kipsec/bin/<version>. Cold build: see README.
# Env: KIPSEC_APISERVER_DIR (state, default ${TMPDIR:-/tmp}/kipsec-apiserver), KIPSEC_CACHE
# (default ~/.cache/kipsec). Auth: client certificates (admin is in system:masters); RBAC on.
set -euo pipefail
here=$(dirname "$(readlink -f "$0")")
cache=${KIPSEC_CACHE:-$HOME/.cache/kipsec}
ver=$(sed -n 's/^\s*k8s.io\/kubernetes \(v[0-9.]*\)$/\1/p' "$here/k8s-build/go.mod")
bin=$cache/bin/$ver
dir=${KIPSEC_APISERVER_DIR:-${TMPDIR:-/tmp}/kipsec-apiserver}

build() {
  # Only what is missing: a cache from before kubectl joined the set gains kubectl alone (~15 s).
  local b lock missing=()
  for b in kube-apiserver etcd helm kubectl; do [[ -x $bin/$b ]] || missing+=("$b"); done
  ((${#missing[@]})) || return 0
  # Two starts on a cold cache (the cluster and apiserver lanes, a bench beside a test) build one
  # after the other: the second finds the binaries once it holds the lock.
  mkdir -p "$cache/bin"
  exec {lock}>"$cache/bin/.build.lock"
  flock "$lock"
  missing=()
  for b in kube-apiserver etcd helm kubectl; do [[ -x $bin/$b ]] || missing+=("$b"); done
  ((${#missing[@]})) || { exec {lock}>&-; return 0; }
  command -v go >/dev/null || { echo "apiserver.sh: go is not installed" >&2; exit 1; }
  echo "apiserver.sh: building ${missing[*]} ($ver) into $bin (cold: several minutes)" >&2
  rm -rf "$bin.tmp"; mkdir -p "$bin.tmp"
  local t0=$SECONDS
  ( cd "$here/k8s-build"
    export GOFLAGS=-mod=mod CGO_ENABLED=0
    for b in "${missing[@]}"; do
      case $b in
        kube-apiserver) go build -trimpath -o "$bin.tmp/$b" k8s.io/kubernetes/cmd/kube-apiserver ;;
        etcd) go build -trimpath -o "$bin.tmp/$b" go.etcd.io/etcd/server/v3 ;;
        helm) go build -trimpath -o "$bin.tmp/$b" helm.sh/helm/v3/cmd/helm ;;
        # Stamped with the pinned version: unstamped, `kubectl version` says v0.0.0-master.
        kubectl) go build -trimpath -ldflags "-X k8s.io/component-base/version.gitVersion=$ver -X k8s.io/client-go/pkg/version.gitVersion=$ver" \
                   -o "$bin.tmp/$b" k8s.io/kubernetes/cmd/kubectl ;;
      esac
    done )
  # One rename per binary, so a process using the others meanwhile never sees a half-written file.
  mkdir -p "$bin"
  for b in "${missing[@]}"; do mv -f "$bin.tmp/$b" "$bin/$b"; done
  rm -rf "$bin.tmp"
  exec {lock}>&-
  echo "apiserver.sh: built in $((SECONDS - t0)) s" >&2
}

free_port() { node -e 'const s=require("net").createServer().listen(0,"127.0.0.1",()=>{console.log(s.address().port);s.close()})'; }

certs() {
  local d=$1
  openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 30 -subj "/CN=kipsec-test-ca" \
    -keyout "$d/ca.key" -out "$d/ca.crt" 2>/dev/null
  issue() { # name subject san
    openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj "$2" -keyout "$d/$1.key" -out "$d/$1.csr" 2>/dev/null
    openssl x509 -req -in "$d/$1.csr" -CA "$d/ca.crt" -CAkey "$d/ca.key" -CAcreateserial -days 30 \
      -extfile <(printf '%s' "$3") -out "$d/$1.crt" 2>/dev/null
  }
  issue serving "/CN=kube-apiserver" "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc
extendedKeyUsage=serverAuth"
  issue admin "/O=system:masters/CN=kipsec-admin" "extendedKeyUsage=clientAuth"
  issue etcd "/CN=etcd" "subjectAltName=IP:127.0.0.1
extendedKeyUsage=serverAuth,clientAuth"
  openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$d/sa.key" 2>/dev/null
  openssl pkey -in "$d/sa.key" -pubout -out "$d/sa.pub" 2>/dev/null
}

start() {
  build
  if [[ -f $dir/apiserver.pid ]] && kill -0 "$(cat "$dir/apiserver.pid")" 2>/dev/null; then
    echo "$dir/admin.kubeconfig"; return
  fi
  rm -rf "$dir"; mkdir -p "$dir/etcd-data"; chmod 700 "$dir"
  certs "$dir"
  local eport pport aport
  eport=$(free_port); pport=$(free_port); aport=$(free_port)
  "$bin/etcd" --data-dir "$dir/etcd-data" --listen-client-urls "http://127.0.0.1:$eport" \
    --advertise-client-urls "http://127.0.0.1:$eport" --listen-peer-urls "http://127.0.0.1:$pport" \
    --initial-advertise-peer-urls "http://127.0.0.1:$pport" --initial-cluster "default=http://127.0.0.1:$pport" \
    --unsafe-no-fsync --quota-backend-bytes 4294967296 >"$dir/etcd.log" 2>&1 &
  echo $! > "$dir/etcd.pid"
  "$bin/kube-apiserver" --etcd-servers "http://127.0.0.1:$eport" --bind-address 127.0.0.1 \
    --advertise-address 127.0.0.1 --secure-port "$aport" --cert-dir "$dir" \
    --tls-cert-file "$dir/serving.crt" --tls-private-key-file "$dir/serving.key" \
    --client-ca-file "$dir/ca.crt" --authorization-mode RBAC \
    --service-account-issuer https://kubernetes.default.svc --service-account-key-file "$dir/sa.pub" \
    --service-account-signing-key-file "$dir/sa.key" --service-cluster-ip-range 10.0.0.0/24 \
    --allow-privileged=true --disable-admission-plugins ServiceAccount --enable-priority-and-fairness=false \
    --max-requests-inflight 2000 --max-mutating-requests-inflight 1000 \
    >"$dir/apiserver.log" 2>&1 &
  echo $! > "$dir/apiserver.pid"
  echo "$aport" > "$dir/port"
  cat > "$dir/admin.kubeconfig" <<KC
apiVersion: v1
kind: Config
clusters:
- name: kipsec-test
  cluster:
    server: https://127.0.0.1:$aport
    certificate-authority: $dir/ca.crt
users:
- name: admin
  user:
    client-certificate: $dir/admin.crt
    client-key: $dir/admin.key
contexts:
- name: kipsec-test
  context: {cluster: kipsec-test, user: admin}
current-context: kipsec-test
KC
  local ok=0
  for _ in $(seq 1 240); do
    if curl -fsS --cacert "$dir/ca.crt" --cert "$dir/admin.crt" --key "$dir/admin.key" \
        "https://127.0.0.1:$aport/readyz" >/dev/null 2>&1; then ok=1; break; fi
    kill -0 "$(cat "$dir/apiserver.pid")" 2>/dev/null || break
    sleep 0.5
  done
  if [[ $ok != 1 ]]; then
    echo "apiserver.sh: kube-apiserver did not become ready; last log lines:" >&2
    tail -20 "$dir/apiserver.log" >&2; stop; exit 1
  fi
  echo "apiserver.sh: ready at https://127.0.0.1:$aport (state in $dir)" >&2
  echo "$dir/admin.kubeconfig"
}

stop() {
  for p in apiserver etcd; do
    if [[ -f $dir/$p.pid ]]; then
      local pid; pid=$(cat "$dir/$p.pid")
      kill "$pid" 2>/dev/null || true
      for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
      kill -9 "$pid" 2>/dev/null || true
      rm -f "$dir/$p.pid"
    fi
  done
}

case ${1:-} in
  build) build; echo "$bin" ;;
  start) start ;;
  stop) stop ;;
  status) [[ -f $dir/apiserver.pid ]] && kill -0 "$(cat "$dir/apiserver.pid")" 2>/dev/null && echo running || { echo stopped; exit 1; } ;;
  *) echo "usage: apiserver.sh build|start|stop|status" >&2; exit 2 ;;
esac
