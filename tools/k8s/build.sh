#!/usr/bin/env bash
# Build the control plane the real-cluster tests run on, from the Go module proxy:
# etcd, kube-apiserver, kube-controller-manager, kube-scheduler and KWOK.
# Binaries are cached outside the repository, keyed by version, and built only when missing.
# Prints the bin directory on stdout; progress goes to stderr.
#
#   tools/k8s/build.sh            # build what is missing, print the bin dir
#   PARLEY_K8S_CACHE=/x tools/k8s/build.sh
#   tools/k8s/build.sh --check    # print the bin dir if every binary is there, else exit 3
set -euo pipefail

K8S_VERSION="${K8S_VERSION:-v1.35.4}"
ETCD_VERSION="${ETCD_VERSION:-v3.6.16}"
KWOK_VERSION="${KWOK_VERSION:-v0.8.0}"
CACHE="${PARLEY_K8S_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/parley/k8s}"
BIN="$CACHE/k8s-$K8S_VERSION-etcd-$ETCD_VERSION-kwok-$KWOK_VERSION/bin"
# staging modules of k8s.io/kubernetes, each pinned to the matching v0.x release
STAGING=(api apiextensions-apiserver apimachinery apiserver cli-runtime client-go
  cloud-provider cluster-bootstrap code-generator component-base component-helpers
  controller-manager cri-api cri-client csi-translation-lib dynamic-resource-allocation
  endpointslice externaljwt kms kube-aggregator kube-controller-manager kube-proxy
  kube-scheduler kubectl kubelet metrics mount-utils pod-security-admission
  sample-apiserver sample-cli-plugin sample-controller)

if [ "${1:-}" = "--check" ]; then
  for b in etcd kube-apiserver kube-controller-manager kube-scheduler kwok kwok-stages.yaml; do
    [ -s "$BIN/$b" ] || { echo "k8s-build: $BIN/$b is missing (make k8s-binaries)" >&2; exit 3; }
  done
  echo "$BIN"; exit 0
fi
complete=1
for b in etcd kube-apiserver kube-controller-manager kube-scheduler kwok kwok-stages.yaml; do
  [ -s "$BIN/$b" ] || complete=0
done
if [ "$complete" = 1 ]; then echo "$BIN"; exit 0; fi  # cached: no Go needed
# the toolchain: on PATH, else where the official tarball installs it
command -v go >/dev/null || PATH="$PATH:/usr/local/go/bin"
command -v go >/dev/null || { echo "k8s-build: the Go toolchain (go) is not on PATH" >&2; exit 1; }
export CGO_ENABLED=0 GOFLAGS="-trimpath -buildvcs=false" GOTOOLCHAIN=local
mkdir -p "$BIN"
started=$SECONDS
log() { echo "k8s-build: $*" >&2; }

wrapper() {  # a throwaway module that requires $1 at $2, with extra go.mod lines on stdin
  local dir; dir="$(mktemp -d "$CACHE/build.XXXXXX")"
  { echo "module parley.local/k8sbuild"; echo; echo "go 1.25"; echo; echo "require $1 $2"; cat; } > "$dir/go.mod"
  echo "$dir"
}

if [ ! -x "$BIN/kube-apiserver" ] || [ ! -x "$BIN/kube-controller-manager" ] || [ ! -x "$BIN/kube-scheduler" ]; then
  log "building Kubernetes $K8S_VERSION (kube-apiserver, kube-controller-manager, kube-scheduler)"
  minor="${K8S_VERSION#v1.}"; minor="${minor%%.*}"; staging_v="v0.${K8S_VERSION#v1.}"
  dir="$(for m in "${STAGING[@]}"; do echo "replace k8s.io/$m => k8s.io/$m $staging_v"; done \
        | wrapper k8s.io/kubernetes "$K8S_VERSION")"
  ( cd "$dir"
    printf 'package main\nimport (\n _ "k8s.io/kubernetes/cmd/kube-apiserver/app"\n _ "k8s.io/kubernetes/cmd/kube-controller-manager/app"\n _ "k8s.io/kubernetes/cmd/kube-scheduler/app"\n)\nfunc main() {}\n' > tools.go
    go mod tidy >&2
    stamp=""
    for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
      stamp+=" -X $pkg.gitVersion=$K8S_VERSION -X $pkg.gitMajor=1 -X $pkg.gitMinor=$minor"
      stamp+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=1970-01-01T00:00:00Z"
    done
    for cmd in kube-apiserver kube-controller-manager kube-scheduler; do
      log "  go build $cmd"
      go build -ldflags "-s -w$stamp" -o "$BIN/$cmd.tmp" "k8s.io/kubernetes/cmd/$cmd" >&2
      mv "$BIN/$cmd.tmp" "$BIN/$cmd"
    done )
  rm -rf "$dir"
fi

if [ ! -x "$BIN/etcd" ]; then
  log "building etcd $ETCD_VERSION"
  dir="$(wrapper go.etcd.io/etcd/server/v3 "$ETCD_VERSION" </dev/null)"
  ( cd "$dir"
    printf 'package main\nimport _ "go.etcd.io/etcd/server/v3/etcdmain"\nfunc main() {}\n' > tools.go
    go mod tidy >&2
    go build -ldflags "-s -w" -o "$BIN/etcd.tmp" go.etcd.io/etcd/server/v3 >&2
    mv "$BIN/etcd.tmp" "$BIN/etcd" )
  rm -rf "$dir"
fi

if [ ! -x "$BIN/kwok" ]; then
  log "building KWOK $KWOK_VERSION"
  GOBIN="$BIN" go install "sigs.k8s.io/kwok/cmd/kwok@$KWOK_VERSION" >&2
fi
if [ ! -s "$BIN/kwok-stages.yaml" ]; then
  # KWOK's own stage definitions (shipped in its module): nodes become Ready and keep
  # heartbeating, pods become Running/Ready, complete and are deleted
  src="$(go env GOMODCACHE)/sigs.k8s.io/kwok@$KWOK_VERSION/kustomize/stage"
  [ -d "$src" ] || go mod download "sigs.k8s.io/kwok@$KWOK_VERSION" >&2
  for f in node/fast/node-initialize.yaml node/heartbeat/node-heartbeat.yaml \
           pod/fast/pod-ready.yaml pod/fast/pod-complete.yaml pod/fast/pod-delete.yaml; do
    echo "---"; cat "$src/$f"
  done > "$BIN/kwok-stages.yaml.tmp"
  mv "$BIN/kwok-stages.yaml.tmp" "$BIN/kwok-stages.yaml"
fi

elapsed=$((SECONDS - started))
[ "$elapsed" -lt 2 ] || log "built in ${elapsed}s into $BIN"
echo "$BIN"
