#!/usr/bin/env bash
# TPC-H SF1 side by side: BasaltDB (through the Postgres wire protocol, release build) and
# DuckDB and DataFusion in the same run, with the shared runner in ../shared/bench.
# Results (JSON + a merged table) go to target/bench/tpch-<timestamp>/.
#
#   benches/tpch.sh [--slices N] [--nodes N] [--runs N] [--queries 1,6]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BENCH=${BASALT_SHARED:-$ROOT/../shared}/bench
DATA=${TPCH_DATA:-/tmp/bench/tpch-sf1}
SLICES=2; NODES=1; RUNS=3; QUERIES=""
while [ $# -gt 0 ]; do
  case "$1" in
    --slices) SLICES=$2; shift 2;;
    --nodes) NODES=$2; shift 2;;
    --runs) RUNS=$2; shift 2;;
    --queries) QUERIES=$2; shift 2;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
python3 -c "import duckdb, datafusion, psycopg2, tpchgen_cli" 2>/dev/null || \
  pip install -q tpchgen-cli duckdb 'datafusion>=55,<56' psycopg2-binary
[ -f "$DATA/csv/lineitem.csv" ] || tpchgen-cli csv -s 1 -o "$DATA/csv"
[ -f "$DATA/parquet/lineitem.parquet" ] || tpchgen-cli parquet -s 1 -o "$DATA/parquet"

cargo build --profile bench-lto --bin basalt
OUT=target/bench/tpch-$(date +%Y%m%d-%H%M%S); mkdir -p "$OUT"
PORT=55439
DIR=$(mktemp -d)
target/bench-lto/basalt serve --data-dir "$DIR" --port $PORT --slices "$SLICES" --nodes "$NODES" \
  --log warn > "$OUT/server.log" 2>&1 &
PID=$!
trap 'kill $PID 2>/dev/null; rm -rf "$DIR"' EXIT
sleep 2
Q=(); [ -n "$QUERIES" ] && Q=(--queries "$QUERIES")
python3 "$BENCH/run_tpch.py" --engine pgwire --port $PORT --user basalt --db dev --load \
  --schema redshift --runs "$RUNS" "${Q[@]}" --json-out "$OUT/basalt.json" | tee "$OUT/basalt.txt"
python3 "$BENCH/run_tpch.py" --engine duckdb --load --runs "$RUNS" "${Q[@]}" \
  --json-out "$OUT/duckdb.json" | tee "$OUT/duckdb.txt"
python3 "$BENCH/run_tpch.py" --engine datafusion --runs "$RUNS" "${Q[@]}" \
  --json-out "$OUT/datafusion.json" | tee "$OUT/datafusion.txt"
python3 "$BENCH/compare.py" "$OUT"/*.json > "$OUT/summary.md" || true
cat "$OUT/summary.md"
