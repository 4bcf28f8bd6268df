#!/usr/bin/env bash
# The dashboard's front-end libraries (Leaflet, uPlot) from npm, installed with `npm ci` from the
# committed package.json + package-lock.json into scripts/dashboard/node_modules (git-ignored).
# Idempotent and cached: a stamp holds the hash of both files, so a re-run with nothing changed
# costs nothing. The app serves these files itself; nothing is fetched from a CDN at run time.
# The browser for the browser test is separate: scripts/setup_browser.sh.
set -euo pipefail
cd "$(dirname "$0")/dashboard"

say() { echo "setup_dashboard: $*"; }
fail() { echo "setup_dashboard: $*" >&2; exit 1; }

STAMP=node_modules/.installed
WANT=$(cat package.json package-lock.json | sha256sum | cut -d' ' -f1)
if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$WANT" ] \
    && [ -f node_modules/leaflet/dist/leaflet.js ] && [ -f node_modules/uplot/dist/uPlot.iife.min.js ]; then
  exit 0
fi

command -v node >/dev/null \
  || fail "Node.js is required to install the dashboard's front-end libraries (no 'node' on PATH). On Debian: apt-get install nodejs npm."
command -v npm >/dev/null \
  || fail "npm is required to install the dashboard's front-end libraries (no 'npm' on PATH). On Debian: apt-get install npm."

say "installing the dashboard's front-end libraries with npm ci (scripts/dashboard/package-lock.json)"
npm ci --ignore-scripts --no-audit --no-fund --loglevel=error >/dev/null \
  || fail "npm ci failed in scripts/dashboard (see the output above)"
echo "$WANT" > "$STAMP"
say "installed leaflet $(node -p "require('./node_modules/leaflet/package.json').version"), uplot $(node -p "require('./node_modules/uplot/package.json').version")"
