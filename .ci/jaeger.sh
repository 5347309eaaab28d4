#!/usr/bin/env bash
# Builds Jaeger (the v2 all-in-one binary, cmd/jaeger) for the trace
# end-to-end test, from the Go module proxy into DIR. `go install pkg@v`
# refuses Jaeger (its go.mod has a replace directive), so the module is
# downloaded and built as the main module. Cold: about 12 minutes of CPU
# (10.5 user + 1.3 sys), 1.3 GB of modules and 1.6 GB of build cache.
set -euo pipefail
version=$1 dir=$2
go=${GO:-go}
src=$($go mod download -json "github.com/jaegertracing/jaeger@$version" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -n "$src" ] || { echo "jaeger.sh: could not download github.com/jaegertracing/jaeger@$version" >&2; exit 1; }
mkdir -p "$dir"
cd "$src"
CGO_ENABLED=0 GOFLAGS=-buildvcs=false $go build -trimpath -o "$dir/jaeger.tmp" ./cmd/jaeger
mv "$dir/jaeger.tmp" "$dir/jaeger"
