#!/usr/bin/env bash
# make vulncheck: govulncheck ./... with govulncheck built from its Go module into bin/ (hack/tool.sh).
#
# govulncheck reads the Go vulnerability database (https://vuln.go.dev by default). Where that host cannot be
# reached (no internet besides the Go module proxy), this FAILS, loudly and on purpose: a vulnerability check
# that did not run must not look like one that found nothing. Point it at a copy of the database instead:
#   make vulncheck VULNCHECK_DB=file:///path/to/vulndb      (the layout of https://vuln.go.dev)
set -euo pipefail
cd "$(dirname "$0")/.."
db=${1:-https://vuln.go.dev}
govulncheck=$(hack/tool.sh govulncheck)
out=$(mktemp)
trap 'rm -f "$out"' EXIT
set +e
"$govulncheck" -db "$db" ./... 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
set -e
if [[ $rc -ne 0 ]] && grep -q 'fetching vulnerabilities' "$out"; then
  cat >&2 <<MSG

##########################################################################################################
# make vulncheck FAILED: the vulnerability database $db could not be read, so NOTHING WAS CHECKED.
# Give this machine access to it, or run with VULNCHECK_DB=file:///path/to/a/copy of the database.
##########################################################################################################
MSG
fi
exit "$rc"
