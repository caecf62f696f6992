# Sourced by tests/python/run.sh and tests/kotlin/run.sh (bash).
# start_service WORKDIR: builds (unless EDRLINK_SERVICE_BIN is set) and starts the
# reference service on 127.0.0.1:0 with a private SQLite file and test faults
# (EDRLINK_TEST_FAULTS=1, for tests/scenarios), waits for its
# `listening on http://…` line and exports EDRLINK_TEST_SERVICE_URL and
# EDRLINK_ADMIN_KEY. The service is stopped by stop_service (trap it on EXIT).

start_service() {
  local work="$1"
  mkdir -p "$work"
  local bin="${EDRLINK_SERVICE_BIN:-}"
  if [ -z "$bin" ]; then
    echo "== building edrlink-service ($CARGO_TARGET_DIR)" >&2
    cargo build --quiet -p edrlink-service --bin edrlink-service >&2
    bin="$CARGO_TARGET_DIR/debug/edrlink-service"
  fi
  export EDRLINK_ADMIN_KEY="test-admin-$(od -An -N16 -tx1 /dev/urandom | tr -d ' \n')"
  rm -f "$work/svc.db"
  # Created before the service starts: the poll below must not race the
  # background job's redirection (sed on a missing file fails under pipefail).
  : >"$work/svc.out"
  # Test faults (POST /admin/test/faults) for the shared scenarios; loopback only.
  EDRLINK_TEST_FAULTS=1 "$bin" --db "$work/svc.db" --listen 127.0.0.1:0 >"$work/svc.out" 2>"$work/svc.err" &
  SERVICE_PID=$!
  local url="" i
  for i in $(seq 1 300); do
    url="$(sed -n 's/^listening on \(http:\/\/[^ ]*\).*$/\1/p' "$work/svc.out" | head -n1)"
    [ -n "$url" ] && break
    if ! kill -0 "$SERVICE_PID" 2>/dev/null; then
      echo "edrlink-service exited early:" >&2; cat "$work/svc.err" >&2; return 1
    fi
    sleep 0.1
  done
  if [ -z "$url" ]; then echo "edrlink-service did not report its address" >&2; cat "$work/svc.err" >&2; return 1; fi
  export EDRLINK_TEST_SERVICE_URL="$url"
  echo "== edrlink-service (pid $SERVICE_PID) at $url" >&2
}

stop_service() {
  if [ -n "${SERVICE_PID:-}" ] && kill -0 "$SERVICE_PID" 2>/dev/null; then
    kill "$SERVICE_PID" 2>/dev/null || true
    wait "$SERVICE_PID" 2>/dev/null || true
  fi
  SERVICE_PID=""
}
