"""DuckDB baseline: 4 of the shipped flags as one SQL statement over the town's CSV files, beside the engine.

    python bench/duckdb_compare.py [--households 100000] [--seed 1] [--workers 2] [--keep DIR] [--out FILE]

What a municipal analyst might do instead of the engine (issue 19): load households.csv, persons.csv
and records.csv into DuckDB (和暦 dates parsed in SQL) and write the flags 8050, hikikomori,
isolated_elder and multiple_arrears as one query. The script times the DuckDB load and query, the
engine's import, and the engine's full screen with those 4 flags and with all 12, and checks that
DuckDB and both screens flag exactly the same (household, flag) pairs: on a difference it prints the
first ones and exits 1.

DuckDB is optional, not a dependency of the engine: without it the script says how to install it
and exits 0. Each phase runs in its own process. JSON goes to --out, by default to
bench/results/duckdb-<N>.json. With --keep DIR, the town (DIR/town) is reused when it was
generated with the same --households and --seed; the workspace (DIR/workspace) is rebuilt each run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

try:
    from bench.benchlib import ON, ROOT, run  # imported as bench.duckdb_compare (tests)
except ModuleNotFoundError:
    from benchlib import ON, ROOT, run  # noqa: E402  (run as a script; also puts the repository on sys.path)

FLAGS = ("8050", "hikikomori", "isolated_elder", "multiple_arrears")
SKIP_MESSAGE = (
    "duckdb is not installed: the DuckDB comparison is skipped. "
    "Install it with `pip install duckdb` (it is not a dependency of the engine)."
)
SHOWN_DIFFERENCES = 10

# --- DuckDB: load --------------------------------------------------------------------------------
# engine/support/dates.py: ISO, or 和暦 as the town writes it (令和6年4月1日, 元年 = 1; R6.4.1)
LOAD_MACROS = r"""
CREATE MACRO era_first_year(era) AS CASE era
    WHEN '明治' THEN 1868 WHEN 'M' THEN 1868 WHEN '大正' THEN 1912 WHEN 'T' THEN 1912
    WHEN '昭和' THEN 1926 WHEN 'S' THEN 1926 WHEN '平成' THEN 1989 WHEN 'H' THEN 1989
    WHEN '令和' THEN 2019 WHEN 'R' THEN 2019 END;
CREATE MACRO wareki(x) AS make_date(
    era_first_year(x.era) + (CASE x.y WHEN '元' THEN 1 ELSE TRY_CAST(x.y AS INTEGER) END) - 1,
    TRY_CAST(x.m AS INTEGER), TRY_CAST(x.d AS INTEGER));
CREATE MACRO jdate(s) AS CASE
    WHEN s = '' THEN NULL
    WHEN s[1] BETWEEN '0' AND '9' THEN TRY_CAST(s AS DATE)
    ELSE wareki(regexp_extract(s, '^(明治|大正|昭和|平成|令和|[MTSHR])(元|\d{1,2})(?:年|\.)(\d{1,2})(?:月|\.)(\d{1,2})日?$',
                               ['era', 'y', 'm', 'd'])) END;
"""
# engine/intake: cells trimmed; 続柄 variants to the words the rules use (fields.RELATIONSHIP_ALIASES,
# those of 世帯主 and 子, the only 続柄 these 4 flags read); a record ending before it starts is
# refused, and of records with the same key (person, source, code, start, identifying part of the
# value) the first in the file is kept (staging.py; `line` is the order DuckDB reads the file in,
# which it keeps by default). main() checks that DuckDB holds as many rows as the engine stored.
LOAD_TABLES = """
CREATE TABLE households AS SELECT trim(household_id) AS household_id
FROM read_csv('{dir}/households.csv', header = true, all_varchar = true);
CREATE TABLE persons AS SELECT
    trim(person_id) AS person_id, trim(household_id) AS household_id, jdate(trim(birth_date)) AS birth_date,
    CASE WHEN trim(relationship) = '本人' THEN '世帯主'
         WHEN trim(relationship) IN ('長男', '次男', '三男', '四男', '五男', '長女', '次女', '三女', '四女', '五女',
                                     '養子', '養女', '子供', '実子', '息子', '娘') THEN '子'
         ELSE trim(relationship) END AS relationship
FROM read_csv('{dir}/persons.csv', header = true, all_varchar = true);
CREATE TABLE records AS
WITH raw AS (
    SELECT row_number() OVER () AS line, trim(person_id) AS person_id, trim(source) AS source,
           trim(code) AS code, trim(value) AS value, trim(start_date) AS start_text,
           jdate(trim(start_date)) AS start_date, coalesce(trim(end_date), '') AS end_text,
           jdate(coalesce(trim(end_date), '')) AS end_date
    FROM read_csv('{dir}/records.csv', header = true, all_varchar = true)
)
SELECT person_id, code, value, start_text, start_date, end_text, end_date FROM raw
WHERE end_date IS NULL OR start_date IS NULL OR end_date >= start_date
QUALIFY row_number() OVER (
    PARTITION BY person_id, source, code, start_date,
        CASE WHEN code = 'arrears' THEN split_part(value, ':', 1)
             WHEN code IN ('disability_certificate', 'service_use', 'consultation', 'waiting_list') THEN value
             ELSE '' END
    ORDER BY line) = 1;
"""
# every date cell must have been read: a date DuckDB could not parse would silently drop rows
UNPARSED_DATES = """
SELECT (SELECT count(*) FROM persons WHERE birth_date IS NULL)
     + (SELECT count(*) FROM records WHERE start_date IS NULL OR (end_text <> '' AND end_date IS NULL))
"""

# --- DuckDB: the 4 flags, one statement --------------------------------------------------------
# configs/rules/flags.yaml and indicators.yaml; engine/rules/facts.py for what each condition means.
FLAG_QUERY = """
WITH
-- facts.load_households: members born on or before the screening date; age_on: full years
p AS (
    SELECT person_id, household_id, relationship AS rel,
           year(DATE '{on}') - year(birth_date)
             - CASE WHEN strftime(birth_date, '%m-%d') > '{mmdd}' THEN 1 ELSE 0 END AS age
    FROM persons WHERE birth_date <= DATE '{on}'
),
-- facts.load_households: records that started by the day; Context.matcher: valid on the day
-- (end_date >= day) or, with within_months: 6, at some time since the day 6 months back
r AS (
    SELECT person_id, code, value,
           end_date IS NULL OR end_date >= DATE '{on}' AS valid,
           end_date IS NULL OR end_date >= DATE '{on}' - INTERVAL 6 MONTH AS valid_6_months
    FROM records WHERE start_date <= DATE '{on}'
),
tests AS (
    SELECT person_id,
        -- record: care_level
        bool_or(code = 'care_level' AND valid) AS care_level,
        -- record: {{code: dementia, min: I}}  (自立 < I < IIa < IIb < IIIa < IIIb < IV < M)
        bool_or(code = 'dementia' AND valid AND value IN ('I', 'IIa', 'IIb', 'IIIa', 'IIIb', 'IV', 'M')) AS dementia_i,
        -- no_record: service_use
        bool_or(code = 'service_use' AND valid) AS service_use,
        -- no_record: {{code: earned_income, min: 1}}  (a 0-yen declaration is no income)
        bool_or(code = 'earned_income' AND valid AND TRY_CAST(value AS BIGINT) >= 1) AS income_1,
        -- no_record: {{code: earned_income, within_months: 6}}
        bool_or(code = 'earned_income' AND valid_6_months) AS income_6_months,
        -- no_record: {{code: school_enrollment, within_months: 6}}
        bool_or(code = 'school_enrollment' AND valid_6_months) AS school_6_months
    FROM r GROUP BY person_id
),
indicators AS (
    SELECT p.household_id,
        -- elder_needing_care: age: {{min: 75}}; record: care_level
        p.age >= 75 AND coalesce(t.care_level, false) AS elder_needing_care,
        -- withdrawn_adult: age: {{min: 40, max: 64}}; relationship: [世帯主, 子];
        -- no_record: {{code: earned_income, min: 1}}; no_record: service_use
        p.age BETWEEN 40 AND 64 AND p.rel IN ('世帯主', '子')
            AND NOT coalesce(t.income_1, false) AND NOT coalesce(t.service_use, false) AS withdrawn_adult,
        -- hikikomori: age: {{min: 15, max: 64}}; no_record earned_income / school_enrollment within_months: 6
        p.age BETWEEN 15 AND 64
            AND NOT coalesce(t.income_6_months, false) AND NOT coalesce(t.school_6_months, false) AS hikikomori,
        -- isolated_elder: age: {{min: 75}}; any: [record: care_level, record: {{code: dementia, min: I}}];
        -- no_record: service_use
        p.age >= 75 AND (coalesce(t.care_level, false) OR coalesce(t.dementia_i, false))
            AND NOT coalesce(t.service_use, false) AS isolated_elder
    FROM p LEFT JOIN tests t USING (person_id)
),
households_ AS (
    SELECT household_id, count(*) AS size,  -- household_size: the members born by the day
        bool_or(elder_needing_care) AS elder_needing_care, bool_or(withdrawn_adult) AS withdrawn_adult,
        bool_or(hikikomori) AS hikikomori, bool_or(isolated_elder) AS isolated_elder
    FROM indicators GROUP BY household_id
),
-- multiple_arrears: distinct_values: {{record: {{code: arrears, min: 3}}, at_least: 2}}: different
-- kinds (the value before ':') among the members' arrears of 3 months or more valid on the day
arrears AS (
    SELECT p.household_id, count(DISTINCT split_part(r.value, ':', 1)) AS kinds
    FROM r JOIN p USING (person_id)
    WHERE r.code = 'arrears' AND r.valid AND strpos(r.value, ':') > 0
      AND split_part(r.value, ':', 1) IN ('resident_tax', 'kokuho', 'water', 'rent', 'school_fee')
      AND TRY_CAST(substr(r.value, strpos(r.value, ':') + 1) AS BIGINT) >= 3
    GROUP BY p.household_id
)
-- 8050: all: [member: elder_needing_care, member: withdrawn_adult]
SELECT household_id, '8050' AS flag FROM households_ WHERE elder_needing_care AND withdrawn_adult
-- hikikomori: member: hikikomori
UNION ALL SELECT household_id, 'hikikomori' FROM households_ WHERE hikikomori
-- isolated_elder: all: [household_size: {{max: 1}}, member: isolated_elder]
UNION ALL SELECT household_id, 'isolated_elder' FROM households_ WHERE size <= 1 AND isolated_elder
-- multiple_arrears: at_least: 2
UNION ALL SELECT household_id, 'multiple_arrears' FROM arrears WHERE kinds >= 2
"""


def duckdb_version() -> str | None:
    """The installed DuckDB's version, or None when it cannot be imported."""
    try:
        import duckdb
    except ImportError:
        return None
    return duckdb.__version__


def phase_duckdb(town: str) -> dict:
    import duckdb

    con = duckdb.connect()  # in memory
    t = time.perf_counter()
    con.execute(LOAD_MACROS)
    con.execute(LOAD_TABLES.format(dir=Path(town).resolve().as_posix()))
    load_s = time.perf_counter() - t
    unparsed = con.execute(UNPARSED_DATES).fetchone()[0]
    t = time.perf_counter()
    pairs = con.execute(FLAG_QUERY.format(on=ON.isoformat(), mmdd=f"{ON.month:02d}-{ON.day:02d}")).fetchall()
    query_s = time.perf_counter() - t
    rows = {
        table: con.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
        for table in ("households", "persons", "records")
    }
    return {
        "version": duckdb.__version__,
        "threads": con.execute("SELECT current_setting('threads')").fetchone()[0],
        "load_s": round(load_s, 2),
        "query_s": round(query_s, 3),
        "rows": rows,
        "unparsed_dates": unparsed,
        "flag_pairs": sorted([list(p) for p in pairs]),
    }


# --- the engine ----------------------------------------------------------------------------------
def phase_generate(town: str, households: int, seed: int) -> dict:
    from engine.demo.town import generate_town

    t = time.perf_counter()
    gen = generate_town(Path(town), households, seed, today=ON)
    return {"generate_s": round(time.perf_counter() - t, 2), "persons": gen.persons, "records": gen.records}


def phase_import(town: str, workspace: str) -> dict:
    from engine.intake.importer import import_dir
    from engine.store.db import connect

    conn = connect(Path(workspace))
    t = time.perf_counter()
    result = import_dir(conn, Path(town), today=ON)
    seconds = time.perf_counter() - t
    rows = {
        table: conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        for table in ("households", "persons", "records")
    }
    return {"import_s": round(seconds, 2), "rejected": result.total_rejected, "rows": rows}


def phase_screen(workspace: str, flags: list[str] | None, workers: int) -> dict:
    """A full screen with the shipped rules, or with only `flags` of them (all indicators kept)."""
    from engine.rules.loader import load_rules
    from engine.rules.model import RuleSet, ruleset_hash
    from engine.screening.screen import screen
    from engine.store.db import connect

    rules = load_rules(ROOT / "configs" / "rules")
    if flags is not None:
        chosen = {k: rules.flags[k] for k in flags}
        rules = RuleSet(indicators=rules.indicators, flags=chosen, hash=ruleset_hash(rules.indicators, chosen))
    conn = connect(Path(workspace))
    t = time.perf_counter()
    result = screen(conn, Path(workspace), rules, ON, full=True, workers=workers)
    seconds = time.perf_counter() - t
    marks = ",".join("?" * len(FLAGS))
    pairs = conn.execute(
        f"SELECT household_id, rule_id FROM flags WHERE status = 'open' AND rule_id IN ({marks})", FLAGS
    ).fetchall()
    return {
        "seconds": round(seconds, 2),
        "flags": len(rules.flags),
        "candidates": result.candidates,
        "flag_pairs": sorted([list(p) for p in pairs]),
    }


# --- comparing and reporting -------------------------------------------------------------------
def differences(engine: list[list[str]], duck: list[list[str]]) -> list[tuple[str, str, str]]:
    """(household, flag, which side has it) of every pair only one side flagged, sorted."""
    a, b = {tuple(p) for p in engine}, {tuple(p) for p in duck}
    return sorted([(h, f, "engine only") for h, f in a - b] + [(h, f, "DuckDB only") for h, f in b - a])


def per_flag(pairs: list[list[str]]) -> dict[str, int]:
    return {f: sum(1 for _, g in pairs if g == f) for f in FLAGS}


def prepare(base: Path, households: int, seed: int, reuse: bool) -> tuple[Path, Path, dict | None]:
    """(town, workspace, generation figures or None when a kept town of the same size and seed is reused)."""
    town, workspace, stamp = base / "town", base / "workspace", base / "town.json"
    wanted = {"households": households, "seed": seed, "on": ON.isoformat()}
    if workspace.exists():
        if not (workspace / "engine.db").exists():
            sys.exit(f"error: {workspace} exists and is not an engine workspace; choose another --keep folder")
        shutil.rmtree(workspace)
    if reuse and stamp.exists() and json.loads(stamp.read_text(encoding="utf-8")) == wanted:
        return town, workspace, None
    gen = run(phase_generate, str(town), households, seed)
    stamp.write_text(json.dumps(wanted), encoding="utf-8")
    return town, workspace, gen


def table(report: dict) -> list[tuple[str, str, str]]:
    duck, imp, s4, s12 = report["duckdb"], report["engine_import"], report["screen_4"], report["screen_12"]
    n = report["households"]
    counts = ", ".join(f"{f} {c:,}" for f, c in report["pairs_per_flag"].items())
    return [
        ("households", f"{n:,}", f"{report['machine']}; {report['command']}"),
        ("DuckDB load (3 CSV, 和暦 in SQL)", f"{duck['load_s']:.2f} s", f"DuckDB {duck['version']}, {duck['threads']} threads"),
        ("engine import (3 CSV files)", f"{imp['import_s']:.2f} s", f"{imp['import_s'] / duck['load_s']:.1f}× DuckDB's load"),
        ("DuckDB flag query (4 flags)", f"{duck['query_s']:.2f} s", "one SQL statement"),
        ("engine full screen, 4 flags", f"{s4['seconds']:.2f} s", f"{s4['seconds'] / duck['query_s']:.1f}× DuckDB's query; {s4['candidates']:,} evaluated"),
        ("engine full screen, 12 flags", f"{s12['seconds']:.2f} s", f"after the 4-flag screen; {s12['candidates']:,} evaluated"),
        ("(household, flag) pairs", f"{sum(report['pairs_per_flag'].values()):,}", counts),
        ("DuckDB vs engine", "agree" if report["agree"] else "DIFFER", "4-flag screen and the 4 flags of the 12-flag screen"),
    ]  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--households", type=int, default=100_000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--keep", type=Path, help="keep (and reuse) the town, and keep the workspace, in this folder")
    ap.add_argument("--out", type=Path, help="JSON file (default bench/results/duckdb-<N>.json)")
    args = ap.parse_args()
    if duckdb_version() is None:
        print(SKIP_MESSAGE)
        return
    n = args.households
    base = args.keep.resolve() if args.keep else Path(tempfile.mkdtemp(prefix="engine-duckdb-"))
    base.mkdir(parents=True, exist_ok=True)
    town, workspace, gen = prepare(base, n, args.seed, reuse=bool(args.keep))

    duck = run(phase_duckdb, str(town))
    imp = run(phase_import, str(town), str(workspace))
    s4 = run(phase_screen, str(workspace), list(FLAGS), args.workers)
    s12 = run(phase_screen, str(workspace), None, args.workers)
    duck_pairs = duck.pop("flag_pairs")
    problems = []
    if duck["unparsed_dates"]:
        problems.append(f"DuckDB could not read {duck['unparsed_dates']:,} date cells")
    if duck["rows"] != imp["rows"]:
        problems.append(f"DuckDB holds {duck['rows']} rows, the engine stored {imp['rows']}")
    diffs = {name: differences(s.pop("flag_pairs"), duck_pairs) for name, s in (("screen_4", s4), ("screen_12", s12))}
    report = {
        "machine": f"{platform.machine()} {os.cpu_count()} cores, Python {platform.python_version()}, {platform.system()}",
        "load": f"{os.getloadavg()[0]:.2f} (1-minute load average at the end)",
        "households": n,
        "seed": args.seed,
        "workers": args.workers,
        "on": ON.isoformat(),
        "flags": list(FLAGS),
        "generate": gen or "reused the kept town",
        "duckdb": duck,
        "engine_import": imp,
        "screen_4": s4,
        "screen_12": s12,
        "pairs_per_flag": per_flag(duck_pairs),
        "differences": {k: len(v) for k, v in diffs.items()},
        "agree": not problems and not any(diffs.values()),
        "problems": problems,
        "command": f"python bench/duckdb_compare.py --households {n} --seed {args.seed} --workers {args.workers}",
    }
    out = args.out or ROOT / "bench" / "results" / f"duckdb-{n}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, ensure_ascii=False, indent=2), encoding="utf-8")
    for name, value, note in table(report):
        print(f"{name:<36} {value:>12}  {note}")
    print(f"json: {out}")
    if report["agree"]:
        return
    for problem in problems:
        print(f"error: {problem}")
    for name, diff in diffs.items():
        for h, f, side in diff[:SHOWN_DIFFERENCES]:
            print(f"differ ({name}): {h} {f} — {side}")
        if len(diff) > SHOWN_DIFFERENCES:
            print(f"differ ({name}): … {len(diff) - SHOWN_DIFFERENCES:,} more")
    sys.exit(1)


if __name__ == "__main__":
    main()
