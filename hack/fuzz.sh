#!/usr/bin/env bash
# Runs every fuzz target (func FuzzXxx in a _test.go file) for a short time each: hack/fuzz.sh [duration].
set -euo pipefail
cd "$(dirname "$0")/.."
fuzztime=${1:-20s}
grep -rl --include='*_test.go' '^func Fuzz' . | while read -r file; do
  pkg="./$(dirname "${file#./}")"
  for target in $(sed -n 's/^func \(Fuzz[A-Za-z0-9_]*\)(.*/\1/p' "$file"); do
    echo "fuzz: $pkg $target ($fuzztime)"
    go test -run='^$' -fuzz="^${target}\$" -fuzztime="$fuzztime" -fuzzminimizetime=5s "$pkg"
  done
done
# How long refusing a key-derivation bomb takes (a figure to read, not a pass/fail threshold).
echo "bench: time to refuse a PFX whose key inside an encrypted safe asks for 2^40 key-derivation iterations"
go test -run='^$' -bench='^BenchmarkRefuseBomb$' -benchtime=20x ./internal/pfx/
