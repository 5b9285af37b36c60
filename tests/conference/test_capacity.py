"""Meeting capacity against demand (engine/conference/capacity.py, `engine config check --workspace`):
a hand-made workspace whose cases exceed the slots draws a warning with the figures and the slots per
week that would meet it; below the slots, without history or without a workspace, none; nothing written.

The period on the pinned day (Fri 2026-11-27) is 2026-08-28 … 2026-11-27: 60 business days (敬老の日
9/21, 国民の休日 9/22, スポーツの日 10/12, 文化の日 11/3, 勤労感謝の日 11/23), so 4.0 weeks of five
business days a month. The shipped slots: 支援会議 Tue + Fri, 11 Tuesdays (9/22 and 11/3 are holidays)
and 14 Fridays = 25 meetings × 8 cases / 3 months = 66.7 a month; 重層的支援会議 Thu, 13 meetings = 34.7.
"""

from __future__ import annotations

import sqlite3
from datetime import date
from itertools import count

from typer.testing import CliRunner

from engine.cli.main import app
from engine.conference.capacity import capacity, capacity_warnings
from engine.store.db import DB_FILENAME
from tests.helpers.paths import CONFIG_DIR, RULES_DIR

ON = date(2026, 11, 27)
runner = CliRunner()
_ids = count(1)


def add_cases(conn, n: int, kind: str | None, opened_on: str, meeting_id: str | None = None) -> None:
    for _ in range(n):
        i = next(_ids)
        conn.execute(
            "INSERT INTO cases (case_id, household_id, status, opened_on, severity, conference_type, "
            "conference_basis, meeting_id, rules_hash, config_hash) VALUES (?, ?, 'detected', ?, 'medium', ?, '', ?, 'r', 'c')",
            (f"C-2026-{i:05d}", f"H{i:06d}", opened_on, kind, meeting_id),
        )
    conn.commit()


def busy_town(conn) -> None:
    """260 支援会議 cases of demand (250 opened in the period, 10 older still waiting), 20 重層的 ones."""
    add_cases(conn, 250, "support", "2026-10-01", meeting_id="M-20261006-1400-S")
    add_cases(conn, 10, "support", "2026-08-27")  # the day before the period, still waiting: counts
    add_cases(conn, 5, "support", "2026-06-01", meeting_id="M-20260602-1400-S")  # older and booked: does not
    add_cases(conn, 20, "multi", "2026-11-02", meeting_id="M-20261105-1400-M")
    add_cases(conn, 40, None, "2026-11-02")  # routed: no conference type, not demand


def dump(workspace) -> list[str]:
    c = sqlite3.connect(workspace / DB_FILENAME)
    try:
        return list(c.iterdump())
    finally:
        c.close()


def test_demand_above_the_slots_is_warned_with_the_slots_per_week_that_would_meet_it(conn, cfg):
    busy_town(conn)
    support, multi = sorted(capacity(conn, cfg.conference, ON), key=lambda c: c.conference_type != "support")
    assert (support.opened, support.waiting_before, support.demand_per_month) == (250, 10, 86.7)
    assert (support.slots_per_week, support.meetings_in_period, support.supply_per_month) == (2, 25, 66.7)
    assert support.exceeded and support.slots_per_week_needed == 3  # 86.7 / (8 × 4.0) = 2.7
    assert (multi.opened, multi.demand_per_month, multi.supply_per_month, multi.exceeded) == (20, 6.7, 34.7, False)
    (line,) = capacity_warnings(conn, cfg.conference, ON)
    assert line == (
        "支援会議の枠が需要に足りません: 直近3か月（2026-08-28〜2026-11-27）に250 件の事案を開始"
        "（ほかに期間前から会議の予約待ちが 10 件）、月平均 86.7 件に対し、枠は週 2 枠 × 8 件で月平均 66.7 件です。"
        "需要に見合うには週 3 枠（1 枠 8 件）が必要です（conference.yaml の slots、または cases_per_meeting を見直してください）"
    )


def test_demand_below_the_slots_or_no_history_draws_no_warning(conn, cfg):
    assert capacity(conn, cfg.conference, ON) == []  # an empty workspace: no history
    add_cases(conn, 5, "support", "2026-06-01")  # opened before the period, but waiting: demand 1.7 a month
    add_cases(conn, 195, "support", "2026-09-15", meeting_id="M-20260918-1000-S")  # 200 / 3 = 66.7 = the supply
    add_cases(conn, 104, "multi", "2026-09-15", meeting_id="M-20260917-1400-M")  # 34.7 = the supply
    assert [c.exceeded for c in capacity(conn, cfg.conference, ON)] == [False, False]
    assert capacity_warnings(conn, cfg.conference, ON) == []
    add_cases(conn, 1, "multi", "2026-11-26")  # one more case than the 重層的支援会議 slots hold
    (line,) = capacity_warnings(conn, cfg.conference, ON)
    assert line.startswith("重層的支援会議の枠が需要に足りません") and "週 1 枠 × 8 件で月平均 34.7 件" in line


def config_check(*extra: str):
    return runner.invoke(app, ["config", "check", "--config", str(CONFIG_DIR), "--rules", str(RULES_DIR), *extra])


def test_config_check_warns_exits_0_and_writes_nothing(conn, workspace):
    busy_town(conn)
    conn.close()
    db, tables = (workspace / DB_FILENAME).read_bytes(), dump(workspace)
    result = config_check("--workspace", str(workspace))
    assert result.exit_code == 0, result.output
    lines = result.output.rstrip().splitlines()
    assert [x for x in lines if x.startswith("warning: ")] == [
        "warning: 支援会議の枠が需要に足りません: 直近3か月（2026-08-28〜2026-11-27）に250 件の事案を開始"
        "（ほかに期間前から会議の予約待ちが 10 件）、月平均 86.7 件に対し、枠は週 2 枠 × 8 件で月平均 66.7 件です。"
        "需要に見合うには週 3 枠（1 枠 8 件）が必要です（conference.yaml の slots、または cases_per_meeting を見直してください）"
    ]
    assert lines[-1].startswith("ok: ")
    assert (workspace / DB_FILENAME).read_bytes() == db and dump(workspace) == tables  # opened read-only


def test_config_check_without_a_workspace_warns_of_nothing(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # no ./workspace: the default is skipped
    result = config_check()
    assert result.exit_code == 0 and "warning" not in result.output and result.output.startswith("ok: ")
    missing = config_check("--workspace", str(tmp_path / "nowhere"))
    assert missing.exit_code != 0 and "no database there" in missing.output
    assert not (tmp_path / "nowhere").exists()
