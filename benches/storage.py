#!/usr/bin/env python3
"""Storage benchmarks for issue 3: zone-map pruning, scan throughput against DuckDB, VACUUM.

Runs against a running `basalt serve` (see benches/storage.sh, which starts one on a temporary
data directory) and TPC-H SF1 data (csv/lineitem.csv to load, parquet/lineitem.parquet for DuckDB
and DataFusion). Prints markdown tables; with --json-out also writes the raw numbers.

  1. Pruning: `sum(l_extendedprice)` over a l_shipdate range holding ~1% of lineitem's rows on
     lineitem (COMPOUND SORTKEY (l_shipdate, l_orderkey)) right after the load and after
     `VACUUM SORT ONLY lineitem TO 100 PERCENT`, and on lineitem_unsorted (same DDL, no sort key,
     rows in l_orderkey order). Blocks read/skipped and rows_pre_filter come from STL_SCAN for
     pg_last_query_id(); time is the median of --runs runs after one warm-up. With --data-dir the
     segment files' own row-group zone maps are read too (how many blocks overlap the range).
  2. Scan throughput: `sum(l_extendedprice) where l_quantity < 25` (every row is read) on
     BasaltDB vs DuckDB (in-memory table loaded from the Parquet file, threads = --cores) and,
     if installed, DataFusion over the Parquet file (target_partitions = --cores).
  3. VACUUM: DELETE ONLY after deleting 20% of lineitem_unsorted; SORT ONLY of the freshly loaded
     lineitem (the same VACUUM as step 1's); query latency on a second connection while a
     VACUUM FULL re-sorts lineitem after 20% more rows were appended, against the same loop
     just before it.

"other CPU" columns: cores used by processes other than this script and the server during the
measurement (0 = quiet machine); timings taken while it is high are contended.
"""
import argparse
import datetime
import json
import os
import re
import statistics
import sys
import threading
import time

try:
    import psycopg2
except ImportError:
    sys.exit("storage.py needs psycopg2 (pip install psycopg2-binary)")
try:
    import duckdb
except ImportError:
    sys.exit("storage.py needs duckdb (pip install duckdb)")

HERE = os.path.dirname(os.path.abspath(__file__))
DEFAULT_SCHEMA = os.path.join(HERE, "..", "..", "shared", "bench", "tpch", "schema_redshift.sql")

PRUNE_SQL = ("select sum(l_extendedprice) from {t} "
             "where l_shipdate between date '{lo}' and date '{hi}'")
SCAN_SQL = "select sum(l_extendedprice) from {t} where l_quantity < 25"


def log(*a):
    print(*a, file=sys.stderr, flush=True)


# ----------------------------------------------------------------------------------------------
# CPU noise meter: cores busy with other work while we measure
# ----------------------------------------------------------------------------------------------
def _children():
    kids = {}
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    s = f.read()
                kids.setdefault(int(s[s.rfind(")") + 2:].split()[1]), []).append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return kids


def _tree(root):
    kids, out, stack = _children(), [], [root]
    while stack:
        p = stack.pop()
        out.append(p)
        stack.extend(kids.get(p, []))
    return out


class CpuMeter:
    def __init__(self, pids):
        self.pids = [p for p in pids if p]
        self.hz = os.sysconf("SC_CLK_TCK")

    @staticmethod
    def _machine():
        with open("/proc/stat") as f:
            v = [int(x) for x in f.readline().split()[1:]]
        return v[0] + v[1] + v[2] + v[5] + v[6] + (v[7] if len(v) > 7 else 0)

    def _own(self):
        tot, seen = 0, set()
        for r in self.pids:
            for p in _tree(r):
                if p in seen:
                    continue
                seen.add(p)
                try:
                    with open(f"/proc/{p}/stat") as f:
                        s = f.read()
                    fl = s[s.rfind(")") + 2:].split()
                    tot += int(fl[11]) + int(fl[12])
                except (OSError, ValueError, IndexError):
                    pass
        return tot

    def start(self):
        return (time.monotonic(), self._machine(), self._own())

    def other_cores(self, mark):
        t0, m0, o0 = mark
        dt = time.monotonic() - t0
        if dt <= 0:
            return 0.0
        other = (self._machine() - m0) - (self._own() - o0)
        return max(0.0, other / self.hz / dt)


# ----------------------------------------------------------------------------------------------
# BasaltDB connection helpers
# ----------------------------------------------------------------------------------------------
class Db:
    def __init__(self, a, name="main"):
        self.a = a
        self.name = name
        self.con = psycopg2.connect(host=a.host, port=a.port, user=a.user, dbname=a.db,
                                    connect_timeout=10)
        self.con.autocommit = True
        self.cur = self.con.cursor()

    def run(self, sql, timeout=None, fetch=True):
        """Run one statement; cancel it (and raise) if it takes longer than `timeout` s."""
        timeout = timeout or self.a.timeout
        timer = threading.Timer(timeout, self._cancel)
        timer.daemon = True
        timer.start()
        try:
            self.cur.execute(sql)
            if fetch and self.cur.description is not None:
                return self.cur.fetchall()
            return None
        except psycopg2.Error as e:
            msg = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
            raise RuntimeError(f"[{self.name}] {msg}\n  while running: {sql[:200]}") from None
        finally:
            timer.cancel()

    def _cancel(self):
        log(f"[{self.name}] statement exceeded {self.a.timeout}s; cancelling")
        try:
            self.con.cancel()
        except Exception as e:  # noqa: BLE001
            log(f"[{self.name}] cancel failed: {e}")

    def one(self, sql, timeout=None):
        rows = self.run(sql, timeout)
        return rows[0][0] if rows else None

    def timed(self, sql, timeout=None):
        t0 = time.perf_counter()
        self.run(sql, timeout)
        return time.perf_counter() - t0

    def last_scan(self, qid=None):
        """STL_SCAN rows of query `qid` (default: this session's previous query), summed over
        slices."""
        if qid is None:
            qid = self.one("select pg_last_query_id()")
        rows = self.run(
            "select slice, blocks_read, blocks_skipped, rows_pre_filter, rows, perm_table_name "
            f"from stl_scan where query = {int(qid)} order by slice")
        if not rows:
            raise RuntimeError(f"STL_SCAN has no rows for query {qid}")
        return {
            "query": qid,
            "per_slice": [dict(slice=r[0], blocks_read=r[1], blocks_skipped=r[2],
                               rows_pre_filter=r[3], rows=r[4]) for r in rows],
            "blocks_read": sum(r[1] for r in rows),
            "blocks_skipped": sum(r[2] for r in rows),
            "rows_pre_filter": sum(r[3] for r in rows),
            "rows": sum(r[4] for r in rows),
        }

    def close(self):
        try:
            self.con.close()
        except Exception:  # noqa: BLE001
            pass


def table_info(db, table):
    r = db.run(f"select size, unsorted, tbl_rows, estimated_visible_rows from svv_table_info "
               f"where \"table\" = '{table}'")
    if not r:
        raise RuntimeError(f"SVV_TABLE_INFO has no row for {table}")
    size, unsorted, rows, live = r[0]
    return dict(size_mb=int(size), unsorted=None if unsorted is None else float(unsorted),
                tbl_rows=int(rows), live_rows=int(live))


def last_vacuum(db, table):
    r = db.run("select vacuum_type, status, duration, rows_before_vacuum, reclaimed_rows, sortedrows "
               f"from sys_vacuum_history where table_name = '{table}' order by end_time desc limit 1")
    if not r:
        raise RuntimeError(f"SYS_VACUUM_HISTORY has no row for {table}")
    k, status, dur, before, reclaimed, sorted_rows = r[0]
    return dict(type=k, status=status, duration_s=(dur or 0) / 1e6, rows_before=before,
                reclaimed=reclaimed, sorted_rows=sorted_rows)


def server_time(db, qids):
    """Median of STL_QUERY endtime - starttime (execution after planning) over `qids`."""
    rows = db.run("select query, starttime, endtime from stl_query where query in ("
                  + ", ".join(str(int(q)) for q in qids) + ")")
    ds = [(e - s).total_seconds() for _, s, e in rows if s and e]
    return statistics.median(ds) if ds else None


def median_runs_logged(db, sql, runs, meter):
    """Like median_runs, and the server's own execution time per run from STL_QUERY."""
    db.run(sql)  # warm-up
    ts, qids, other = [], [], []
    for _ in range(runs):
        mark = meter.start()
        ts.append(db.timed(sql))
        other.append(meter.other_cores(mark))
        qids.append(db.one("select pg_last_query_id()"))
    return statistics.median(ts), ts, statistics.mean(other), server_time(db, qids), qids[-1]


def explain_scan_line(db, sql):
    try:
        rows = db.run("explain analyze " + sql)
    except RuntimeError as e:
        return f"(EXPLAIN ANALYZE failed: {e})"
    text = "\n".join(str(c) for r in rows for c in r if c is not None)
    lines = [ln.strip() for ln in text.splitlines() if "SliceScanExec" in ln]
    return " | ".join(lines) if lines else "(no SliceScanExec line)"


# ----------------------------------------------------------------------------------------------
# DDL and load
# ----------------------------------------------------------------------------------------------
def lineitem_ddl(schema_file):
    with open(schema_file) as f:
        text = f.read()
    m = re.search(r"CREATE TABLE lineitem\s*\(.*?;", text, re.S | re.I)
    if not m:
        raise SystemExit(f"no CREATE TABLE lineitem in {schema_file}")
    ddl = m.group(0)
    # Informational FOREIGN KEYs need the referenced tables; only lineitem is loaded here.
    ddl = re.sub(r"\n\s*FOREIGN KEY[^\n]*", "", ddl)
    ddl = re.sub(r",(\s*\))", r"\1", ddl)
    return ddl.rstrip(";")


def unsorted_ddl(ddl, name):
    out = re.sub(r"\s*(COMPOUND|INTERLEAVED)?\s*SORTKEY\s*\([^)]*\)", "", ddl, flags=re.I)
    out = re.sub(r"CREATE TABLE lineitem", f"CREATE TABLE {name}", out, flags=re.I)
    assert "SORTKEY" not in out.upper(), out
    return out


COPY_VARIANTS = [
    ("COPY {t} FROM STDIN WITH (FORMAT csv, HEADER true)", False),
    ("COPY {t} FROM STDIN CSV IGNOREHEADER 1", False),
    ("COPY {t} FROM STDIN WITH (FORMAT csv)", True),
]


def copy_csv(db, table, path):
    last = None
    for sql, strip in COPY_VARIANTS:
        with open(path, "rb") as f:
            if strip:
                f.readline()
            try:
                t0 = time.perf_counter()
                db.cur.copy_expert(sql.format(t=table), f, size=1 << 20)
                return time.perf_counter() - t0
            except psycopg2.Error as e:
                last = e
                db.run(f"truncate {table}", fetch=False)
    raise RuntimeError(f"COPY into {table} refused: {last}")


# ----------------------------------------------------------------------------------------------
# zone maps of the segment files themselves (optional, needs the server's data dir)
# ----------------------------------------------------------------------------------------------
def segment_zone_maps(data_dir, table, column, lo, hi):
    """Per slice: row groups of `table`'s live segments, and how many have [min, max] of
    `column` overlapping [lo, hi]. Reads catalog.json and the Parquet footers."""
    try:
        import pyarrow.parquet as pq
    except ImportError:
        return None
    cat_path = os.path.join(data_dir, "catalog", "catalog.json")
    try:
        with open(cat_path) as f:
            cat = json.load(f)
    except (OSError, ValueError) as e:
        log(f"zone maps: cannot read {cat_path}: {e}")
        return None

    body = cat.get("body", cat)
    if isinstance(body, str):  # {"format": ..., "crc32": ..., "body": "<catalog JSON>"}
        body = json.loads(body)
    metas = [t for t in body.get("tables", {}).values() if t.get("name") == table]
    if not metas:
        return None
    meta = metas[0]
    col = [c for c in meta["columns"] if c.get("name") == column]
    if not col:
        return None
    phys = f"c{col[0]['id']}"
    tid = meta["id"]
    files = {seg["file"] for segs in meta.get("data", {}).get("slices", {}).values()
             for seg in segs}
    lo_d, hi_d = datetime.date.fromisoformat(lo), datetime.date.fromisoformat(hi)
    per_slice = {}
    root = os.path.join(data_dir, "data")
    for node in sorted(os.listdir(root)):
        for sl in sorted(os.listdir(os.path.join(root, node))):
            d = os.path.join(root, node, sl, f"t{tid}")
            if not os.path.isdir(d):
                continue
            segs = rgs = hit = 0
            for fn in sorted(os.listdir(d)):
                if fn not in files:
                    continue
                md = pq.ParquetFile(os.path.join(d, fn)).metadata
                idx = [i for i in range(md.num_columns)
                       if md.schema.column(i).name == phys]
                if not idx:
                    continue
                segs += 1
                for g in range(md.num_row_groups):
                    rgs += 1
                    st = md.row_group(g).column(idx[0]).statistics
                    if st is None or not st.has_min_max or not (st.max < lo_d or st.min > hi_d):
                        hit += 1
            per_slice[sl] = dict(segments=segs, row_groups=rgs, overlapping=hit)
    return per_slice


# ----------------------------------------------------------------------------------------------
# the benchmark
# ----------------------------------------------------------------------------------------------
def pick_range(parquet, start, fraction):
    """The l_shipdate range [start, end] whose row count first reaches `fraction` of all rows."""
    con = duckdb.connect()
    total = con.execute(f"select count(*) from read_parquet('{parquet}')").fetchone()[0]
    days = con.execute(
        f"select l_shipdate, count(*) from read_parquet('{parquet}') "
        f"where l_shipdate >= date '{start}' group by 1 order by 1").fetchall()
    acc, end = 0, None
    for d, n in days:
        acc += n
        end = d
        if acc >= fraction * total:
            break
    con.close()
    return str(start), str(end), acc, total


def fmt_s(x):
    return f"{x * 1000:.1f} ms" if x < 1 else f"{x:.2f} s"


def pct(xs, p):
    xs = sorted(xs)
    if not xs:
        return float("nan")
    k = min(len(xs) - 1, max(0, int(round(p / 100 * (len(xs) - 1)))))
    return xs[k]


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=55450)
    ap.add_argument("--user", default="basalt")
    ap.add_argument("--db", default="dev")
    ap.add_argument("--tpch", default="/tmp/bench/tpch-sf1", help="dir with csv/ and parquet/")
    ap.add_argument("--schema-file", default=DEFAULT_SCHEMA)
    ap.add_argument("--data-dir", default="", help="the server's --data-dir (zone-map analysis)")
    ap.add_argument("--server-pid", type=int, default=0, help="for the other-CPU column")
    ap.add_argument("--cores", type=int, default=2, help="slices / DuckDB threads")
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--range-start", default="1995-03-01")
    ap.add_argument("--range-fraction", type=float, default=0.01)
    ap.add_argument("--baseline-seconds", type=float, default=15.0,
                    help="length of the latency loop without VACUUM")
    ap.add_argument("--timeout", type=float, default=600.0, help="per statement (s)")
    ap.add_argument("--skip-load", action="store_true", help="lineitem is already loaded")
    ap.add_argument("--json-out", default="")
    a = ap.parse_args()

    csv_path = os.path.join(a.tpch, "csv", "lineitem.csv")
    pq_path = os.path.join(a.tpch, "parquet", "lineitem.parquet")
    for p in (csv_path, pq_path, a.schema_file):
        if not os.path.exists(p):
            sys.exit(f"missing {p}")
    meter = CpuMeter([os.getpid(), a.server_pid])
    res = {"date": datetime.date.today().isoformat(), "cores": a.cores}
    t_all = time.perf_counter()

    db = Db(a)
    ddl = lineitem_ddl(a.schema_file)

    # ---- load ---------------------------------------------------------------------------------
    if not a.skip_load:
        for t in ("lineitem", "lineitem_unsorted", "lineitem_unsorted_copy"):
            db.run(f"drop table if exists {t}", fetch=False)
        db.run(ddl, fetch=False)
        log("loading lineitem (COPY FROM STDIN) ...")
        secs = copy_csv(db, "lineitem", csv_path)
        res["load_s"] = secs
        log(f"  {secs:.1f} s")
        db.run(unsorted_ddl(ddl, "lineitem_unsorted"), fetch=False)
        log("lineitem_unsorted: INSERT SELECT ... ORDER BY l_orderkey ...")
        t0 = time.perf_counter()
        db.run("insert into lineitem_unsorted select * from lineitem order by l_orderkey",
               fetch=False)
        res["insert_unsorted_s"] = time.perf_counter() - t0
    total_rows = db.one("select count(*) from lineitem")
    res["rows"] = total_rows

    # ---- 1. pruning ---------------------------------------------------------------------------
    lo, hi, in_range, pq_total = pick_range(pq_path, a.range_start, a.range_fraction)
    res["range"] = dict(lo=lo, hi=hi, rows=in_range, fraction=in_range / pq_total)
    log(f"range l_shipdate {lo}..{hi}: {in_range} rows = {100 * in_range / pq_total:.2f}%")
    prune = []

    def prune_case(label, table, lo=lo, hi=hi):
        sql = PRUNE_SQL.format(t=table, lo=lo, hi=hi)
        med, ts, other, srv, qid = median_runs_logged(db, sql, a.runs, meter)
        scan = db.last_scan(qid)
        info = table_info(db, table)
        zm = segment_zone_maps(a.data_dir, table, "l_shipdate", lo, hi) if a.data_dir else None
        c = dict(case=label, table=table, median_s=med, runs_s=ts, other_cpu=other, scan=scan,
                 server_s=srv, lo=lo, hi=hi,
                 unsorted=info["unsorted"], zone_maps=zm, explain=explain_scan_line(db, sql))
        total = scan["blocks_read"] + scan["blocks_skipped"]
        c["blocks_total"] = total
        c["pct_blocks"] = 100.0 * scan["blocks_read"] / total if total else float("nan")
        log(f"  {label}: {fmt_s(med)} (server {fmt_s(srv or 0)}) blocks {scan['blocks_read']}/{total} "
            f"({c['pct_blocks']:.1f}%) rows_pre_filter {scan['rows_pre_filter']} other {other:.2f}")
        if zm:
            log(f"    zone maps: {zm}")
        log(f"    {c['explain']}")
        prune.append(c)
        return c

    log("pruning ...")
    prune_case("sorted, after load", "lineitem")
    prune_case("unsorted copy (no sort key)", "lineitem_unsorted")

    # ---- 3b. VACUUM SORT ONLY of the freshly loaded lineitem ----------------------------------
    vac = {}
    before = table_info(db, "lineitem")
    log(f"VACUUM SORT ONLY lineitem TO 100 PERCENT (size {before['size_mb']} MB, "
        f"unsorted {before['unsorted']}%) ...")
    mark = meter.start()
    wall = db.timed("vacuum sort only lineitem to 100 percent")
    h = last_vacuum(db, "lineitem")
    after = table_info(db, "lineitem")
    vac["sort"] = dict(before=before, after=after, wall_s=wall, history=h,
                       other_cpu=meter.other_cores(mark),
                       mb_s=before["size_mb"] / h["duration_s"] if h["duration_s"] else None)
    log(f"  {h['duration_s']:.2f} s, {vac['sort']['mb_s']:.1f} MB/s, unsorted after {after['unsorted']}")
    prune_case("sorted, after VACUUM", "lineitem")
    prune_case("sorted, after VACUUM: empty range (floor)", "lineitem", "1900-01-01", "1900-01-31")

    # ---- 2. scan throughput -------------------------------------------------------------------
    log("scan throughput ...")
    scan_sql = SCAN_SQL.format(t="lineitem")
    b_med, b_ts, b_other, b_srv, b_qid = median_runs_logged(db, scan_sql, a.runs, meter)
    b_scan = db.last_scan(b_qid)
    b_val = db.one(scan_sql)
    dcon = duckdb.connect()
    dcon.execute(f"set threads = {a.cores}")
    dcon.execute(f"create table lineitem as select * from read_parquet('{pq_path}')")
    d_rows = dcon.execute("select count(*) from lineitem").fetchone()[0]

    def duck_q():
        t0 = time.perf_counter()
        v = dcon.execute(scan_sql).fetchone()[0]
        return time.perf_counter() - t0, v

    duck_q()
    mark = meter.start()
    d_runs = [duck_q() for _ in range(a.runs)]
    d_other = meter.other_cores(mark)
    d_med = statistics.median(t for t, _ in d_runs)
    d_val = d_runs[0][1]
    dcon.close()
    engines = [dict(engine="BasaltDB (2 slices)", rows=total_rows, median_s=b_med, runs_s=b_ts,
                    other_cpu=b_other, value=str(b_val), rows_pre_filter=b_scan["rows_pre_filter"],
                    server_s=b_srv),
               dict(engine=f"DuckDB {duckdb.__version__} (table, threads={a.cores})", rows=d_rows,
                    median_s=d_med, runs_s=[t for t, _ in d_runs], other_cpu=d_other,
                    value=str(d_val))]
    try:
        import datafusion
        cfg = datafusion.SessionConfig().with_target_partitions(a.cores)
        ctx = datafusion.SessionContext(cfg)
        ctx.register_parquet("lineitem", pq_path)

        def df_q():
            t0 = time.perf_counter()
            v = ctx.sql(scan_sql).to_pylist()
            return time.perf_counter() - t0, list(v[0].values())[0]

        df_q()
        mark = meter.start()
        f_runs = [df_q() for _ in range(a.runs)]
        engines.append(dict(engine=f"DataFusion {datafusion.__version__} (Parquet, "
                                   f"{a.cores} partitions)",
                            rows=pq_total, median_s=statistics.median(t for t, _ in f_runs),
                            runs_s=[t for t, _ in f_runs], other_cpu=meter.other_cores(mark),
                            value=str(f_runs[0][1])))
    except ImportError:
        log("  datafusion not installed; skipped")
    except Exception as e:  # noqa: BLE001
        log(f"  datafusion failed: {e}")
    for e in engines:
        e["rows_s_core"] = e["rows"] / e["median_s"] / a.cores
        log(f"  {e['engine']}: {fmt_s(e['median_s'])} {e['rows_s_core'] / 1e6:.1f} M rows/s/core "
            f"sum={e['value']} other {e['other_cpu']:.2f}")
    res["scan"] = engines
    if b_val is not None and d_val is not None and abs(float(b_val) - float(d_val)) > 0.01:
        log(f"  WARNING: sums differ: basalt {b_val} duckdb {d_val}")

    # ---- 3a. VACUUM DELETE ONLY ---------------------------------------------------------------
    log("DELETE 20% of lineitem_unsorted, VACUUM DELETE ONLY ...")
    db.run("delete from lineitem_unsorted where l_orderkey % 5 = 0", fetch=False)
    before = table_info(db, "lineitem_unsorted")
    mark = meter.start()
    wall = db.timed("vacuum delete only lineitem_unsorted")
    h = last_vacuum(db, "lineitem_unsorted")
    after = table_info(db, "lineitem_unsorted")
    vac["delete"] = dict(before=before, after=after, wall_s=wall, history=h,
                         other_cpu=meter.other_cores(mark),
                         mb_s=before["size_mb"] / h["duration_s"] if h["duration_s"] else None)
    log(f"  {h['duration_s']:.2f} s, {vac['delete']['mb_s']:.1f} MB/s, reclaimed {h['reclaimed']}")

    # ---- 3c. query latency during VACUUM FULL -------------------------------------------------
    log("append 20% unsorted rows to lineitem; latency loop without and during VACUUM ...")
    db.run("insert into lineitem select * from lineitem_unsorted where l_orderkey % 5 = 1",
           fetch=False)
    before = table_info(db, "lineitem")
    q = Db(a, "reader")
    loop_sqls = [("range (1%)", PRUNE_SQL.format(t="lineitem", lo=lo, hi=hi)),
                 ("filter+sum (all rows)", SCAN_SQL.format(t="lineitem"))]
    for _, s in loop_sqls:
        q.run(s)

    def latency_loop(stop, out):
        i = 0
        while not stop():
            name, s = loop_sqls[i % len(loop_sqls)]
            out.setdefault(name, []).append(q.timed(s))
            i += 1

    base = {}
    t_end = time.monotonic() + a.baseline_seconds
    mark = meter.start()
    latency_loop(lambda: time.monotonic() >= t_end, base)
    base_other = meter.other_cores(mark)

    during = {}
    done = threading.Event()
    err = []

    def vacuum():
        try:
            err.append(("wall", db.timed("vacuum full lineitem to 100 percent")))
        except Exception as e:  # noqa: BLE001
            err.append(("error", e))
        finally:
            done.set()

    vt = threading.Thread(target=vacuum, daemon=True)
    mark = meter.start()
    vt.start()
    latency_loop(done.is_set, during)
    vt.join()
    dur_other = meter.other_cores(mark)
    kind, val = err[0]
    if kind == "error":
        raise val
    q.close()
    h = last_vacuum(db, "lineitem")
    after = table_info(db, "lineitem")
    vac["full"] = dict(before=before, after=after, wall_s=val, history=h,
                       mb_s=before["size_mb"] / h["duration_s"] if h["duration_s"] else None)
    lat = []
    for name, _ in loop_sqls:
        b, d = base.get(name, []), during.get(name, [])
        lat.append(dict(query=name, base_n=len(b), base_med=statistics.median(b) if b else None,
                        base_p95=pct(b, 95), dur_n=len(d),
                        dur_med=statistics.median(d) if d else None, dur_p95=pct(d, 95),
                        base_other=base_other, dur_other=dur_other))
    res.update(prune=prune, vacuum=vac, latency=lat)
    log(f"  VACUUM FULL {h['duration_s']:.2f} s; latency {lat}")
    res["total_s"] = time.perf_counter() - t_all

    # ---- report -------------------------------------------------------------------------------
    P = print
    P(f"\n### TPC-H SF1 lineitem, {total_rows:,} rows, {a.cores} slices — {res['date']}\n")
    P(f"Range: `l_shipdate between '{lo}' and '{hi}'` = {in_range:,} rows "
      f"({100 * in_range / pq_total:.2f}% of lineitem).\n")
    P("#### 1. Pruning: `" + PRUNE_SQL.format(t="<table>", lo=lo, hi=hi) + "`\n")
    P("| table state | unsorted % | blocks read / total | % blocks read | rows_pre_filter | "
      "% rows decoded | median time (client) | median time (server, STL_QUERY) | other CPU |")
    P("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for c in prune:
        s = c["scan"]
        u = "n/a" if c["unsorted"] is None else f"{c['unsorted']:.0f}"
        P(f"| {c['case']} | {u} | "
          f"{s['blocks_read']} / {c['blocks_total']} | {c['pct_blocks']:.1f}% | "
          f"{s['rows_pre_filter']:,} | {100 * s['rows_pre_filter'] / total_rows:.2f}% | "
          f"{fmt_s(c['median_s'])} | {fmt_s(c['server_s']) if c['server_s'] else 'n/a'} | "
          f"{c['other_cpu']:.2f} |")
    uns = [c for c in prune if c["table"] == "lineitem_unsorted"][0]
    P()
    for c in prune:
        if c["table"] == "lineitem" and c["lo"] == lo:
            srv = (f", server time **{uns['server_s'] / c['server_s']:.1f}x**"
                   if uns["server_s"] and c["server_s"] else "")
            P(f"- unsorted / {c['case']}: client time **{uns['median_s'] / c['median_s']:.1f}x**"
              f"{srv}")
    P()
    if any(c["zone_maps"] for c in prune):
        P("Zone maps of the live segment files (l_shipdate min/max per row group):\n")
        P("| table state | slice | segments | row groups | row groups overlapping the range |")
        P("|---|---|---:|---:|---:|")
        for c in prune:
            if c["lo"] != lo:
                continue
            for sl, z in sorted((c["zone_maps"] or {}).items()):
                P(f"| {c['case']} | {sl} | {z['segments']} | {z['row_groups']} | {z['overlapping']} |")
        P()
    P(f"#### 2. Scan throughput: `{SCAN_SQL.format(t='lineitem')}`\n")
    P("| engine | median time | rows/s per core | vs BasaltDB | other CPU |")
    P("|---|---:|---:|---:|---:|")
    if engines[0].get("server_s"):
        e = engines[0]
        P(f"| BasaltDB, server execution only (STL_QUERY) | {fmt_s(e['server_s'])} | "
          f"{e['rows'] / e['server_s'] / a.cores / 1e6:.1f} M | "
          f"{e['median_s'] / e['server_s']:.2f}x | {e['other_cpu']:.2f} |")
    b = engines[0]["rows_s_core"]
    for e in engines:
        P(f"| {e['engine']} | {fmt_s(e['median_s'])} | {e['rows_s_core'] / 1e6:.1f} M | "
          f"{e['rows_s_core'] / b:.2f}x | {e['other_cpu']:.2f} |")
    P(f"\nBasaltDB / DuckDB rows/s per core: **{b / engines[1]['rows_s_core']:.2f}**\n")
    P("#### 3. VACUUM\n")
    P("| VACUUM | table | size before (MB) | rows before | rows reclaimed | unsorted % before → after "
      "| duration | MB/s | rows/s |")
    P("|---|---|---:|---:|---:|---:|---:|---:|---:|")
    for key, label, table in (("delete", "DELETE ONLY (20% deleted)", "lineitem_unsorted"),
                              ("sort", "SORT ONLY TO 100 PERCENT (after load)", "lineitem"),
                              ("full", "FULL TO 100 PERCENT (+20% appended)", "lineitem")):
        v = vac[key]
        h = v["history"]
        u0 = v["before"]["unsorted"]
        u1 = v["after"]["unsorted"]
        us = "n/a" if u0 is None else f"{u0:.0f} → {u1:.0f}"
        P(f"| {label} | {table} | {v['before']['size_mb']} | {h['rows_before']:,} | "
          f"{h['reclaimed'] or 0:,} | {us} | {h['duration_s']:.2f} s | {v['mb_s']:.1f} | "
          f"{h['rows_before'] / h['duration_s'] / 1e6:.2f} M |")
    P("\nQuery latency on a second connection, the two queries alternating: "
      f"{a.baseline_seconds:.0f} s without VACUUM, then while `VACUUM FULL lineitem TO 100 PERCENT` "
      "runs:\n")
    P("| query | runs without | median | p95 | runs during | median | p95 | median ratio |")
    P("|---|---:|---:|---:|---:|---:|---:|---:|")
    for l in lat:
        ratio = l["dur_med"] / l["base_med"] if l["dur_med"] and l["base_med"] else float("nan")
        P(f"| {l['query']} | {l['base_n']} | {fmt_s(l['base_med'])} | {fmt_s(l['base_p95'])} | "
          f"{l['dur_n']} | {fmt_s(l['dur_med'])} | {fmt_s(l['dur_p95'])} | {ratio:.1f}x |")
    P(f"\nother CPU: {lat[0]['base_other']:.2f} cores without, {lat[0]['dur_other']:.2f} during. "
      f"Total run {res['total_s']:.0f} s.")
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump(res, f, indent=1, default=str)
    db.close()


if __name__ == "__main__":
    try:
        main()
    except RuntimeError as e:
        sys.exit(f"storage.py: {e}")
