"""The one clock: engine code reads the time only through engine/support/clock.py."""

import ast
import os
import re
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from engine.support import clock
from tests.helpers.paths import ROOT

ENGINE = ROOT / "engine"
BENCH = ROOT / "bench"
CLOCK = ENGINE / "support" / "clock.py"
# counters: for durations, not dates (engine code takes them from clock.monotonic(); the benchmarks time themselves)
COUNTERS = {
    f"time.{name}{ns}" for name in ("perf_counter", "monotonic", "process_time", "thread_time") for ns in ("", "_ns")
}
# what reads the wall clock, as module.name once imports are resolved; naming one is enough
# (`default_factory=datetime.now` reads the clock later)
READS = COUNTERS | {
    "datetime.datetime.now",
    "datetime.datetime.utcnow",
    "datetime.datetime.today",
    "datetime.date.today",
    "time.time",
    "time.time_ns",
    "time.clock_gettime",
    "time.clock_gettime_ns",
    "uuid.uuid1",  # made of the current time (and the machine's MAC address)
}
# these read the clock when they are given no time: (position, keyword) of the time argument
NOW_UNLESS_GIVEN = {
    "time.strftime": (1, None),
    "time.asctime": (0, None),
    "time.ctime": (0, None),
    "time.localtime": (0, None),
    "time.gmtime": (0, None),
    "email.utils.formatdate": (0, "timeval"),
    "email.utils.localtime": (0, "dt"),
}
# SQLite's clock: 'now' given to a date function, or CURRENT_TIMESTAMP/DATE/TIME anywhere (a query,
# a DEFAULT in DDL, sqlite-utils' not_null_default="CURRENT_TIMESTAMP"). Prose ("known", "now that",
# "the current time") matches neither.
SQL_NOW = re.compile(
    r"\b(?:date|time|datetime|julianday|unixepoch|strftime|timediff)\s*\([^)]*(['\"])\s*now\s*\1", re.I
)
SQL_CURRENT = re.compile(r"\bcurrent_(?:timestamp|date|time)\b", re.I)


def _imports(tree: ast.Module) -> dict[str, str]:
    """What each imported name stands for: `import time as t` → t: time, `from datetime import
    datetime as dt` → dt: datetime.datetime (ruff refuses `import *`)."""
    names = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                top = alias.name.split(".")[0]
                names[alias.asname or top] = alias.name if alias.asname else top
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            for alias in node.names:
                names[alias.asname or alias.name] = f"{node.module}.{alias.name}"
    return names


def _qualname(node: ast.AST, names: dict[str, str]) -> str | None:
    """module.name an expression stands for, or None: `dt.now` → datetime.datetime.now,
    `getattr(datetime, "now")` → datetime.datetime.now, `__import__("time")` → time."""
    if isinstance(node, ast.Name):
        return names.get(node.id, node.id)
    if isinstance(node, ast.Attribute):
        base = _qualname(node.value, names)
        return base and f"{base}.{node.attr}"
    if isinstance(node, ast.Call) and node.args and isinstance(node.args[-1], ast.Constant):
        func, last = _qualname(node.func, names), node.args[-1].value
        if func == "getattr" and len(node.args) == 2 and isinstance(last, str):
            base = _qualname(node.args[0], names)
            return base and f"{base}.{last}"
        if func in ("__import__", "importlib.import_module") and len(node.args) == 1 and isinstance(last, str):
            return last.split(".")[0] if func == "__import__" else last
    return None


def _time_given(call: ast.Call | None, position: int, keyword: str | None) -> bool:
    if call is None:  # named, not called here: it may be called without a time anywhere
        return False
    given = call.args[position] if len(call.args) > position else None
    given = given or next((k.value for k in call.keywords if keyword and k.arg == keyword), None)
    return given is not None and not (isinstance(given, ast.Constant) and given.value is None)


def _sql_reads_clock(text: str) -> bool:
    return bool(SQL_NOW.search(text) or SQL_CURRENT.search(text) or text.strip().lower() == "now")


def clock_reads(path: Path, allowed: set[str] | frozenset[str] = frozenset()) -> list[str]:
    """Every place in a module that reads the wall clock without going through the clock
    (`allowed`: names this module may use, e.g. the counters for a benchmark's own timings)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names = _imports(tree)
    called = {id(node.func): node for node in ast.walk(tree) if isinstance(node, ast.Call)}
    # strings that are no SQL: docstrings, and the attribute names getattr() looks up
    not_sql = {id(node.value) for node in ast.walk(tree) if isinstance(node, ast.Expr)}
    not_sql |= {
        id(call.args[1]) for call in called.values() if _qualname(call.func, names) == "getattr" and len(call.args) > 1
    }
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            hits = [a.name for a in node.names if f"{node.module}.{a.name}" in READS - allowed]
            found += [(node.lineno, f"from {node.module} import {name}") for name in hits]
        elif isinstance(node, ast.Constant) and isinstance(node.value, str):
            if id(node) not in not_sql and _sql_reads_clock(node.value):
                found.append((node.lineno, f"SQL reads the clock: {node.value.strip()[:60]!r}"))
        elif isinstance(node, ast.Name | ast.Attribute | ast.Call) and not isinstance(
            getattr(node, "ctx", None), ast.Store | ast.Del
        ):
            name = _qualname(node, names)
            if name in READS - allowed:
                found.append((node.lineno, name))
            elif name in NOW_UNLESS_GIVEN and not _time_given(called.get(id(node)), *NOW_UNLESS_GIVEN[name]):
                found.append((node.lineno, f"{name} without a time"))
    return [f"{path}:{line}: {what}" for line, what in sorted(found)]


def test_no_engine_module_but_the_clock_reads_the_wall_clock():
    modules = [p for p in ENGINE.rglob("*.py") if p != CLOCK]
    assert len(modules) > 30
    found = [hit for p in modules for hit in clock_reads(p)]
    assert found == [], "read the time through engine.support.clock:\n" + "\n".join(found)


def test_benchmarks_read_no_date_but_time_their_steps():
    """The benchmarks run on benchlib's pinned day; their own timings may use the counters."""
    scripts = [p for p in BENCH.glob("*.py") if p.name != "__init__.py"]
    assert len(scripts) >= 4
    found = [hit for p in scripts for hit in clock_reads(p, allowed=COUNTERS)]
    assert found == [], "take the day from bench/benchlib.py (ON, the pinned clock):\n" + "\n".join(found)
    for script in scripts:  # each imports benchlib, which pins the clock, and none picks a day of its own
        tree = ast.parse(script.read_text(encoding="utf-8"))
        imported = {node.module for node in ast.walk(tree) if isinstance(node, ast.ImportFrom)}
        assigned = {
            t.id
            for node in ast.walk(tree)
            if isinstance(node, ast.Assign)
            for t in node.targets
            if isinstance(t, ast.Name)
        }
        assert script.name == "benchlib.py" or imported & {"benchlib", "bench.benchlib"}, script
        assert script.name == "benchlib.py" or "ON" not in assigned, script


def test_a_benchmark_runs_on_benchlibs_day_and_so_do_the_processes_it_starts():
    env = {k: v for k, v in os.environ.items() if k != clock.ENV}
    code = (
        "import os, subprocess, sys; sys.path.insert(0, 'bench'); import benchlib; from engine.support import clock;"
        "print(clock.stamp(), clock.today());"
        "subprocess.run([sys.executable, '-c', 'from engine.support import clock; print(clock.today())'], check=True)"
    )
    out = subprocess.run([sys.executable, "-c", code], env=env, cwd=ROOT, capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["2026-11-27T00:00:00+00:00", "2026-11-27", "2026-11-27"]


def test_the_scanner_sees_each_way_of_reading_the_clock(tmp_path):
    reads = [  # each line reads the wall clock
        "a = datetime.now()",
        "b = date.today()",
        "c = time.time()",
        "d = dt.datetime.utcnow()",
        "e = time.perf_counter()  # a counter",
        "q = \"SELECT datetime('now')\"",
        "f = DT.now()  # from datetime import datetime as DT",
        "g = t.time()  # import time as t",
        'h = time.strftime("%Y-%m-%d")',
        "i = time.localtime()",
        "j = time.gmtime(None)",
        "k = time.asctime()",
        "l = time.ctime()",
        "m = time.process_time()  # a counter",
        "n = time.thread_time_ns()  # a counter",
        "o = email.utils.formatdate()",
        "p = email.utils.formatdate(localtime=True)",
        "r = formatdate(usegmt=True)  # from email.utils import formatdate",
        "s = email.utils.localtime()",
        "u = uuid.uuid1()",
        'v = getattr(datetime, "now")()',
        'w = getattr(time, "monotonic")()  # a counter',
        'x = getattr(dt.date, "today")()',
        "y = datetime_module.datetime.now()  # import datetime as datetime_module",
        "z = dt.datetime.today",
        "ddl = \"CREATE TABLE t (at TEXT DEFAULT (datetime('now')))\"",
        "ddl2 = 'CREATE TABLE t (at TEXT NOT NULL DEFAULT CURRENT_TIMESTAMP)'",
        'table.add_column("at", str, not_null_default="CURRENT_TIMESTAMP")',
        'stamp = "UPDATE t SET at = strftime(\'%Y-%m-%dT%H:%M:%S\', \\"now\\")"',
        'conn.execute("SELECT julianday(?)", ("now",))',
        "day = 'DELETE FROM t WHERE on_day < current_date'",
        'tick = __import__("time").time()',
        'tock = importlib.import_module("datetime").date.today()',
        "dflt = Field(default_factory=datetime.now)",
    ]
    fine = [  # none of these reads the clock
        "a = datetime.fromisoformat(x)",
        "b = date(2026, 1, 1)",
        "time.sleep(1)",
        'c = time.strftime("%Y", some_struct)',
        "d = time.localtime(1700000000)",
        "e = email.utils.formatdate(1700000000.0, localtime=True)",
        "f = email.utils.format_datetime(x)",
        "g = uuid.uuid4()",
        # a file's modification time is a recorded instant, like a date read from the database, not "now"
        "h = datetime.fromtimestamp(os.path.getmtime(p))",
        'i = getattr(datetime, "fromisoformat")(x)',
        'j = "this is known; now that the meeting is set, 今すぐ now 送る"',
        "k = 'the current time of the meeting, the date (now) shown'",
        "l = \"SELECT date(held_on, '+7 days') FROM meetings WHERE held_on < ?\"",
        "m = datetime.combine(on, datetime_time(8, 0))",
        "n = clock.now(), clock.today(), clock.stamp(), clock.local_now(), clock.monotonic()",
        "o = row.time, self.time.time(), event.date.today",
        "p = datetime.strptime(x, '%Y')",
    ]
    imports = (
        "import time, datetime as dt, email.utils, uuid, os, importlib\n"
        "import time as t\n"
        "import datetime as datetime_module\n"
        "from datetime import date, datetime\n"
        "from datetime import datetime as DT, time as datetime_time\n"
        "from email.utils import formatdate\n"
        "from engine.support import clock\n"
        "from time import monotonic  # a counter\n"  # line 8: importing it is reading it
        '"""A docstring may say CURRENT_TIMESTAMP and datetime("now") without reading anything."""\n'
    )
    bad = tmp_path / "bad.py"
    bad.write_text(imports + "\n".join(reads + fine) + "\n", encoding="utf-8")
    first = imports.count("\n") + 1
    hits = clock_reads(bad)
    lines = sorted({int(hit.split(":")[1]) for hit in hits})
    assert lines == [8, *range(first, first + len(reads))], "\n".join(hits)
    assert clock_reads(CLOCK) != []  # the clock itself is the one place that may
    # a benchmark may time itself with the counters, and only with them
    source = bad.read_text(encoding="utf-8").splitlines()
    counters = {n for n in lines if "# a counter" in source[n - 1]}
    assert len(counters) == 5
    assert {int(hit.split(":")[1]) for hit in clock_reads(bad, allowed=COUNTERS)} == set(lines) - counters


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
