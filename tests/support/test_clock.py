"""The one clock: engine code reads the time only through engine/support/clock.py."""

import ast
import os
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from engine.support import clock
from tests.helpers.paths import ROOT

ENGINE = ROOT / "engine"
CLOCK = ENGINE / "support" / "clock.py"
# calls that read the wall clock (or a counter) directly
FORBIDDEN = {
    ("datetime", "now"),
    ("datetime", "utcnow"),
    ("datetime", "today"),
    ("date", "today"),
    ("time", "time"),
    ("time", "time_ns"),
    ("time", "perf_counter"),
    ("time", "perf_counter_ns"),
    ("time", "monotonic"),
    ("time", "monotonic_ns"),
    ("time", "localtime"),
    ("time", "gmtime"),
    ("time", "ctime"),
    ("time", "asctime"),
}
FORBIDDEN_FROM_TIME = {name for mod, name in FORBIDDEN if mod == "time"}
SQL_CLOCK = ("'now'", '"now"', "current_timestamp", "current_date", "current_time")


def clock_reads(path: Path) -> list[str]:
    """Every place in a module that reads the wall clock without going through the clock."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            if (node.value.id, node.attr) in FORBIDDEN:
                found.append(f"{path}:{node.lineno}: {node.value.id}.{node.attr}")
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Attribute):
            if (node.value.attr, node.attr) in FORBIDDEN:  # datetime.datetime.now
                found.append(f"{path}:{node.lineno}: ….{node.value.attr}.{node.attr}")
        elif isinstance(node, ast.ImportFrom) and node.module == "time":
            for alias in node.names:
                if alias.name in FORBIDDEN_FROM_TIME:
                    found.append(f"{path}:{node.lineno}: from time import {alias.name}")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            text = node.value.lower()
            if any(s in text for s in SQL_CLOCK) and ("select" in text or "insert" in text or "update" in text):
                found.append(f"{path}:{node.lineno}: SQL reads the clock")
    return found


def test_no_engine_module_but_the_clock_reads_the_wall_clock():
    modules = [p for p in ENGINE.rglob("*.py") if p != CLOCK]
    assert len(modules) > 30
    found = [hit for p in modules for hit in clock_reads(p)]
    assert found == [], "read the time through engine.support.clock:\n" + "\n".join(found)


def test_the_scanner_sees_each_way_of_reading_the_clock(tmp_path):
    bad = tmp_path / "bad.py"
    bad.write_text(
        "import time, datetime as dt\n"
        "from datetime import date, datetime\n"
        "from time import monotonic\n"
        "a = datetime.now()\n"
        "b = date.today()\n"
        "c = time.time()\n"
        "d = dt.datetime.utcnow()\n"
        "e = time.perf_counter()\n"
        "q = \"SELECT datetime('now')\"\n"
    )
    lines = sorted(int(hit.split(":")[1]) for hit in clock_reads(bad))
    assert lines == [3, 4, 5, 6, 7, 8, 9]
    assert clock_reads(CLOCK) != []  # the clock itself is the one place that may


def test_pinned_clock_gives_the_date_in_japan():
    with clock.pinned(datetime(2027, 12, 31, 15, 30, tzinfo=UTC)):  # 00:30 on 1 January in Tokyo
        assert clock.today() == date(2028, 1, 1)
        assert clock.now() == datetime(2027, 12, 31, 15, 30, tzinfo=UTC)
        assert clock.stamp() == "2027-12-31T15:30:00+00:00"
        assert clock.local_now().utcoffset() == timedelta(hours=9)


def test_pinned_blocks_nest_and_restore():
    outer = datetime(2030, 1, 1, tzinfo=UTC)
    before = clock.now()
    with clock.pinned(outer):
        with clock.pinned(outer + timedelta(days=1)):
            assert clock.now() == outer + timedelta(days=1)
        assert clock.now() == outer
    assert clock.now() == before


def test_a_naive_time_is_refused():
    with pytest.raises(ValueError, match="UTC offset"):
        clock.pin(datetime(2026, 1, 1))


def test_unpinned_clock_follows_the_machine(monkeypatch):
    monkeypatch.delenv(clock.ENV)
    clock.unpin()
    machine = datetime.now(UTC)
    assert abs(clock.now() - machine) < timedelta(seconds=5)
    assert clock.today() == clock.now().astimezone(clock.TOKYO).date()
    a = clock.monotonic()
    assert clock.monotonic() >= a


def test_a_process_started_with_engine_now_runs_at_that_instant():
    env = {**os.environ, clock.ENV: "2031-02-03T04:05:06+09:00"}
    code = "from engine.support import clock; print(clock.stamp(), clock.today())"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["2031-02-02T19:05:06+00:00", "2031-02-03"]
    # a time without an offset is a time in Japan
    env[clock.ENV] = "2031-02-03T04:05:06"
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True).stdout
    assert out.split() == ["2031-02-02T19:05:06+00:00", "2031-02-03"]


def test_a_bad_engine_now_is_a_clear_message_not_a_traceback():
    env = {**os.environ, clock.ENV: "tomorrow"}
    r = subprocess.run(
        [sys.executable, "-c", "from engine.support import clock; clock.now()"], env=env, capture_output=True, text=True
    )
    assert r.returncode != 0 and "ENGINE_NOW='tomorrow' is not an ISO time" in r.stderr and "Traceback" not in r.stderr
