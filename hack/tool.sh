#!/usr/bin/env bash
# Builds one pinned command-line tool from its Go module into bin/<name>-<version> and prints its path on
# stdout; skips the build when the binary is already there (CI and every later run reuse bin/). No release
# binaries are downloaded: only the Go module proxy is reachable.
#
#   hack/tool.sh helm        helm.sh/helm/v3/cmd/helm                        (helm lint / helm template)
#   hack/tool.sh promtool    github.com/prometheus/prometheus/cmd/promtool   (promtool test rules)
#   hack/tool.sh kustomize   sigs.k8s.io/kustomize/kustomize/v5              (make deploy)
#   hack/tool.sh govulncheck golang.org/x/vuln/cmd/govulncheck               (make vulncheck)
#   hack/tool.sh golangci-lint github.com/golangci/golangci-lint/v2/cmd/golangci-lint (make lint)
#
# Versions: HELM_VERSION, PROMTOOL_VERSION, KUSTOMIZE_VERSION, GOVULNCHECK_VERSION, GOLANGCI_LINT_VERSION
# override the pins below.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
name=${1:?usage: hack/tool.sh helm|promtool|kustomize|govulncheck|golangci-lint}
case $name in
  helm)      module=helm.sh/helm/v3;                 pkg=helm.sh/helm/v3/cmd/helm;                      version=${HELM_VERSION:-v3.22.0} ;;
  promtool)  module=github.com/prometheus/prometheus; pkg=github.com/prometheus/prometheus/cmd/promtool; version=${PROMTOOL_VERSION:-v0.316.0} ;;
  kustomize) module=sigs.k8s.io/kustomize/kustomize/v5; pkg=sigs.k8s.io/kustomize/kustomize/v5;         version=${KUSTOMIZE_VERSION:-v5.7.1} ;;
  govulncheck) module=golang.org/x/vuln;             pkg=golang.org/x/vuln/cmd/govulncheck;              version=${GOVULNCHECK_VERSION:-v1.9.0} ;;
  golangci-lint) module=github.com/golangci/golangci-lint/v2; pkg=github.com/golangci/golangci-lint/v2/cmd/golangci-lint; version=${GOLANGCI_LINT_VERSION:-v2.15.0} ;;
  *) echo "hack/tool.sh: unknown tool $name" >&2; exit 2 ;;
esac
dest="$root/bin/$name-$version"
if [[ -x $dest ]]; then
  echo "$dest"; exit 0
fi
mkdir -p "$root/bin"
echo "tool: building $name $version from $module (once; kept in bin/)" >&2
start=$SECONDS
# A throwaway module, so the tool's dependencies never enter the project's go.mod, and a build in progress
# never leaves a half-written binary at $dest.
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
cd "$work"
go mod init local/tool-build >/dev/null 2>&1
go mod edit -go=1.26.0 -require="$module@$version"
cat > tools.go <<GO
//go:build tools

package tools

import _ "$pkg"
GO
go mod tidy >/dev/null 2>&1 || go mod tidy
ldflags="-s -w"
case $name in
  helm) ldflags+=" -X helm.sh/helm/v3/internal/version.version=$version" ;;
  promtool) ldflags+=" -X github.com/prometheus/common/version.Version=${version#v}" ;;
esac
go build -tags tools -trimpath -ldflags "$ldflags" -o "$work/$name" "$pkg"
mv "$work/$name" "$dest"
echo "tool: built $name $version in $((SECONDS - start))s" >&2
echo "$dest"
