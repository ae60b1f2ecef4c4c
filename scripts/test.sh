#!/usr/bin/env bash
# The test command (README: "Run the tests"). The integration tests start
# their own throwaway PostgreSQL and Redis (tests/it/support/services.rs) and
# run curl, openssl, OpenSSH's ssh-keygen/ssh-agent/ssh-add (signed seals) and
# headless Chromium (the HTML report);
# this script only installs the Debian packages that provide those programs
# when they are missing, then runs the whole suite.
# It never configures or starts the machine's own servers.
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; elif command -v sudo >/dev/null; then sudo "$@"; else
    echo "test.sh: need root to run: $*" >&2; return 1; fi
}

# The PostgreSQL server binaries live off PATH on Debian.
have_postgres() {
  local dir
  dir=$(pg_config --bindir 2>/dev/null || true)
  for d in "$dir" /usr/lib/postgresql/*/bin; do
    [ -n "$d" ] && [ -x "$d/initdb" ] && [ -x "$d/postgres" ] && [ -x "$d/pg_isready" ] && return 0
  done
  return 1
}

missing=()
# Building: ring and jemalloc (the allocator) compile C code; jemalloc's
# build runs make.
command -v cc >/dev/null || missing+=(gcc)
command -v make >/dev/null || missing+=(make)
have_postgres || missing+=(postgresql)
command -v redis-server >/dev/null || missing+=(redis-server)
command -v curl >/dev/null || missing+=(curl)
command -v openssl >/dev/null || missing+=(openssl)
# Signed seals are checked with the real `ssh-keygen -Y verify` and signed
# through a real `ssh-agent`.
{ command -v ssh-keygen && command -v ssh-agent && command -v ssh-add; } >/dev/null ||
  missing+=(openssh-client)
# `script` gives the colour tests a terminal (tests/it/shell.rs).
command -v script >/dev/null || missing+=(bsdutils)
# The HTML report is checked in headless Chromium (tests/it/report.rs).
{ command -v chromium || command -v chromium-browser; } >/dev/null || missing+=(chromium)
# As root, PostgreSQL runs as an unprivileged user through setpriv (util-linux).
command -v setpriv >/dev/null || missing+=(util-linux)

if [ "${#missing[@]}" -gt 0 ]; then
  echo "test.sh: installing ${missing[*]}"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
fi

exec cargo test --locked "$@"
