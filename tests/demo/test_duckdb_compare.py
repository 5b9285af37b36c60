"""The DuckDB comparison (bench/duckdb_compare.py): without DuckDB it says how to install it and exits
0; with DuckDB (when importable here) its SQL flags the same (household, flag) pairs as the engine,
on a generated town and on a hand-made one whose members sit on the rules' boundaries."""

from __future__ import annotations

import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from bench import duckdb_compare
from tests.helpers.paths import ROOT

SCRIPT = ROOT / "bench" / "duckdb_compare.py"


def _run(*args: str, pythonpath: str | None = None) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("ENGINE_CONFIG", "ENGINE_RULES", "ENGINE_WORKSPACE")}
    if pythonpath is not None:
        env["PYTHONPATH"] = pythonpath
    return subprocess.run(
        [sys.executable, str(SCRIPT), *args], env=env, cwd=ROOT, capture_output=True, text=True, timeout=600
    )


def test_without_duckdb_it_says_how_to_install_it_and_exits_0(tmp_path):
    hidden = tmp_path / "hidden"
    (hidden / "duckdb").mkdir(parents=True)
    (hidden / "duckdb" / "__init__.py").write_text("raise ImportError('hidden by the test')\n", encoding="utf-8")
    result_file = ROOT / "bench" / "results" / "duckdb-7.json"
    assert not result_file.exists()
    out = _run("--households", "7", "--keep", str(tmp_path / "keep"), pythonpath=str(hidden))
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().splitlines() == [duckdb_compare.SKIP_MESSAGE]
    assert "pip install duckdb" in out.stdout and "not a dependency" in out.stdout
    assert not (tmp_path / "keep").exists()  # nothing generated, imported or screened
    assert not result_file.exists()


def test_differences_name_each_pair_only_one_side_flagged():
    engine = [["H1", "8050"], ["H2", "hikikomori"]]
    duck = [["H2", "hikikomori"], ["H3", "isolated_elder"]]
    assert duckdb_compare.differences(engine, duck) == [
        ("H1", "8050", "engine only"),
        ("H3", "isolated_elder", "DuckDB only"),
    ]
    assert duckdb_compare.differences(engine, list(reversed(engine))) == []


def _compare(tmp_path: Path, households: int) -> dict:
    out_file = tmp_path / "out.json"
    out = _run("--households", str(households), "--keep", str(tmp_path), "--out", str(out_file))
    assert out.returncode == 0, out.stdout + out.stderr
    report = json.loads(out_file.read_text(encoding="utf-8"))
    assert report["agree"] and report["differences"] == {"screen_4": 0, "screen_12": 0}
    assert report["duckdb"]["rows"] == report["engine_import"]["rows"]
    return report


def test_duckdb_flags_what_the_engine_flags_on_a_generated_town(tmp_path):
    pytest.importorskip("duckdb")
    report = _compare(tmp_path, 2000)
    assert sum(report["pairs_per_flag"].values()) > 0
    assert report["engine_import"]["rows"]["households"] == 2000


# (household, members: (person, birth date, 続柄, [(code, value, start, end)])); the day is 2026-11-27,
# 6 months back is 2026-05-27
BOUNDARY_TOWN = [
    ("H01", [("P011", "昭和26年11月27日", "世帯主", [("care_level", "要介護2", "R6.4.1", "")]),  # 75 today
             ("P012", "1976-11-28", "長男", [("earned_income", "0", "2020-01-01", "")])]),  # 0 yen: withdrawn
    ("H02", [("P021", "1951-11-28", "本人", [("care_level", "要介護2", "2024-04-01", "")]),  # 74 until tomorrow
             ("P022", "1976-01-01", "子", [])]),
    ("H03", [("P031", "1940-01-01", "世帯主", [("dementia", "自立", "2020-01-01", "")])]),
    ("H04", [("P041", "1940-01-01", "世帯主", [("dementia", "I", "令和元年5月1日", "")])]),
    ("H05", [("P051", "1940-01-01", "世帯主", [("care_level", "要支援1", "2020-01-01", ""),
                                            ("service_use", "介護", "2020-01-01", "2026-11-26")])]),
    ("H06", [("P061", "1940-01-01", "世帯主", [("care_level", "要支援1", "2020-01-01", ""),
                                            ("service_use", "介護", "2020-01-01", "令和8年11月27日")])]),
    ("H07", [("P071", "1996-06-01", "世帯主", [("earned_income", "3000000", "2020-01-01", "2026-05-27")])]),
    ("H08", [("P081", "1996-06-01", "世帯主", [("earned_income", "3000000", "2020-01-01", "R8.5.26")])]),
    ("H09", [("P091", "1980-01-01", "世帯主", [("arrears", "water:3", "2026-01-01", ""),
                                            ("earned_income", "1", "2020-01-01", "")]),
             ("P092", "1982-01-01", "妻", [("arrears", "kokuho:3", "2026-01-01", ""),
                                          ("school_enrollment", "大学", "2020-01-01", "")])]),
    ("H10", [("P101", "1980-01-01", "世帯主", [("arrears", "water:3", "2026-01-01", ""),
                                            ("arrears", "water:5", "2026-02-01", "")])]),
    ("H11", [("P111", "1980-01-01", "世帯主", [("arrears", "kokuho:2", "2026-01-01", ""),
                                            ("arrears", "rent:4", "2026-01-01", "")])]),
    ("H12", [("P121", "1980-01-01", "世帯主", [("arrears", "water:3", "2026-01-01", ""),
                                            ("arrears", "rent:4", "2026-11-28", "")])]),
    ("H13", [("P131", "1940-01-01", "世帯主", [("care_level", "要介護1", "2020-01-01", "")]),  # not single
             ("P132", "1942-01-01", "妻", [])]),
]  # fmt: skip


def test_duckdb_flags_what_the_engine_flags_on_the_rules_boundaries(tmp_path):
    pytest.importorskip("duckdb")
    town = tmp_path / "town"
    town.mkdir()
    with open(town / "households.csv", "w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(["household_id", "area", "address"])
        w.writerows([hid, "中央", ""] for hid, _ in BOUNDARY_TOWN)
    with (
        open(town / "persons.csv", "w", encoding="utf-8", newline="") as fp,
        open(town / "records.csv", "w", encoding="utf-8", newline="") as fr,
    ):
        persons, records = csv.writer(fp), csv.writer(fr)
        persons.writerow(
            ["person_id", "household_id", "name", "kana", "birth_date", "sex", "relationship", "nationality"]
        )
        records.writerow(["person_id", "source", "code", "value", "start_date", "end_date"])
        for hid, members in BOUNDARY_TOWN:
            for pid, birth, rel, recs in members:
                persons.writerow([pid, hid, "", "", birth, "U", rel, "日本"])
                records.writerows([pid, "窓口", code, value, start, end] for code, value, start, end in recs)
    stamp = {"households": len(BOUNDARY_TOWN), "seed": 1, "on": duckdb_compare.ON.isoformat()}
    (tmp_path / "town.json").write_text(json.dumps(stamp), encoding="utf-8")  # the script reuses this town
    report = _compare(tmp_path, len(BOUNDARY_TOWN))
    assert report["generate"] == "reused the kept town"
    assert all(n > 0 for n in report["pairs_per_flag"].values()), report["pairs_per_flag"]
