#!/usr/bin/env python3
"""COPY and UNLOAD throughput, BasaltDB, DuckDB and DataFusion side by side (run by
benches/load.sh).

For each table: BasaltDB loads it into an empty table (the Redshift DDL: sort key, dist key,
ENCODE AUTO, and the ANALYZE after a first load are all in the time) from the S3 server as
CSV, gzip CSV and Parquet, from local disk as CSV, and through COPY FROM STDIN (psycopg2's
copy_expert, 1 MiB writes); DuckDB loads the same local files into a table of the Postgres
DDL. DataFusion (the Python package of the version BasaltDB builds on) has no storage of its
own: it does a COPY's work by reading the local file and writing it as zstd Parquet sorted by
the table's sort key (decode, sort, encode, write). Then all three write lineitem to Parquet
(UNLOAD to the S3 server and to local disk; DuckDB's COPY TO; DataFusion's COPY TO from a table in memory, with
Snappy as UNLOAD's). Rates are MB/s (10^6 bytes) of the file read or written.
"""

import argparse
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time

import datafusion
import duckdb
import psycopg2

ACCESS_KEY = "AKIABASALTBENCH"
SECRET_KEY = "basalt-bench-secret"
BUCKET = "bench"


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port, proc, what):
    for _ in range(300):
        if proc.poll() is not None:
            sys.exit(f"{what} exited with {proc.returncode}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            time.sleep(0.1)
    sys.exit(f"{what} did not start")


def table_ddl(schema_sql, table):
    """The CREATE TABLE statement of one table in a schema file."""
    for stmt in schema_sql.split(";"):
        body = "\n".join(l for l in stmt.splitlines() if not l.strip().startswith("--"))
        if re.search(rf"CREATE TABLE\s+{table}\s*\(", body, re.I):
            return body.strip()
    sys.exit(f"no CREATE TABLE {table}")


def without_keys(ddl):
    """A CREATE TABLE without PRIMARY KEY: DuckDB enforces keys (an index to build while
    loading), Redshift's are informational."""
    lines = [l for l in ddl.splitlines() if not l.strip().upper().startswith("PRIMARY KEY")]
    text = "\n".join(lines)
    return re.sub(r",(\s*\))", r"\1", text)


def sort_key(redshift_ddl):
    """The SORTKEY columns of a Redshift CREATE TABLE, as an ORDER BY list."""
    m = re.search(r"SORTKEY\s*\(([^)]*)\)", redshift_ddl, re.I)
    return m.group(1).strip() if m else None


def datafusion_columns(pg_ddl):
    """The column list of a Postgres CREATE TABLE, for DataFusion's CREATE EXTERNAL TABLE."""
    body = pg_ddl[pg_ddl.index("(") + 1 : pg_ddl.rindex(")")]
    cols = [l.strip().rstrip(",") for l in body.splitlines()]
    return ", ".join(c for c in cols if c and not c.upper().startswith("PRIMARY KEY"))


def upload(endpoint, files):
    """Put (bucket key, local path) pairs on the S3 server that are not there yet. Through
    the S3 protocol, so the server keeps each object's ETag (s3s-fs computes a missing one on
    every GET)."""
    try:
        import boto3
    except ImportError:
        subprocess.run([sys.executable, "-m", "pip", "install", "-q", "boto3"], check=True)
        import boto3
    s3 = boto3.client(
        "s3",
        endpoint_url=endpoint,
        aws_access_key_id=ACCESS_KEY,
        aws_secret_access_key=SECRET_KEY,
        region_name="us-east-1",
    )
    try:
        s3.create_bucket(Bucket=BUCKET)
    except s3.exceptions.BucketAlreadyOwnedByYou:
        pass
    except Exception as e:  # an existing bucket on other servers
        if "BucketAlready" not in str(e):
            raise
    for key, path in files:
        try:
            head = s3.head_object(Bucket=BUCKET, Key=key)
            if head["ContentLength"] == os.path.getsize(path):
                continue
        except Exception:
            pass
        print(f"  uploading {key}", flush=True)
        s3.upload_file(path, BUCKET, key)


def mb(n):
    return n / 1e6


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--basalt", required=True)
    ap.add_argument("--s3s", required=True)
    ap.add_argument("--data", required=True)
    ap.add_argument("--tables", default="lineitem,orders")
    ap.add_argument("--slices", default="2")
    ap.add_argument("--nodes", default="1")
    ap.add_argument("--runs", type=int, default=1)
    ap.add_argument("--out", required=True)
    ap.add_argument("--schema", required=True)
    a = ap.parse_args()
    tables = a.tables.split(",")
    redshift_schema = open(a.schema).read()
    pg_schema = open(a.schema.replace("schema_redshift", "schema_postgres")).read()
    procs = []
    work = tempfile.mkdtemp(prefix="basalt-load-")
    try:
        # The S3 server keeps its objects between runs, beside the data.
        s3_root = os.path.join(a.data, "s3s-root")
        os.makedirs(s3_root, exist_ok=True)
        s3_port = free_port()
        s3 = subprocess.Popen(
            [a.s3s, "--host", "127.0.0.1", "--port", str(s3_port),
             "--access-key", ACCESS_KEY, "--secret-key", SECRET_KEY, s3_root],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        procs.append(s3)
        wait_port(s3_port, s3, "s3s-fs")
        endpoint = f"http://127.0.0.1:{s3_port}"
        files = {}
        for t in tables:
            files[(t, "csv")] = os.path.join(a.data, "csv", f"{t}.csv")
            files[(t, "csv.gz")] = os.path.join(a.data, "csv-gz", f"{t}.csv.gz")
            files[(t, "parquet")] = os.path.join(a.data, "parquet", f"{t}.parquet")
        upload(endpoint, [(f"{kind}/{t}.{kind}", p) for (t, kind), p in files.items()])

        port = free_port()
        env = dict(os.environ, AWS_ENDPOINT_URL=endpoint, AWS_ACCESS_KEY_ID=ACCESS_KEY,
                   AWS_SECRET_ACCESS_KEY=SECRET_KEY, AWS_REGION="us-east-1")
        basalt = subprocess.Popen(
            [a.basalt, "serve", "--data-dir", os.path.join(work, "basalt"), "--port", str(port),
             "--nodes", a.nodes, "--slices", a.slices, "--log", "warn"],
            env=env, stdout=subprocess.DEVNULL, stderr=open(os.path.join(a.out, "basalt.log"), "w"))
        procs.append(basalt)
        wait_port(port, basalt, "basalt")
        conn = psycopg2.connect(host="127.0.0.1", port=port, user="basalt", dbname="dev")
        conn.autocommit = True
        cur = conn.cursor()
        duck = duckdb.connect(os.path.join(work, "duck.db"))
        fusion = datafusion.SessionContext(
            datafusion.SessionConfig().with_target_partitions(os.cpu_count() or 2))

        # (what, bytes, basalt s, duckdb s, datafusion s, duckdb's bytes, datafusion's bytes)
        rows = []

        def basalt_load(t, sql=None, stdin=None):
            best = None
            for _ in range(a.runs):
                cur.execute(f"DROP TABLE IF EXISTS {t}")
                cur.execute(table_ddl(redshift_schema, t))
                start = time.perf_counter()
                if stdin:
                    with open(stdin, "rb") as f:
                        cur.copy_expert(f"COPY {t} FROM STDIN CSV HEADER", f, size=1 << 20)
                else:
                    cur.execute(sql)
                took = time.perf_counter() - start
                best = took if best is None else min(best, took)
            return best

        def duck_load(t, path, opts):
            best = None
            for _ in range(a.runs):
                duck.execute(f"DROP TABLE IF EXISTS {t}")
                duck.execute(without_keys(table_ddl(pg_schema, t)))
                start = time.perf_counter()
                duck.execute(f"COPY {t} FROM '{path}' ({opts})")
                took = time.perf_counter() - start
                best = took if best is None else min(best, took)
            return best

        def fusion_run(sql, out_dir):
            best = None
            for _ in range(a.runs):
                shutil.rmtree(out_dir, ignore_errors=True)
                os.makedirs(out_dir)
                start = time.perf_counter()
                fusion.sql(sql).collect()
                took = time.perf_counter() - start
                best = took if best is None else min(best, took)
            shutil.rmtree(out_dir, ignore_errors=True)
            return best

        def fusion_load(t, source):
            """DataFusion doing a COPY's work: `source` written as sorted zstd Parquet."""
            order = sort_key(table_ddl(redshift_schema, t))
            order_by = f" ORDER BY {order}" if order else ""
            out_dir = os.path.join(work, "fusion-load")
            return fusion_run(
                f"COPY (SELECT * FROM {source}{order_by}) TO '{out_dir}/' STORED AS PARQUET "
                "OPTIONS ('format.compression' 'zstd(1)')", out_dir)

        for t in tables:
            csv, gz, pq = files[(t, "csv")], files[(t, "csv.gz")], files[(t, "parquet")]
            duck_csv = duck_load(t, csv, "FORMAT csv, HEADER")
            duck_gz = duck_load(t, gz, "FORMAT csv, HEADER, COMPRESSION gzip")
            duck_pq = duck_load(t, pq, "FORMAT parquet")
            columns = datafusion_columns(table_ddl(pg_schema, t))
            for name, path, extra in [(f"{t}_csv", csv, ""), (f"{t}_gz", gz, ", 'format.compression' 'gzip'")]:
                fusion.sql(f"CREATE EXTERNAL TABLE {name} ({columns}) STORED AS CSV LOCATION '{path}' "
                           f"OPTIONS ('format.has_header' 'true'{extra})").collect()
            fusion.register_parquet(f"{t}_parquet", pq)
            fusion_csv, fusion_gz, fusion_pq = (
                fusion_load(t, f"{t}_{kind}") for kind in ("csv", "gz", "parquet"))
            cases = [
                (f"{t} CSV from S3", csv, f"COPY {t} FROM 's3://{BUCKET}/csv/{t}.csv' CSV IGNOREHEADER 1", None, duck_csv, fusion_csv),
                (f"{t} gzip CSV from S3", gz, f"COPY {t} FROM 's3://{BUCKET}/csv.gz/{t}.csv.gz' CSV GZIP IGNOREHEADER 1", None, duck_gz, fusion_gz),
                (f"{t} Parquet from S3", pq, f"COPY {t} FROM 's3://{BUCKET}/parquet/{t}.parquet' FORMAT AS PARQUET", None, duck_pq, fusion_pq),
                (f"{t} CSV from local disk", csv, f"COPY {t} FROM '{csv}' CSV IGNOREHEADER 1", None, duck_csv, fusion_csv),
                (f"{t} Parquet from local disk", pq, f"COPY {t} FROM '{pq}' FORMAT AS PARQUET", None, duck_pq, fusion_pq),
                (f"{t} CSV through COPY FROM STDIN", csv, None, csv, duck_csv, fusion_csv),
            ]
            for what, path, sql, stdin, duck_s, fusion_s in cases:
                print(f"  {what}", flush=True)
                took = basalt_load(t, sql, stdin)
                size = os.path.getsize(path)
                rows.append((what, size, took, duck_s, fusion_s, size, size))

        if "lineitem" in tables:
            # The last load left lineitem in both engines.
            out_dir = os.path.join(work, "duck-unload")
            os.makedirs(out_dir)
            start = time.perf_counter()
            duck.execute(f"COPY lineitem TO '{out_dir}/lineitem.parquet' (FORMAT parquet)")
            duck_s = time.perf_counter() - start
            duck_bytes = os.path.getsize(f"{out_dir}/lineitem.parquet")
            fusion.sql("CREATE TABLE lineitem_mem AS SELECT * FROM lineitem_parquet").collect()
            fusion_dir = os.path.join(work, "fusion-unload")
            fusion_sql = (f"COPY (SELECT * FROM lineitem_mem) TO '{fusion_dir}/' STORED AS PARQUET "
                          "OPTIONS ('format.compression' 'snappy')")
            fusion_s = fusion_run(fusion_sql, fusion_dir)
            # Its bytes: the run again, kept.
            os.makedirs(fusion_dir)
            fusion.sql(fusion_sql).collect()
            fusion_bytes = sum(os.path.getsize(os.path.join(fusion_dir, f))
                               for f in os.listdir(fusion_dir))
            local = os.path.join(work, "basalt-unload")
            for what, prefix in [("S3", f"s3://{BUCKET}/unload/lineitem_"),
                                 ("local disk", f"{local}/lineitem_")]:
                start = time.perf_counter()
                cur.execute(f"UNLOAD ('select * from lineitem') TO '{prefix}' FORMAT PARQUET CLEANPATH")
                took = time.perf_counter() - start
                cur.execute("select sum(transfer_size) from stl_unload_log "
                            "where query = (select max(query) from stl_unload_log)")
                written = int(cur.fetchone()[0])
                rows.append((f"UNLOAD lineitem to Parquet on {what} (DuckDB, DataFusion: local disk)",
                             written, took, duck_s, fusion_s, duck_bytes, fusion_bytes))

        lines = [
            f"BasaltDB `serve --nodes {a.nodes} --slices {a.slices}` ({os.path.basename(os.path.dirname(a.basalt))} build), "
            f"DuckDB {duckdb.__version__}, DataFusion {datafusion.__version__}; best of {a.runs}; "
            "MB = 10^6 bytes of the file (for UNLOAD, each engine's own file: BasaltDB's is "
            "STL_UNLOAD_LOG's transfer_size); ratio = the other engine's time / BasaltDB's.",
            "",
            "| load | file MB | BasaltDB s | BasaltDB MB/s | DuckDB s | DuckDB MB/s | ratio "
            "| DataFusion s | DataFusion MB/s | ratio |",
            "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
        ]
        for what, size, b, d, f, dsize, fsize in rows:
            cells = [f"{b:.2f}", f"{mb(size) / b:.0f}"]
            for other, osize in ((d, dsize), (f, fsize)):
                cells += [f"{other:.2f}", f"{mb(osize) / other:.0f}", f"{other / b:.2f}x"]
            lines.append(f"| {what} | {mb(size):.1f} | " + " | ".join(cells) + " |")
        text = "\n".join(lines) + "\n"
        open(os.path.join(a.out, "results.md"), "w").write(text)
        print(text)
    finally:
        for p in procs:
            p.terminate()
        for p in procs:
            p.wait()
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
