#!/usr/bin/env bash
# The real browser for the dashboard's browser test: Debian's `chromium`, driven by Playwright for
# Python with `executable_path` set to it (Playwright's own browser download cannot work here).
# Idempotent: does nothing when a chromium binary is already on PATH (or at CHROMIUM_PATH).
# Uses apt-get; as a non-root user through sudo when sudo is there, otherwise it says what to run.
set -euo pipefail

say() { echo "setup_browser: $*"; }
fail() { echo "setup_browser: $*" >&2; exit 1; }

find_chromium() {
  if [ -n "${CHROMIUM_PATH:-}" ] && [ -x "$CHROMIUM_PATH" ]; then echo "$CHROMIUM_PATH"; return; fi
  command -v chromium || command -v chromium-browser || true
}

found=$(find_chromium)
if [ -n "$found" ]; then
  say "chromium present: $found ($("$found" --version 2>/dev/null || echo 'version unknown'))"
  exit 0
fi

command -v apt-get >/dev/null \
  || fail "chromium is missing and there is no apt-get here; install Chromium yourself and set CHROMIUM_PATH=/path/to/chromium."

SUDO=()
if [ "$(id -u)" -ne 0 ]; then
  if command -v sudo >/dev/null; then
    SUDO=(sudo)
  else
    fail "chromium is missing; not root and no sudo. Run as root: apt-get update && apt-get install -y --no-install-recommends chromium"
  fi
fi

say "chromium is missing: installing Debian's chromium package with ${SUDO[*]:+${SUDO[*]} }apt-get (a few minutes)"
export DEBIAN_FRONTEND=noninteractive
say "running: ${SUDO[*]:+${SUDO[*]} }apt-get update -q"
"${SUDO[@]}" apt-get update -q >/dev/null
say "running: ${SUDO[*]:+${SUDO[*]} }apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core"
"${SUDO[@]}" apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core >/dev/null

found=$(find_chromium)
[ -n "$found" ] || fail "apt-get finished but no chromium binary is on PATH"
say "installed: $found ($("$found" --version 2>/dev/null || echo 'version unknown'))"
