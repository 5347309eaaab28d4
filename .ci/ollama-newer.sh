#!/usr/bin/env bash
# Builds the newer test Ollama (ollamatest.NewerVersion) into DIR/ollama:
#   .ci/ollama-newer.sh VERSION DIR
# Newer Ollama module zips lack llama.cpp's vendor/ folder (Go module zips
# drop every folder named vendor), so three header-only libraries come from
# elsewhere, never copied by hand:
#   nlohmann/json.hpp, json_fwd.hpp  Debian nlohmann-json3-dev (/usr/include)
#   stb/stb_image.h                  Debian libstb-dev (/usr/include)
#   miniaudio/miniaudio.h            no Debian bookworm package ships it; the
#                                    Go module github.com/gen2brain/malgo
#                                    (Go bindings of miniaudio) carries it at
#                                    its root: DIR/include/miniaudio links to
#                                    that module in the Go module cache.
# The build takes many minutes of CPU (llama.cpp in C++, cgo).
set -euo pipefail
version=$1 dir=$2
malgo=github.com/gen2brain/malgo@v0.11.24
need=()
[ -f /usr/include/nlohmann/json_fwd.hpp ] || need+=(nlohmann-json3-dev)
[ -f /usr/include/stb/stb_image.h ] || need+=(libstb-dev)
if [ ${#need[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${need[*]} (headers the newer test Ollama needs)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq "${need[@]}" >/dev/null
  else
    echo "the newer test Ollama needs: sudo apt-get install ${need[*]}" >&2
    exit 1
  fi
fi
mkdir -p "$dir/include"
tmp=$(mktemp -d "$dir/build-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
cd "$tmp" # outside any module, so the project's go.mod plays no part
mdir=$(go mod download -json "$malgo" | sed -n 's/^[[:space:]]*"Dir": "\(.*\)",$/\1/p')
[ -f "$mdir/miniaudio.h" ] || { echo "no miniaudio.h in $malgo ($mdir)" >&2; exit 1; }
ln -sfn "$mdir" "$dir/include/miniaudio"
GOBIN="$tmp" GOFLAGS=-buildvcs=false CGO_ENABLED=1 CGO_CPPFLAGS="-I$dir/include" \
  go install "github.com/ollama/ollama@$version"
mv "$tmp/ollama" "$dir/ollama"
