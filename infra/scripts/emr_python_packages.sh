#!/usr/bin/env bash
# EMR bootstrap action: install the Spark job's Python packages (pandas, numpy, pyarrow: see
# emr_python_requirements.txt) into the cluster's Python 3.11, on every node, before YARN starts.
# Nodes that managed scaling adds later run it too.
#
#   emr_python_packages.sh <region> <s3://<artifacts bucket>/python/<wheel set>/> [python]
#
# infra/modules/emr uploads this script and passes the arguments; `python -m scripts.artifacts
# upload` stages the wheel set: a wheel per pin (CPython 3.11, manylinux x86_64),
# requirements.txt (the pins to install: all but pip) and manifest.json, written last. Nothing
# comes from the internet, which the private subnets cannot reach: the wheels come from S3
# through the VPC's gateway endpoint (in the region given, never the global endpoint), and pip
# runs from its own wheel in the set, so the node needs no pip of its own.
set -euo pipefail

usage="usage: $0 <region> <s3 URI of the wheel set> [python, default /usr/bin/python3.11]"
region="${1:?${usage}}"
source_uri="${2:?${usage}}"
python="${3:-/usr/bin/python3.11}"

log() { echo "emr_python_packages: $*" >&2; }

if [[ ! -x "${python}" ]]; then
  # EMR 7.x provides Python 3.11. If this image lacks it, take it from the Amazon Linux 2023
  # repository, which EMR itself reaches from private subnets through the S3 gateway endpoint.
  log "${python} is missing; installing $(basename "${python}") with dnf"
  sudo dnf install -y "$(basename "${python}")"
fi

work="$(mktemp -d)"
trap 'rm -rf "${work}"' EXIT

aws s3 cp --recursive --only-show-errors --region "${region}" "${source_uri%/}/" "${work}/"
if [[ ! -f "${work}/manifest.json" || ! -f "${work}/requirements.txt" ]]; then
  log "no complete wheel set at ${source_uri} (manifest.json is written last and is missing):"
  log "run 'python -m scripts.artifacts upload' before creating the cluster"
  exit 1
fi
installers=("${work}"/pip-*.whl)
if [[ ${#installers[@]} -ne 1 || ! -f "${installers[0]}" ]]; then
  log "the wheel set at ${source_uri} must hold exactly one pip wheel, the installer"
  exit 1
fi

# --no-index: only the staged wheels; -r: exactly the pinned versions. The node's Python is the
# job's on purpose, so a PEP 668 "externally managed" mark, if the image has one, does not apply.
sudo "${python}" "${installers[0]}/pip" install --no-index --find-links "${work}" \
  --only-binary=:all: --no-cache-dir --disable-pip-version-check --no-warn-script-location \
  --root-user-action=ignore --break-system-packages -r "${work}/requirements.txt"

# Fail the bootstrap, and so the cluster, rather than the job hours later: the native libraries
# must load with this node's glibc.
"${python}" -c 'import numpy, pandas, pyarrow
print("emr_python_packages: numpy", numpy.__version__, "pandas", pandas.__version__,
      "pyarrow", pyarrow.__version__)'
