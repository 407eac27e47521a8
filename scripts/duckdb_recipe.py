#!/usr/bin/env python3
"""Runs the README's DuckDB recipe against an `orchestra export` directory.

    python3 scripts/duckdb_recipe.py out/            # tables, one per query
    python3 scripts/duckdb_recipe.py out/ --json     # {"query name": [rows...]}
    python3 scripts/duckdb_recipe.py out/ --sql FILE # queries from FILE instead

Each table of the export (Parquet or CSV) becomes a view of its own name (`matches`,
`seats`, `rounds`, `responses`, `votes`, `robot_voices`, `stats`); the queries are the
`-- name: ...` blocks between the `duckdb-recipe` markers of README.md. Needs the
`duckdb` package from PyPI (scripts/setup.sh installs it).
"""
import argparse
import datetime
import decimal
import json
import os
import re
import sys

TABLES = ["matches", "seats", "rounds", "responses", "votes", "robot_voices", "stats"]
README = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "README.md")


def recipe_queries(text):
    """[(name, sql)] from the text between the duckdb-recipe markers."""
    m = re.search(r"<!-- duckdb-recipe:start -->(.*?)<!-- duckdb-recipe:end -->", text, re.S)
    if not m:
        raise SystemExit("README.md has no duckdb-recipe section")
    sql = "\n".join(
        line for line in m.group(1).splitlines() if not line.startswith("```")
    )
    queries = []
    for block in re.split(r"^-- name: ", sql, flags=re.M)[1:]:
        name, _, body = block.partition("\n")
        queries.append((name.strip(), body.strip().rstrip(";")))
    return queries


def connect(export_dir):
    import duckdb

    con = duckdb.connect()
    con.execute("set TimeZone = 'UTC'")
    for t in TABLES:
        parquet = os.path.join(export_dir, t + ".parquet")
        csv = os.path.join(export_dir, t + ".csv")
        if os.path.exists(parquet):
            src = "read_parquet('%s')" % parquet.replace("'", "''")
        elif os.path.exists(csv):
            src = "read_csv('%s', header = true)" % csv.replace("'", "''")
        else:
            raise SystemExit("%s: no %s.parquet or %s.csv" % (export_dir, t, t))
        con.execute("create view %s as select * from %s" % (t, src))
    return con


def plain(v):
    if isinstance(v, decimal.Decimal):
        return float(v)
    if isinstance(v, (datetime.date, datetime.datetime)):
        return v.isoformat()
    return v


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("export_dir")
    ap.add_argument("--json", action="store_true", help="print JSON (for tests)")
    ap.add_argument("--sql", help="read the queries from this file instead of README.md")
    args = ap.parse_args()
    with open(args.sql or README, encoding="utf-8") as f:
        text = f.read()
    queries = recipe_queries(text) if not args.sql else recipe_queries(
        "<!-- duckdb-recipe:start -->" + text + "<!-- duckdb-recipe:end -->")
    con = connect(args.export_dir)
    results = {}
    for name, sql in queries:
        cur = con.execute(sql)
        cols = [d[0] for d in cur.description]
        rows = [dict(zip(cols, map(plain, r))) for r in cur.fetchall()]
        results[name] = rows
        if not args.json:
            print("-- %s" % name)
            print(con.sql(sql))
    if args.json:
        json.dump(results, sys.stdout)
        print()


if __name__ == "__main__":
    main()
