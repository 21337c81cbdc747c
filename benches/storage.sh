#!/usr/bin/env bash
# Storage benchmarks (issue 3): zone-map pruning, scan throughput against DuckDB, VACUUM.
# Builds nothing: give it a basalt binary. Starts `basalt serve` on a temporary data directory,
# runs benches/storage.py against it (loads TPC-H SF1 lineitem itself), stops the server and
# removes the directory. The markdown tables go to stdout; progress to stderr.
#
#   benches/storage.sh BINARY [PORT] [-- storage.py options]
#   e.g. benches/storage.sh target/release/basalt 55450 -- --runs 5 --json-out /tmp/storage.json
# Env: TPCH_DATA (default /tmp/bench/tpch-sf1, with csv/ and parquet/), SLICES (default 2),
#      STORAGE_TIMEOUT (whole run, seconds; default 1800),
#      BENCH=storage (default: pruning, scan, VACUUM) or encodings (per-encoding ratios,
#      benches/encodings.py).
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
BIN=${1:?usage: benches/storage.sh BINARY [PORT] [-- storage.py options]}
shift
PORT=55450
if [ $# -gt 0 ] && [ "$1" != "--" ]; then PORT=$1; shift; fi
[ "${1:-}" = "--" ] && shift
DATA=${TPCH_DATA:-/tmp/bench/tpch-sf1}
SLICES=${SLICES:-2}
[ -x "$BIN" ] || { echo "storage.sh: $BIN is not an executable" >&2; exit 2; }
[ -f "$DATA/csv/lineitem.csv" ] && [ -f "$DATA/parquet/lineitem.parquet" ] || {
  echo "storage.sh: need $DATA/csv/lineitem.csv and $DATA/parquet/lineitem.parquet" \
       "(tpchgen-cli csv|parquet -s 1 -o ...)" >&2; exit 2; }
if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
  echo "storage.sh: port $PORT is already in use" >&2; exit 2
fi

DIR=$(mktemp -d /tmp/basalt-storage-bench.XXXXXX)
LOG="$DIR.log"
"$BIN" serve --data-dir "$DIR" --port "$PORT" --slices "$SLICES" --log warn >"$LOG" 2>&1 &
PID=$!
cleanup() {
  kill "$PID" 2>/dev/null && wait "$PID" 2>/dev/null || true
  rm -rf "$DIR"
}
trap cleanup EXIT
for _ in $(seq 1 100); do
  (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null && break
  kill -0 "$PID" 2>/dev/null || { echo "storage.sh: server exited; log:" >&2; cat "$LOG" >&2; exit 1; }
  sleep 0.2
done
set +e
SCRIPT=$HERE/${BENCH:-storage}.py
[ -f "$SCRIPT" ] || { echo "storage.sh: no benchmark $SCRIPT" >&2; exit 2; }
timeout "${STORAGE_TIMEOUT:-1800}" python3 "$SCRIPT" --port "$PORT" --data-dir "$DIR" \
  --server-pid "$PID" --cores "$SLICES" --tpch "$DATA" "$@"
RC=$?
set -e
if [ $RC -ne 0 ]; then
  echo "storage.sh: $(basename "$SCRIPT") failed ($RC); server log $LOG:" >&2
  tail -20 "$LOG" >&2
else
  rm -f "$LOG"
fi
exit $RC
