"""Dates on the command line (issue 12): entries before what they answer are refused in one line, a late
entry is recorded with --backdate-reason and shown by `engine history`, a wrong one is corrected by
`engine correct`. The refusals on a fresh workspace are in tests/reliability/hostile/cli-dates.yaml."""

from __future__ import annotations

import json
import re
from datetime import date, datetime, time
from pathlib import Path

from engine.cli.main import app
from engine.support import clock
from tests.helpers.casework import DAY, PLAN, actions, d
from tests.helpers.cli import cli, runner
from tests.helpers.paths import CONFIG_DIR, RULES_DIR


def typed_on(today: date, ws: Path, *args: str):
    """`engine ARGS` typed on `today` (the clock), with --date etc. as given in ARGS."""
    common = ["--workspace", str(ws), "--rules", str(RULES_DIR), "--config", str(CONFIG_DIR)]
    with clock.pinned(datetime.combine(today, time(9), clock.TOKYO)):
        return runner.invoke(app, [*args, *common, *(["--by", "koordinator"] if args[0] != "run" else [])])


def one_line_refusal(result, *phrases: str) -> str:
    assert result.exit_code == 2, result.output
    (line,) = [x for x in result.output.splitlines() if x.strip()]
    assert line.startswith("error: ") and all(p in line for p in phrases), line
    return line


def audit_rows(conn) -> int:
    return conn.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0]


def test_answers_dated_before_what_they_answer_are_refused(convened):
    ws, conn, case = convened.workspace, convened.conn, convened.case
    assert cli(ws, "outcome", convened.meeting, case, "--file", str(convened.file(PLAN)), on=DAY).exit_code == 0
    before = audit_rows(conn)
    one_line_refusal(typed_on(DAY, ws, "accept", case, "--date", "2020-01-01"), "--date 2020-01-01", str(DAY))
    assert audit_rows(conn) == before
    assert cli(ws, "accept", case, on=DAY).exit_code == 0
    (action,) = actions(conn, case)
    before = audit_rows(conn)
    one_line_refusal(typed_on(DAY, ws, "done", str(action), "--date", "1999-01-01"), "--date 1999-01-01", "2026-12-04")
    one_line_refusal(typed_on(DAY, ws, "contact", case, "--agency", "houkatsu_chuo", "--date", "2037-03-29"), "2037")
    assert audit_rows(conn) == before


def test_a_late_entry_is_recorded_with_its_reason_and_a_wrong_one_corrected(convened):
    ws, conn, case = convened.workspace, convened.conn, convened.case
    today = d("2026-12-10")
    assert typed_on(today, ws, "run", "--no-send", "--date", "2026-12-10").exit_code == 0
    late = ["contact", case, "--agency", "houkatsu_chuo", "--date", "2026-12-08"]
    one_line_refusal(typed_on(today, ws, *late), "last nightly cycle (2026-12-10)", "--backdate-reason")
    recorded = typed_on(today, ws, *late, "--backdate-reason", "電話連絡の記録漏れ")
    assert recorded.exit_code == 0, recorded.output
    shown = cli(ws, "history", case).output
    assert re.search(r"2026-12-08 \[koordinator\] 遅れた記録.*2026-12-10 に記録.*電話連絡の記録漏れ", shown), shown
    (seq,) = map(int, re.findall(r"接触の記録（記録番号 (\d+)）", shown))
    fixed = typed_on(today, ws, "correct", case, str(seq), "--date", "2026-12-09", "--reason", "日付の誤り")
    assert fixed.exit_code == 0, fixed.output
    assert conn.execute("SELECT on_day FROM contacts WHERE case_id = ?", (case,)).fetchall() == [("2026-12-09",)]
    entries = json.loads(cli(ws, "history", case, "--json").output)
    kept = [(e["event"], e["on_day"]) for e in entries if e["event"] in ("contact", "corrected")]
    assert kept == [("contact", "2026-12-08"), ("corrected", "2026-12-10")]
    assert typed_on(today, ws, "correct", case, str(seq), "--withdraw", "--reason", "接触はなかった").exit_code == 0
    assert conn.execute("SELECT COUNT(*) FROM contacts WHERE case_id = ?", (case,)).fetchone()[0] == 0
