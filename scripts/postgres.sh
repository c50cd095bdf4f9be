#!/usr/bin/env bash
# Make sure the PostgreSQL server binaries (initdb, pg_ctl) are installed, for the tests of the PostgreSQL
# storage (tests/pg_server.py starts a throwaway server with them). Installs the Debian package when they
# are missing; does nothing when they are there. Run as root (CI) or with the binaries already installed.
set -euo pipefail

have_server() {
  command -v initdb >/dev/null 2>&1 && return 0
  compgen -G "/usr/lib/postgresql/*/bin/initdb" >/dev/null 2>&1
}

ensure_user() {  # initdb and postgres refuse to run as root: the tests run them as the 'postgres' user
  if [ "$(id -u)" -eq 0 ] && ! id postgres >/dev/null 2>&1; then
    useradd --system --no-create-home --shell /usr/sbin/nologin postgres
  fi
}

if have_server; then
  ensure_user
  exit 0
fi
if [ "$(id -u)" -ne 0 ]; then
  # not fatal: the PostgreSQL storage tests then skip (CI runs as root and sets ARCHSCOUT_REQUIRE_POSTGRES=1)
  echo "scripts/postgres.sh: PostgreSQL server binaries are missing and this is not root; the PostgreSQL tests" \
       "will be skipped (install the 'postgresql' package to run them)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends postgresql >/dev/null
have_server || { echo "scripts/postgres.sh: installed postgresql but found no initdb" >&2; exit 1; }
ensure_user
