#!/usr/bin/env bash
# Python suite: builds the edrlink wheel with maturin (pinned, from PyPI; the
# bindings come from the workspace's uniffi-bindgen), installs it into a fresh
# virtualenv under target/, starts the reference service on loopback and runs
# pytest. Exit code non-zero on any failure, including "no tests collected".
#
# Env: CARGO_TARGET_DIR (default target/uniffi), PYTHON (default python3),
#      EDRLINK_SERVICE_BIN (use a prebuilt edrlink-service), PYTEST_ARGS,
#      EDRLINK_WHEEL (test this prebuilt wheel instead of building one, e.g. the manylinux2014
#      wheel scripts/dist.sh writes; the generated-bindings drift check is then skipped).
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
# shellcheck disable=SC1091
source scripts/versions.env
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target/uniffi}"
MATURIN_VERSION="${MATURIN_VERSION:-1.16.0}"
PYTEST_VERSION="${PYTEST_VERSION:-9.2.0}"
CRYPTOGRAPHY_VERSION="${CRYPTOGRAPHY_VERSION:-50.0.2}"
# A DSSE verifier nobody here wrote (test_host_keys.py checks the SDK's envelopes with it).
SECURESYSTEMSLIB_VERSION="${SECURESYSTEMSLIB_VERSION:-1.6.0}"
PY="${PYTHON:-python3}"
WORK="$CARGO_TARGET_DIR/python"
mkdir -p "$WORK"

# shellcheck disable=SC1091
source bindings/uniffi/scripts/service.sh
trap stop_service EXIT

if [ -n "${EDRLINK_WHEEL:-}" ]; then
  WHEEL="$(readlink -f "$EDRLINK_WHEEL")"
  echo "== prebuilt wheel: $WHEEL" >&2
else
# 1. build tools venv (maturin), reused between runs
if [ ! -x "$WORK/build-venv/bin/maturin" ] || ! "$WORK/build-venv/bin/maturin" --version | grep -q " $MATURIN_VERSION\$"; then
  echo "== installing maturin $MATURIN_VERSION" >&2
  "$PY" -m venv "$WORK/build-venv"
  "$WORK/build-venv/bin/pip" install --quiet --disable-pip-version-check "maturin==$MATURIN_VERSION"
fi

# 2. the wheel (release profile, unwinding panics, not stripped)
echo "== building the wheel (uniffi $UNIFFI_VERSION)" >&2
rm -rf "$WORK/wheels"
cargo build --quiet -p edrlink-uniffi-bindgen
(cd bindings/python && "$WORK/build-venv/bin/maturin" build --release --quiet --out "$WORK/wheels" >&2)
WHEEL="$(ls "$WORK"/wheels/edrlink-*.whl)"
echo "== wheel: $WHEEL" >&2
fi

# 3. a fresh virtualenv with the wheel + test deps
rm -rf "$WORK/venv"
"$PY" -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install --quiet --disable-pip-version-check "$WHEEL" "pytest==$PYTEST_VERSION" "cryptography==$CRYPTOGRAPHY_VERSION" "securesystemslib==$SECURESYSTEMSLIB_VERSION"
(cd "$WORK" && "$WORK/venv/bin/python" -c 'import edrlink, sys; print("== edrlink", edrlink.__version__, "from", edrlink.__file__, file=sys.stderr)')

# 4. generated Kotlin/Swift still in sync with this library
[ -n "${EDRLINK_WHEEL:-}" ] || bindings/uniffi/scripts/generate.sh --check --lib "$CARGO_TARGET_DIR/release/libedrlink_uniffi.so"

# 5. the reference service, then pytest (run from outside the source tree so the
#    installed package is what is imported)
start_service "$WORK/service"
set +e
rm -f "$WORK/junit.xml"
# shellcheck disable=SC2086
(cd "$ROOT/tests/python" && "$WORK/venv/bin/python" -m pytest -p no:cacheprovider -q --junitxml="$WORK/junit.xml" ${PYTEST_ARGS:-} .)
rc=$?
set -e
if [ "$rc" -eq 5 ]; then
  echo "pytest collected no tests: failing" >&2
  echo "0 passed, 1 failed"
  exit 1
fi
if [ -f "$WORK/junit.xml" ]; then
  "$WORK/venv/bin/python" - "$WORK/junit.xml" <<'PY'
import sys, xml.etree.ElementTree as ET
r = ET.parse(sys.argv[1]).getroot()
s = r if r.tag == "testsuite" else r.find("testsuite")
t, f, e, k = (int(s.get(a, 0)) for a in ("tests", "failures", "errors", "skipped"))
print(f"{t - f - e - k} passed, {f + e} failed")
PY
fi
exit "$rc"
