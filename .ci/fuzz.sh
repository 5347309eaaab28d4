#!/usr/bin/env bash
# Runs every fuzz target in the module for the given time each (default 10s).
# Go runs one fuzz target at a time, so this walks them one by one.
set -euo pipefail
cd "$(dirname "$0")/.."
t="${1:-10s}"
found=0
while IFS=: read -r file name; do
  pkg="./$(dirname "$file")"
  found=$((found + 1))
  echo "== $name ($pkg, $t)"
  go test -run '^$' -fuzz "^${name}\$" -fuzztime "$t" "$pkg"
done < <(git ls-files '*_test.go' | xargs grep -oE '^func Fuzz[A-Za-z0-9_]+' | sed 's/func //')
echo "fuzzed $found targets"
[ "$found" -gt 0 ]
