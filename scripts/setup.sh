#!/usr/bin/env bash
# Idempotent, cached set-up for `make run` / `make test`: checks the toolchain, builds the venv,
# resolves the JVM jars with Maven. Re-running it is quick when nothing changed.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=$ROOT/.cache
mkdir -p "$CACHE/jars"

fail() { echo "setup: $*" >&2; exit 1; }

# --- toolchain ---------------------------------------------------------------------------------
PYTHON=${PYTHON:-$(command -v python3.11 || true)}
[ -n "$PYTHON" ] || fail "Python 3.11 is required (python3.11 not found on PATH). Install it, or set PYTHON=/path/to/python3.11."
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info[:2] == (3, 11) else 1)' \
  || fail "Python 3.11 is required; $PYTHON is $("$PYTHON" -V 2>&1)."
command -v java >/dev/null || fail "Java 17 is required (no 'java' on PATH). On Debian: apt-get install openjdk-17-jdk-headless."
JAVA_MAJOR=$(java -XshowSettings:properties -version 2>&1 | awk -F'= ' '/java.specification.version/ {print $2}')
[ "${JAVA_MAJOR:-0}" -ge 17 ] 2>/dev/null || fail "Java 17 or newer is required; found Java ${JAVA_MAJOR:-unknown}."
command -v mvn >/dev/null || fail "Maven is required to resolve the Kafka and Spark jars (no 'mvn' on PATH). On Debian: apt-get install maven."

stamp_ok() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }
hash_of() { cat "$@" | sha256sum | cut -d' ' -f1; }

# --- Python venv -------------------------------------------------------------------------------
VENV=$ROOT/.venv
WANT=$(hash_of pyproject.toml)
if [ ! -x "$VENV/bin/python" ]; then
  echo "setup: creating .venv with $PYTHON"
  "$PYTHON" -m venv "$VENV"
fi
if ! stamp_ok "$VENV/.installed" "$WANT"; then
  echo "setup: installing Python dependencies (pyspark 3.5.6, confluent-kafka, moto, ...)"
  "$VENV/bin/pip" install --quiet --upgrade pip
  "$VENV/bin/pip" install --quiet -e ".[job,test,bench,dev,dashboard]"
  echo "$WANT" > "$VENV/.installed"
fi

# --- JVM jars, resolved by Maven from the poms in local/maven -------------------------------------
for set in broker spark iceberg iceberg-aws s3a; do
  POM=local/maven/$set/pom.xml
  [ -f "$POM" ] || continue
  OUT=$CACHE/jars/$set
  WANT=$(hash_of "$POM")
  if ! stamp_ok "$OUT/.resolved" "$WANT"; then
    echo "setup: resolving $set jars with Maven ($POM)"
    rm -rf "$OUT"
    (cd "local/maven/$set" && mvn -q -B dependency:copy-dependencies -DincludeScope=runtime \
        -DoutputDirectory="$OUT") || fail "Maven could not resolve the jars of $POM (see the output above)."
    echo "$WANT" > "$OUT/.resolved"
  fi
done

# --- dashboard front-end libraries (npm) and the test browser (Debian's chromium) ----------------
# `make run` does not need them, so without npm this is a warning (CI makes it an error): the
# dashboard and its tests say what is missing when they start.
if ! bash scripts/setup_dashboard.sh; then
  [ "${CI:-}" = "true" ] && fail "the dashboard's front-end libraries could not be installed (see above)."
  echo "setup: warning: the dashboard's front-end libraries are not installed; \`make dashboard\` and its tests need them." >&2
fi

# --- checkov, in its own venv (it pins many packages) -----------------------------------------------
if [ -f scripts/setup_checkov.sh ]; then
  bash scripts/setup_checkov.sh >/dev/null
fi
echo "setup: ready (python $("$VENV/bin/python" -V 2>&1 | cut -d' ' -f2), java $JAVA_MAJOR, jars in .cache/jars)"
