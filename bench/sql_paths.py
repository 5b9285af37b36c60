"""Why the hot paths keep raw SQL: the staging insert of an import, as raw `executemany` and as
sqlite-utils' `insert_all`, on the same rows (records.csv-shaped), in a fresh file database each.

    python bench/sql_paths.py --rows 500000
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sqlite3
import tempfile
import time
from pathlib import Path

from benchlib import ROOT  # noqa: F401  (pins the clock and puts the repository on sys.path, as for every benchmark)
from sqlite_utils import Database

COLUMNS = ("person_id", "source", "code", "value", "start_date", "end_date")
DDL = "CREATE TABLE staged (line INTEGER PRIMARY KEY, person_id TEXT, source TEXT, code TEXT, value TEXT, start_date TEXT, end_date TEXT)"


def rows(n: int):
    for i in range(n):
        yield (i + 2, f"P{i % 400000:07d}", "国保", "arrears", f"kokuho:{i % 12}", "2025-04-01", None)


def raw(path: Path, n: int) -> float:
    conn = sqlite3.connect(path)
    conn.execute(DDL)
    started = time.perf_counter()
    with conn:
        conn.executemany(f"INSERT INTO staged VALUES ({','.join('?' * 7)})", rows(n))
    return time.perf_counter() - started


def with_sqlite_utils(path: Path, n: int, batch: int) -> float:
    conn = sqlite3.connect(path)
    conn.execute(DDL)
    db = Database(conn)
    started = time.perf_counter()
    with conn:
        db["staged"].insert_all((dict(zip(("line", *COLUMNS), r)) for r in rows(n)), batch_size=batch, pk="line")
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=500_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    out: dict[str, list[float]] = {"executemany": [], "sqlite_utils_batch_100": [], "sqlite_utils_batch_1000": []}
    with tempfile.TemporaryDirectory() as tmp:
        for k in range(args.repeat):
            out["executemany"].append(round(raw(Path(tmp) / f"a{k}.db", args.rows), 3))
            out["sqlite_utils_batch_100"].append(round(with_sqlite_utils(Path(tmp) / f"b{k}.db", args.rows, 100), 3))
            out["sqlite_utils_batch_1000"].append(round(with_sqlite_utils(Path(tmp) / f"c{k}.db", args.rows, 1000), 3))
    result = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}",
        "rows": args.rows,
        "seconds": out,
        "best": {k: min(v) for k, v in out.items()},
    }
    print(json.dumps(result, indent=1))
    (ROOT / "bench" / "results" / "sql-paths.json").write_text(json.dumps(result, indent=1) + "\n")


if __name__ == "__main__":
    main()
