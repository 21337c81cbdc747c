#!/usr/bin/env python3
"""Rows and bytes each TPC-H query moves between nodes, from STL_DIST / STL_BCAST / STL_RETURN.

    python3 benches/tpch_moved.py --port 5439 [--queries-dir DIR] [--json-out FILE]

Runs each query once through the wire (psycopg2), then reads what its network steps received:
redistributed (dist), broadcast (bcast) and returned to the leader (return). Also runs the
co-located join `lineitem ⋈ orders` on the order key (both DISTKEY) and reports what it moved,
which must be nothing: the script exits 1 if it moved rows.
"""
import argparse
import json
import os
import sys

import psycopg2

COLOCATED = "select count(*) from lineitem join orders on l_orderkey = o_orderkey"


def moved(cur):
    cur.execute("select pg_last_query_id()")
    q = cur.fetchone()[0]
    out = {}
    for kind in ("dist", "bcast", "return"):
        cur.execute(
            f"select coalesce(sum(rows), 0), coalesce(sum(bytes), 0) from stl_{kind} where query = {q}"
        )
        rows, nbytes = cur.fetchone()
        out[kind] = {"rows": int(rows), "bytes": int(nbytes)}
    return out


def mib(n):
    return f"{n / 1048576:.1f}"


def main():
    ap = argparse.ArgumentParser()
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=5439)
    ap.add_argument("--user", default="basalt")
    ap.add_argument("--db", default="dev")
    ap.add_argument(
        "--queries-dir",
        default=os.path.join(here, "..", "..", "shared", "bench", "tpch", "queries"),
    )
    ap.add_argument("--json-out")
    a = ap.parse_args()
    conn = psycopg2.connect(host=a.host, port=a.port, user=a.user, dbname=a.db)
    conn.autocommit = True
    cur = conn.cursor()
    results = []
    names = sorted(f for f in os.listdir(a.queries_dir) if f.endswith(".sql"))
    for name in names + ["colocated"]:
        sql = COLOCATED if name == "colocated" else open(os.path.join(a.queries_dir, name)).read()
        # Comments may hold `;` (Q1's header does): drop them before splitting statements.
        sql = "\n".join(l.split("--", 1)[0] for l in sql.splitlines())
        for stmt in [s for s in sql.split(";") if s.strip()]:
            cur.execute(stmt)
            if cur.description:
                cur.fetchall()
                m = moved(cur)  # the statement with the query's rows (Q15 also has DDL)
        results.append({"query": name.removesuffix(".sql"), **m})
    print("| query | dist rows | dist MiB | bcast rows | bcast MiB | return rows | return MiB |")
    print("|---|---:|---:|---:|---:|---:|---:|")
    for r in results:
        q = "lineitem ⋈ orders (co-located)" if r["query"] == "colocated" else r["query"]
        cells = []
        for kind in ("dist", "bcast", "return"):
            cells += [str(r[kind]["rows"]), mib(r[kind]["bytes"])]
        print(f"| {q} | " + " | ".join(cells) + " |")
    total = {k: sum(r[k]["bytes"] for r in results if r["query"] != "colocated") for k in ("dist", "bcast", "return")}
    print(f"\ntotal over the 22 queries: dist {mib(total['dist'])} MiB, bcast {mib(total['bcast'])} MiB, "
          f"return {mib(total['return'])} MiB")
    if a.json_out:
        json.dump(results, open(a.json_out, "w"), indent=1)
    co = next(r for r in results if r["query"] == "colocated")
    if co["dist"]["rows"] or co["bcast"]["rows"]:
        print("the co-located lineitem-orders join moved rows between nodes", file=sys.stderr)
        sys.exit(1)


if __name__ == "__main__":
    main()
