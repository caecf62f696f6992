#!/usr/bin/env bash
# Contract test: schemathesis (PyPI) against the running reference service,
# every operation of its generated /openapi.json (admin and partner API).
# Starts edrlink-service on 127.0.0.1:0 with a fresh database, runs for at
# most $SCHEMATHESIS_SECONDS (default 180), and passes only with 0 failures
# and 0 server errors. Report: artifacts/schemathesis/.
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)"
cd "$ROOT"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$ROOT/target}"
ST="$ROOT/tools/schemathesis-venv/bin/schemathesis"
[ -x "$ST" ] || { echo "schemathesis missing: run scripts/install-deps.sh"; exit 1; }
SECONDS_BUDGET="${SCHEMATHESIS_SECONDS:-180}"

cargo build -q --locked -p edrlink-service --bin edrlink-service
work="$(mktemp -d)"
out="$ROOT/artifacts/schemathesis"; mkdir -p "$out"
admin_key="contract-$(head -c 12 /dev/urandom | od -An -tx1 | tr -d ' \n')"
EDRLINK_ADMIN_KEY="$admin_key" RUST_LOG=warn \
  "$CARGO_TARGET_DIR/debug/edrlink-service" --db "$work/edrlink.db" --listen 127.0.0.1:0 \
  >"$work/stdout" 2>"$out/service.log" &
pid=$!
cleanup() { kill "$pid" 2>/dev/null || true; wait "$pid" 2>/dev/null || true; rm -rf "$work"; }
trap cleanup EXIT
for _ in $(seq 1 300); do
  grep -q '^listening on ' "$work/stdout" 2>/dev/null && break
  kill -0 "$pid" 2>/dev/null || { echo "service exited"; cat "$out/service.log"; exit 1; }
  sleep 0.1
done
url="$(sed -n 's/^listening on //p' "$work/stdout")"
[ -n "$url" ] || { echo "service did not start"; exit 1; }
echo "service at $url"

# Known data for the admin routes' path parameters (the generator also makes up others).
admin() {  # METHOD PATH JSON (python3: no curl needed)
  python3 - "$url" "$admin_key" "$@" <<'PY'
import sys, urllib.request
url, key, method, path, body = sys.argv[1:6]
req = urllib.request.Request(url + path, data=body.encode(), method=method,
    headers={"authorization": "Bearer " + key, "content-type": "application/json"})
urllib.request.urlopen(req, timeout=30).read()
PY
}
admin POST /admin/tenants '{"tenant_id":"t1"}'
admin PUT /admin/tenants/t1/integrations/acme '{"enabled":true}'

# One worker: CPython 3.11 can fail ast.parse in concurrent threads
# ("AST constructor recursion depth mismatch", seen with 3.11.7), which hypothesis
# calls while describing strategies: with two workers the run itself flaked.
set +e
PYTHONPATH="$ROOT/tests/contract" SCHEMATHESIS_HOOKS=hooks \
  timeout $((SECONDS_BUDGET + 60)) "$ST" --no-color --config-file "$ROOT/tests/contract/schemathesis.toml" \
  run "$url/openapi.json" \
  --checks all \
  --header "Authorization: Bearer $admin_key" \
  --max-time "$SECONDS_BUDGET" \
  --workers 1 \
  --request-timeout 10 \
  --seed 1 \
  --report junit --report-dir "$out" 2>&1 | tee "$out/schemathesis.log"
rc=${PIPESTATUS[0]}
set -e
if grep -qE 'status=5[0-9]{2}' "$out/service.log" 2>/dev/null; then
  echo "server errors in the service log"; rc=1
fi
echo "schemathesis exit code: $rc"
exit "$rc"
