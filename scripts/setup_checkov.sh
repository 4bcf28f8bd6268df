#!/usr/bin/env bash
# Install checkov into its own virtualenv (.cache/venv-checkov).
#
# checkov pins many dependencies that would clash with the project's, so it never goes into
# .venv. Idempotent: when the pinned version is already installed it only prints the version.
# Used by `make setup` and CI; tests/infra/test_checkov.py runs the installed binary.
set -euo pipefail

CHECKOV_VERSION="3.3.30"
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENV="${ROOT}/.cache/venv-checkov"
PYTHON="${PYTHON:-python3.11}"

installed_version() {
  "${VENV}/bin/python" -c 'from checkov.version import version; print(version)' 2>/dev/null || true
}

if [[ -x "${VENV}/bin/checkov" && "$(installed_version)" == "${CHECKOV_VERSION}" ]]; then
  echo "checkov ${CHECKOV_VERSION} already installed in ${VENV}"
  exit 0
fi

if [[ ! -x "${VENV}/bin/python" ]]; then
  mkdir -p "$(dirname "${VENV}")"
  "${PYTHON}" -m venv "${VENV}"
fi
"${VENV}/bin/python" -m pip install --quiet --upgrade pip
"${VENV}/bin/python" -m pip install --quiet "checkov==${CHECKOV_VERSION}"
echo "checkov $(installed_version) installed in ${VENV}"
