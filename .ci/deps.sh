#!/usr/bin/env bash
# Installs what membrane needs on a Debian machine: bubblewrap for the sandbox.
# As root it installs with apt-get; otherwise it says what to run.
set -euo pipefail
if command -v bwrap >/dev/null 2>&1; then
  exit 0
fi
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing bubblewrap (the sandbox for sh and python_run)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq bubblewrap >/dev/null
  exit 0
fi
echo "bubblewrap is missing: install it (Debian/Ubuntu: sudo apt-get install bubblewrap)," >&2
echo "or run membrane with --sandbox=rlimit to accept weaker isolation." >&2
[ "${1:-}" = runtime ] && exit 0
exit 1
