#!/usr/bin/env python3
"""Per-encoding compression ratios (issue 3): how much each column ENCODE saves on TPC-H data.

Runs against a running `basalt serve` (see benches/storage.sh, `BENCH=encodings`). Loads the
first --rows rows of TPC-H SF1 lineitem (csv/lineitem.csv, in l_orderkey order, as generated)
into one table per encoding: every column whose type the encoding accepts gets it (the server
decides: a column it refuses stays RAW and is left out of that encoding's figures). The sizes
come from STV_BLOCKLIST.bytes (the compressed bytes of each column's blocks), summed per
column over all slices. One more table is ENCODE AUTO: its choice per column is shown with its
size.

Ratios are against RAW (the same column stored plain, uncompressed) and against the column's
bytes in the CSV text (its values plus one delimiter each). Prints a markdown table; with
--json-out also writes the raw numbers.
"""
import argparse
import csv
import datetime
import json
import os
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from storage import DEFAULT_SCHEMA, Db, copy_csv, lineitem_ddl, log, unsorted_ddl  # noqa: E402

ENCODINGS = ["RAW", "AZ64", "BYTEDICT", "DELTA", "DELTA32K", "LZO", "MOSTLY8", "MOSTLY16",
             "MOSTLY32", "RUNLENGTH", "TEXT255", "TEXT32K", "ZSTD"]


def columns_of(ddl):
    """(name, type) of each column of a CREATE TABLE, without its ENCODE/NOT NULL."""
    body = ddl[ddl.index("(") + 1:ddl.rindex(")")]
    parts, depth, cur = [], 0, ""
    for ch in body:  # split on top-level commas only: DECIMAL(15,2) is one type
        depth += (ch == "(") - (ch == ")")
        if ch == "," and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    out = []
    for line in parts:
        words = line.split()
        if not words or words[0].upper() in ("PRIMARY", "FOREIGN", "UNIQUE"):
            continue
        typ = []
        for w in words[1:]:
            if w.upper() in ("NOT", "NULL", "ENCODE", "DEFAULT"):
                break
            typ.append(w)
        out.append((words[0], " ".join(typ)))
    return out


def sample_csv(src, rows):
    """The header and the first `rows` rows of `src` in a temporary file; the CSV bytes per
    column (value + one delimiter)."""
    tmp = tempfile.NamedTemporaryFile("w", suffix=".csv", delete=False, newline="")
    sizes = None
    with open(src, newline="") as f:
        r = csv.reader(f)
        w = csv.writer(tmp, lineterminator="\n")
        header = next(r)
        w.writerow(header)
        sizes = [0] * len(header)
        for i, row in enumerate(r):
            if i >= rows:
                break
            w.writerow(row)
            for j, v in enumerate(row):
                sizes[j] += len(v.encode()) + 1
    tmp.close()
    return tmp.name, dict(zip(header, sizes))


def column_bytes(db, table):
    rows = db.run(
        "select b.col, sum(b.bytes), sum(b.num_values) from stv_blocklist b "
        f"join svv_table_info t on b.tbl = t.table_id where t.\"table\" = '{table}' "
        "group by b.col order by b.col")
    return {int(c): int(n) for c, n, _ in rows}


def main():
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=55450)
    ap.add_argument("--user", default="basalt")
    ap.add_argument("--db", default="dev")
    ap.add_argument("--tpch", default="/tmp/bench/tpch-sf1", help="dir with csv/")
    ap.add_argument("--schema-file", default=DEFAULT_SCHEMA)
    ap.add_argument("--rows", type=int, default=1_000_000, help="lineitem rows to load")
    ap.add_argument("--timeout", type=float, default=600.0, help="per statement (s)")
    ap.add_argument("--json-out", default="")
    # Accepted for storage.sh's sake; unused here.
    ap.add_argument("--data-dir", default="")
    ap.add_argument("--server-pid", type=int, default=0)
    ap.add_argument("--cores", type=int, default=2)
    a = ap.parse_args()

    db = Db(a)
    base = unsorted_ddl(lineitem_ddl(a.schema_file), "enc_base")
    cols = columns_of(base)
    sample, csv_bytes = sample_csv(os.path.join(a.tpch, "csv", "lineitem.csv"), a.rows)
    t_all = time.perf_counter()
    try:
        db.run("drop table if exists enc_base", fetch=False)
        db.run(base, fetch=False)
        log(f"loading {a.rows:,} lineitem rows ...")
        copy_csv(db, "enc_base", sample)
    finally:
        os.unlink(sample)
    n = db.one("select count(*) from enc_base")

    sizes = {}  # encoding -> {column name: bytes}, only the columns that took the encoding
    for enc in ENCODINGS + ["AUTO"]:
        t = f"enc_{enc.lower()}"
        db.run(f"drop table if exists {t}", fetch=False)
        accepted = []
        for name, typ in cols:
            try:
                db.run(f"create table enc_probe ({name} {typ} encode {enc})", fetch=False)
                db.run("drop table enc_probe", fetch=False)
                accepted.append(name)
            except RuntimeError:
                pass
        spec = ", ".join(f"{c} {ty} encode {enc if c in accepted else 'raw'}" for c, ty in cols)
        db.run(f"create table {t} ({spec}) diststyle even", fetch=False)
        db.run(f"insert into {t} select * from enc_base order by l_orderkey, l_linenumber",
               fetch=False)
        by_col = column_bytes(db, t)
        sizes[enc] = {name: by_col.get(i, 0) for i, (name, _) in enumerate(cols)
                      if name in accepted}
        log(f"  {enc}: {len(accepted)} columns, {sum(sizes[enc].values()):,} bytes")
    chosen = dict(db.run("select \"column\", encoding from pg_table_def "
                         "where tablename = 'enc_auto'"))
    for t in ["enc_base"] + [f"enc_{e.lower()}" for e in ENCODINGS + ["AUTO"]]:
        db.run(f"drop table if exists {t}", fetch=False)
    db.close()

    raw = sizes["RAW"]
    res = dict(date=datetime.date.today().isoformat(), rows=n, columns=cols, csv_bytes=csv_bytes,
               sizes=sizes, auto=chosen, total_s=time.perf_counter() - t_all)
    P = print
    P(f"\n### Per-encoding compression — first {n:,} rows of TPC-H SF1 lineitem "
      f"({res['date']})\n")
    P("Each cell: RAW bytes / that encoding's bytes for the column (higher is smaller on "
      "disk); `–` where the encoding does not apply to the type. Last columns: ENCODE AUTO's "
      "choice, and the CSV text's bytes / RAW and / AUTO.\n")
    P("| column | type | " + " | ".join(ENCODINGS[1:]) + " | AUTO chose | CSV/RAW | CSV/AUTO |")
    P("|---|---|" + "---:|" * (len(ENCODINGS) - 1) + "---|---:|---:|")
    for name, typ in cols:
        cells = []
        for enc in ENCODINGS[1:]:
            b = sizes[enc].get(name)
            cells.append("–" if not b else f"{raw[name] / b:.2f}")
        auto = sizes["AUTO"].get(name)
        tail = (f" | {chosen.get(name, '?')} | {csv_bytes[name] / raw[name]:.2f} | "
                f"{csv_bytes[name] / auto:.2f} |" if auto else " | ? | | |")
        P(f"| {name} | {typ.lower()} | " + " | ".join(cells) + tail)
    totals = []
    for enc in ENCODINGS[1:]:
        s = sizes[enc]
        totals.append(f"{sum(raw[c] for c in s) / sum(s.values()):.2f}" if s else "–")
    all_csv = sum(csv_bytes[c] for c, _ in cols)
    P("| **all columns it applies to** | | " + " | ".join(totals) +
      f" | | {all_csv / sum(raw.values()):.2f} | "
      f"{all_csv / sum(sizes['AUTO'].values()):.2f} |")
    P(f"\nRAW: {sum(raw.values()):,} bytes; AUTO: {sum(sizes['AUTO'].values()):,} bytes; "
      f"CSV: {all_csv:,} bytes. Run took {res['total_s']:.0f} s.")
    if a.json_out:
        with open(a.json_out, "w") as f:
            json.dump(res, f, indent=1)


if __name__ == "__main__":
    try:
        main()
    except RuntimeError as e:
        sys.exit(f"encodings.py: {e}")
