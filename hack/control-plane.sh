#!/usr/bin/env bash
# Builds kube-apiserver, kubectl and etcd from their Go modules into bin/k8s/<version>/
# (no release binaries are downloaded: only the Go module proxy is reachable). Skips the
# build when the binaries are already there. Prints the directory on stdout.
#
# The Kubernetes version follows the k8s.io/client-go version in go.mod (v0.X.Y -> v1.X.Y),
# so the API server the tests run against is the one the operator is compiled for.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
client_go=$(go list -m -f '{{.Version}}' k8s.io/client-go)   # e.g. v0.37.2
k8s_version="v1.${client_go#v0.}"                              # e.g. v1.37.2
etcd_version=${ETCD_VERSION:-v3.6.16}
dest="$root/bin/k8s/${k8s_version#v}"

if [[ -x $dest/kube-apiserver && -x $dest/kubectl && -x $dest/etcd ]]; then
  echo "$dest"; exit 0
fi
mkdir -p "$dest"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
log() { echo "control-plane: $*" >&2; }

# kube-apiserver + kubectl: k8s.io/kubernetes refers to its staging modules by relative
# path (./staging/src/k8s.io/...); replace each with its published release.
if [[ ! -x $dest/kube-apiserver || ! -x $dest/kubectl ]]; then
  log "building kube-apiserver and kubectl $k8s_version (about 6 minutes on 2 cores)"
  mkdir -p "$work/k8s" && cd "$work/k8s"
  go mod init local/k8s-binaries >/dev/null 2>&1
  gomod=$(go mod download -json "k8s.io/kubernetes@$k8s_version" | sed -n 's/^[[:space:]]*"GoMod": "\(.*\)",$/\1/p')
  staging=$(awk '/=> \.\/staging\/src\//{print $1}' "$gomod" | sort -u)
  [[ -n $staging ]] || { log "no staging modules found in $gomod"; exit 1; }
  go mod edit -go=1.26.0 -require="k8s.io/kubernetes@$k8s_version"
  for m in $staging; do go mod edit -replace="$m=$m@$client_go"; done
  cat > tools.go <<'GO'
//go:build tools

package tools

import (
	_ "k8s.io/kubernetes/cmd/kube-apiserver"
	_ "k8s.io/kubernetes/cmd/kubectl"
)
GO
  go mod tidy >/dev/null 2>&1 || go mod tidy
  minor=${k8s_version#v1.}; minor=${minor%%.*}
  ldflags="-s -w -X k8s.io/component-base/version.gitVersion=$k8s_version -X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$minor"
  go build -tags tools -ldflags "$ldflags" -o "$dest/kube-apiserver" k8s.io/kubernetes/cmd/kube-apiserver
  go build -tags tools -ldflags "$ldflags" -o "$dest/kubectl" k8s.io/kubernetes/cmd/kubectl
fi

if [[ ! -x $dest/etcd ]]; then
  log "building etcd $etcd_version"
  mkdir -p "$work/etcd" && cd "$work/etcd"
  go mod init local/etcd-binary >/dev/null 2>&1
  go mod edit -go=1.26.0 -require="go.etcd.io/etcd/server/v3@$etcd_version"
  cat > tools.go <<'GO'
//go:build tools

package tools

import _ "go.etcd.io/etcd/server/v3"
GO
  go mod tidy >/dev/null 2>&1 || go mod tidy
  go build -tags tools -ldflags "-s -w" -o "$dest/etcd" go.etcd.io/etcd/server/v3
fi
echo "$dest"
