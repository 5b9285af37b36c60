"""The backlog plan (engine/triage/backlog.py, `engine backlog`): a first screening larger than the
town can take at once proposes a plan of first steps week by week; the coordinator accepts it, or
changes its pace, which moves the start days of the assessments not yet asked, by priority."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date

import pytest

from engine.triage import backlog
from engine.triage.backlog import PlanError
from tests.helpers.cli import cli
from tests.helpers.conference import cycle
from tests.helpers.town import ON, add_household, person

N = 7  # elders living alone in one area: all assessed by the same 地域包括支援センター


def paced(cfg, per_week: int):
    settings = cfg.triage.settings.model_copy(update={"assessments_per_week": per_week})
    return cfg.model_copy(update={"triage": cfg.triage.model_copy(update={"settings": settings})})


@pytest.fixture
def town(conn, workspace, rules, cfg):
    """N elders alone in 中央 (isolated_elder → houkatsu_chuo), 2 assessments a week: a backlog."""
    for i in range(N):
        add_household(conn, f"HE{i}", person(80 + i, "世帯主", ("care_level", "要介護1")), area="中央")
    cfg = paced(cfg, 2)
    night, _ = cycle(conn, workspace, rules, cfg)
    return night, cfg


def starts(conn) -> list[str]:
    return [
        d
        for (d,) in conn.execute(
            "SELECT p.due_on FROM checkpoints p WHERE p.kind = 'assessment' AND p.status IN ('pending', 'asked') ORDER BY p.due_on"
        )
    ]


def test_a_night_larger_than_the_pace_proposes_a_plan_week_by_week(conn, town):
    night, cfg = town
    assert night.convene.assessments_deferred == N - 2 and night.convene.backlog_plan == 1
    plan = backlog.load_plan(conn)
    assert plan.status == "proposed" and plan.per_week == 2
    weekly = [w.counts["assessment"] for w in plan.weeks]
    assert weekly == [2, 2, 2, 1], weekly  # 7 assessments at 2 a week: 4 weeks
    assert plan.by_agency == {"houkatsu_chuo": [2, 2, 2, 1]}
    assert plan.weeks[1].starts_on > ON and [w.index for w in plan.weeks] == [0, 1, 2, 3]
    # every start day is a dated next step: the audit sees no case waiting without one
    assert Counter(starts(conn)).most_common(1)[0][1] == 2
    text = backlog.render(plan, cfg)
    assert "対応計画 第1号" in text and "承認待ち" in text and "中央地域包括支援センター: 2、2、2、1" in text
    assert "engine backlog change 1 --per-week" in text


def test_no_plan_when_the_night_fits(conn, workspace, rules, cfg):
    add_household(conn, "HE0", person(80, "世帯主", ("care_level", "要介護1")), area="中央")
    night, _ = cycle(conn, workspace, rules, cfg)
    assert night.convene.backlog_plan is None and backlog.load_plan(conn) is None


def test_changing_the_pace_moves_the_waiting_assessments_in_priority_order(conn, town):
    _, cfg = town
    before = starts(conn)
    plan = backlog.change(conn, cfg, 1, 4, ON, "田中")
    assert plan.status == "accepted" and plan.per_week == 4 and plan.plan_id == 2
    assert backlog.load_plan(conn, 1).status == "replaced"
    after = starts(conn)
    assert max(after) < max(before) and Counter(after)[ON.isoformat()] == 4  # none asked yet: four start today
    moved = conn.execute("SELECT COUNT(*) FROM audit_log WHERE event = 'checkpoint_rescheduled'").fetchone()[0]
    assert moved == sum(1 for a, b in zip(sorted(before), sorted(after)) if a != b) > 0
    # the new pace holds for the next nights too (the accepted plan's)
    from engine.triage.pathways import per_week

    assert per_week(conn, cfg.triage.settings.assessments_per_week) == 4
    with pytest.raises(PlanError, match="承認待ち"):
        backlog.accept(conn, cfg, 1, ON, "田中")  # replaced: nothing to accept


def test_accept_records_who_and_when(conn, town):
    _, cfg = town
    plan = backlog.accept(conn, cfg, 1, date(2026, 11, 30), "田中")
    assert (plan.status, plan.decided_by, str(plan.decided_on)) == ("accepted", "田中", "2026-11-30")
    entry = conn.execute("SELECT actor, reason FROM audit_log WHERE event = 'backlog_plan_accepted'").fetchone()
    assert entry == ("田中", "対応計画 第1号を承認")
    with pytest.raises(PlanError, match="承認待ち"):
        backlog.accept(conn, cfg, 1, ON, "田中")
    with pytest.raises(PlanError, match="第99号はありません"):
        backlog.change(conn, cfg, 99, 3, ON, "田中")


def test_engine_backlog_commands(conn, workspace, rules, town):
    conn.close()
    shown = cli(workspace, "backlog")
    assert shown.exit_code == 0 and "対応計画 第1号" in shown.output, shown.output
    data = json.loads(cli(workspace, "backlog", "--json").output)
    assert data["per_week"] == 2 and data["status"] == "proposed"
    bad = cli(workspace, "backlog", "change", "1", "--per-week", "0", "--by", "田中")
    assert bad.exit_code != 0 and "1 から 1000" in bad.output, bad.output
    done = cli(workspace, "backlog", "accept", "1", "--by", "田中")
    assert done.exit_code == 0 and "第1号を承認しました（田中）" in done.output, done.output
