#!/usr/bin/env bash
# Make sure a Chromium is installed for the dashboard's browser tests (Playwright drives Debian's `chromium`
# through executable_path; Playwright's own browser download is not used). Installs the Debian package when it
# is missing; does nothing when it is there. Run as root (CI) or with chromium already installed.
set -euo pipefail
if command -v chromium >/dev/null 2>&1 || [ -n "${ARCHSCOUT_CHROMIUM:-}" ]; then
  exit 0
fi
if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
  # not fatal: the browser tests then skip (CI runs as root and sets ARCHSCOUT_REQUIRE_BROWSER=1)
  echo "scripts/browser.sh: chromium is missing and cannot be installed here (needs root and apt-get); the" \
       "dashboard's browser tests will be skipped (install the 'chromium' package, or set ARCHSCOUT_CHROMIUM)" >&2
  exit 0
fi
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq >/dev/null
apt-get install -y -qq --no-install-recommends chromium >/dev/null
command -v chromium >/dev/null || { echo "scripts/browser.sh: installed chromium but found no chromium" >&2; exit 1; }
