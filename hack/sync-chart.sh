#!/usr/bin/env bash
# Copies the generated and shared manifests of config/ into the Helm chart, which cannot read files outside
# its own directory: the CRDs (controller-gen's config/crd/bases), the RBAC roles (controller-gen's
# config/rbac/role.yaml and the hand-written roles beside it), the alerts and the dashboard. The chart's
# templates read the rules and groups from these copies, so there is no second hand-kept copy: edit config/,
# then `make chart` (make manifests runs it). test/manifests fails when a copy differs from its source.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
chart="$root/charts/intune-cert-operator"

rm -rf "$chart/crds" "$chart/files"
mkdir -p "$chart/crds" "$chart/files/rbac"
cp "$root"/config/crd/bases/*.yaml "$chart/crds/"
for role in role leader_election_role metrics_auth_role metrics_reader_role; do
  cp "$root/config/rbac/$role.yaml" "$chart/files/rbac/$role.yaml"
done
cp "$root/config/namespaced/clustergraphconnection_role.yaml" "$chart/files/rbac/clustergraphconnection_role.yaml"
cp "$root/config/prometheus/prometheusrule.yaml" "$chart/files/prometheusrule.yaml"
cp "$root/config/grafana/dashboard.json" "$chart/files/dashboard.json"
