#!/usr/bin/env bash
# Installs what membrane's sandbox needs on a Debian/Ubuntu machine:
# bubblewrap (the isolation), util-linux (prlimit sets the limits inside each
# sandbox) and python3 (python_run). As root it installs them with apt-get;
# otherwise it says what to run. With "runtime" a missing piece is a warning
# (membrane still starts and explains it); without, it is an error. With
# "test" it also installs what only the tests use (prometheus, which the
# metrics end-to-end test runs; python3-matplotlib, which draws the chart a
# file test returns), and a missing piece is a warning too. With "browser" it
# installs only chromium (and a font), for the Lens's browser suite (make
# test-browser); there a missing piece is an error.
set -euo pipefail
missing=()
if [ "${1:-}" = browser ]; then
  command -v chromium >/dev/null 2>&1 || missing+=(chromium fonts-dejavu-core)
  [ ${#missing[@]} -eq 0 ] && exit 0
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "installing ${missing[*]} (the Lens's browser tests)" >&2
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq >/dev/null
    apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
    exit 0
  fi
  echo "missing: ${missing[*]}: install with: sudo apt-get install ${missing[*]}" >&2
  exit 1
fi
[ "${1:-}" = test ] && { command -v prometheus >/dev/null 2>&1 || missing+=(prometheus); }
# matplotlib draws the chart that python_run returns as an image in the tests.
[ "${1:-}" = test ] && { /usr/bin/python3 -c 'import matplotlib' >/dev/null 2>&1 || missing+=(python3-matplotlib); }
command -v bwrap >/dev/null 2>&1 || missing+=(bubblewrap)
command -v prlimit >/dev/null 2>&1 || missing+=(util-linux)
[ -x /usr/bin/python3 ] || command -v python3 >/dev/null 2>&1 || missing+=(python3)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
  echo "installing ${missing[*]} (the sandbox of sh and python_run)" >&2
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >/dev/null
  apt-get install -y -qq "${missing[@]}" >/dev/null
  exit 0
fi
echo "missing: ${missing[*]}: install with: sudo apt-get install ${missing[*]}" >&2
echo "(or run membrane with --sandbox=rlimit to accept weaker isolation)" >&2
[ "${1:-}" = runtime ] || [ "${1:-}" = test ] && exit 0
exit 1
