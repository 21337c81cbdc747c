#!/usr/bin/env bash
# Loading and unloading side by side (issue 5): BasaltDB's COPY of TPC-H SF1 files from an
# S3-compatible server (s3s-fs on 127.0.0.1) as CSV, gzip CSV and Parquet, COPY FROM STDIN
# through the wire, and UNLOAD to Parquet; DuckDB's COPY of the same files (from local disk:
# its S3 extension cannot be downloaded here) and DataFusion's equivalent (the file written as
# sorted Parquet) in the same run. Results, in MB/s of the
# files' bytes, go to target/bench/load-<timestamp>/results.md.
#
#   benches/load.sh [--tables lineitem,orders] [--slices N] [--nodes N] [--runs N] [--profile P]
#
# --profile picks the cargo profile of the basalt binary (default release; bench-lto is the
# benchmark build). BASALT_BIN=path uses a binary as it is; S3S_BIN=path an s3s-fs binary.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DATA=${TPCH_DATA:-/tmp/bench/tpch-sf1}
TABLES=lineitem,orders; SLICES=2; NODES=1; RUNS=1; PROFILE=release
while [ $# -gt 0 ]; do
  case "$1" in
    --tables) TABLES=$2; shift 2;;
    --slices) SLICES=$2; shift 2;;
    --nodes) NODES=$2; shift 2;;
    --runs) RUNS=$2; shift 2;;
    --profile) PROFILE=$2; shift 2;;
    *) echo "unknown option $1" >&2; exit 2;;
  esac
done
python3 -c "import duckdb, datafusion, psycopg2, tpchgen_cli" 2>/dev/null || \
  pip install -q tpchgen-cli duckdb datafusion psycopg2-binary
[ -f "$DATA/csv/lineitem.csv" ] || tpchgen-cli csv -s 1 -o "$DATA/csv"
[ -f "$DATA/parquet/lineitem.parquet" ] || tpchgen-cli parquet -s 1 -o "$DATA/parquet"
mkdir -p "$DATA/csv-gz"
for t in ${TABLES//,/ }; do
  [ -f "$DATA/csv-gz/$t.csv.gz" ] || gzip -1 -c "$DATA/csv/$t.csv" > "$DATA/csv-gz/$t.csv.gz"
done

# The S3 server: s3s-fs, the crate the tests run in-process, as a binary of its own.
S3S_BIN=${S3S_BIN:-$HOME/.cache/basaltdb/s3s/bin/s3s-fs}
if [ ! -x "$S3S_BIN" ]; then
  cargo install s3s-fs@0.14.1 --features binary --locked --root "$HOME/.cache/basaltdb/s3s"
fi

. benches/common.sh
basalt_binary "$PROFILE"
OUT=target/bench/load-$(date +%Y%m%d-%H%M%S); mkdir -p "$OUT"
exec python3 benches/load.py --basalt "$BASALT_BIN" --s3s "$S3S_BIN" --data "$DATA" \
  --tables "$TABLES" --slices "$SLICES" --nodes "$NODES" --runs "$RUNS" --out "$OUT" \
  --schema "${BASALT_SHARED:-$ROOT/../shared}/bench/tpch/schema_redshift.sql"
