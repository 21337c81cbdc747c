#!/usr/bin/env bash
# TPC-H SF1 side by side: BasaltDB (through the Postgres wire protocol) and DuckDB and
# DataFusion in the same run, with the shared runner in ../shared/bench.
# Results (JSON + a merged table) go to target/bench/tpch-<timestamp>/.
#
#   benches/tpch.sh [--slices N] [--nodes N] [--runs N] [--queries 1,6] [--mpp] [--profile P]
#
# --mpp runs the distribution benchmark instead of one cluster: 1 node x 2 slices in one
# process vs `basalt leader` with 2 `basalt compute` processes x 1 slice, then the rows and
# bytes each query moved between nodes on the latter (benches/tpch_moved.py, which fails if
# the co-located lineitem-orders join moves rows).
# --profile picks the cargo profile of the basalt binary (default bench-lto; release builds
# faster). BASALT_BIN=path uses a binary as it is.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BENCH=${BASALT_SHARED:-$ROOT/../shared}/bench
DATA=${TPCH_DATA:-/tmp/bench/tpch-sf1}
SLICES=2; NODES=1; RUNS=3; QUERIES=""; MPP=0; PROFILE=bench-lto
while [ $# -gt 0 ]; do
  case "$1" in
    --slices) SLICES=$2; shift 2;;
    --nodes) NODES=$2; shift 2;;
    --runs) RUNS=$2; shift 2;;
    --queries) QUERIES=$2; shift 2;;
    --mpp) MPP=1; shift;;
    --profile) PROFILE=$2; shift 2;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
python3 -c "import duckdb, datafusion, psycopg2, tpchgen_cli" 2>/dev/null || \
  pip install -q tpchgen-cli duckdb 'datafusion>=55,<56' psycopg2-binary
[ -f "$DATA/csv/lineitem.csv" ] || tpchgen-cli csv -s 1 -o "$DATA/csv"
[ -f "$DATA/parquet/lineitem.parquet" ] || tpchgen-cli parquet -s 1 -o "$DATA/parquet"

. benches/common.sh
basalt_binary "$PROFILE"
OUT=target/bench/tpch-$(date +%Y%m%d-%H%M%S); mkdir -p "$OUT"
WORK=$(mktemp -d)
PIDS=()
cleanup() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null; rm -rf "$WORK"; }
trap cleanup EXIT
Q=(); [ -n "$QUERIES" ] && Q=(--queries "$QUERIES")

# Wait until a server answers on $1.
ready() {
  for _ in $(seq 100); do
    python3 -c "import psycopg2; psycopg2.connect(host='127.0.0.1', port=$1, user='basalt', dbname='dev').close()" \
      2>/dev/null && return 0
    sleep 0.2
  done
  echo "no server on port $1" >&2; exit 1
}

# Load and run the 22 queries on the server at port $2, results named $1.
basalt_run() {
  python3 "$BENCH/run_tpch.py" --engine pgwire --port "$2" --user basalt --db dev --load \
    --schema redshift --runs "$RUNS" "${Q[@]}" --json-out "$OUT/$1.json" | tee "$OUT/$1.txt"
}

serve() { # name port nodes slices
  "$BASALT_BIN" serve --data-dir "$WORK/$1" --port "$2" --nodes "$3" --slices "$4" \
    --log warn > "$OUT/$1.log" 2>&1 &
  PIDS+=($!)
  ready "$2"
}

stop_all() { for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; PIDS=(); }

NAMES=()
if [ "$MPP" = 1 ]; then
  serve one_process_1x2 55439 1 2
  basalt_run one_process_1x2 55439
  stop_all
  export BASALT_CLUSTER_SECRET=bench-$$
  "$BASALT_BIN" leader --data-dir "$WORK/leader" --port 55440 --nodes 2 --slices 1 \
    --internal-listen 127.0.0.1:55441 --log warn > "$OUT/leader.log" 2>&1 &
  PIDS+=($!)
  for i in 0 1; do
    "$BASALT_BIN" compute --leader 127.0.0.1:55441 --data-dir "$WORK/compute$i" --log warn \
      > "$OUT/compute$i.log" 2>&1 &
    PIDS+=($!)
  done
  ready 55440
  sleep 2 # both compute nodes registered (a query before fails with 58000)
  basalt_run processes_2x1 55440
  python3 benches/tpch_moved.py --port 55440 --queries-dir "$BENCH/tpch/queries" \
    --json-out "$OUT/moved.json" | tee "$OUT/moved.md" || echo "MOVED ROWS CHECK FAILED" | tee -a "$OUT/moved.md"
  stop_all
  NAMES=(one_process_1x2 processes_2x1)
else
  serve basalt 55439 "$NODES" "$SLICES"
  basalt_run basalt 55439
  stop_all
  NAMES=(basalt)
fi
python3 "$BENCH/run_tpch.py" --engine duckdb --load --runs "$RUNS" "${Q[@]}" \
  --json-out "$OUT/duckdb.json" | tee "$OUT/duckdb.txt"
python3 "$BENCH/run_tpch.py" --engine datafusion --runs "$RUNS" "${Q[@]}" \
  --json-out "$OUT/datafusion.json" | tee "$OUT/datafusion.txt"
FILES=(); for n in "${NAMES[@]}" duckdb datafusion; do FILES+=("$OUT/$n.json"); done
python3 "$BENCH/compare.py" "${FILES[@]}" > "$OUT/summary.md" || true
cat "$OUT/summary.md"
