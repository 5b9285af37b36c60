"""対応計画 on the console (/backlog, engine/web/console/backlog.py): the latest backlog plan as
`engine backlog` shows it — its figures week by week and agency by agency, by label and name — and
the two forms of `engine backlog accept N` and `engine backlog change N --per-week M`, under the
logged-in coordinator, CSRF-protected, a bad pace refused on the page with nothing written."""

from __future__ import annotations

import html
import json
import re

import pytest

from engine.store.chronology import workspace_today
from engine.support.dates import wareki_with_weekday
from engine.triage import backlog
from engine.triage.backlog import COLUMNS, PLAN_STATES
from engine.triage.model import PATHWAY_SHORT
from engine.triage.pathways import per_week
from tests.helpers.conference import cycle
from tests.helpers.console import NAME, form_token
from tests.helpers.town import ON, add_household, person

N = 7  # elders living alone in 中央: all assessed by houkatsu_chuo, 2 a week (tests/triage/test_backlog.py)
AGENCY = "houkatsu_chuo"


def paced(cfg, pace: int):
    settings = cfg.triage.settings.model_copy(update={"assessments_per_week": pace})
    return cfg.model_copy(update={"triage": cfg.triage.model_copy(update={"settings": settings})})


@pytest.fixture
def town(conn, workspace, rules, cfg):
    """The night of ON with N elders alone in 中央 and a pace of 2: plan 第1号, awaiting the coordinator.
    (The app runs on the shipped configs/, whose pace is 10: the plan is the night's, as stored.)"""
    for i in range(N):
        add_household(conn, f"HE{i}", person(80 + i, "世帯主", ("care_level", "要介護1")), area="中央")
    night, _ = cycle(conn, workspace, rules, paced(cfg, 2))
    assert night.convene.backlog_plan == 1
    return backlog.load_plan(conn)


def text_of(page: str) -> str:
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def rows(page: str, table: str) -> list[tuple[str, list[int]]]:
    """The rows of the table `table` (its id) below its header: (the row's heading, its figures)."""
    body = page.split(f'<table id="{table}">', 1)[1].split("</table>", 1)[0]
    out = []
    for row in re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)[1:]:
        heading = text_of(re.search(r"<th>(.*?)</th>", row, flags=re.S)[1]).strip()
        out.append((heading, [int(c.replace(",", "")) for c in re.findall(r"<td>([\d,]+)</td>", row)]))
    return out


def refusal(page: str) -> str:
    found = re.search(r'<p class="problem" role="alert" id="problem-[a-z]+">([^<]+)</p>', page)
    assert found, page[:500]
    return html.unescape(found[1])


def typed(page: str) -> str:
    return html.unescape(re.search(r'name="per_week" inputmode="numeric" value="([^"]*)"', page)[1])


def shows_the_plan(page: str, plan, cfg) -> None:
    """The page's tables hold the plan's figures: weeks × pathways, and the agency's weeks, by name."""
    weeks = rows(page, "weeks")
    assert [h for h, _ in weeks] == [f"第{w.index + 1}週（{wareki_with_weekday(w.starts_on)}〜）" for w in plan.weeks]
    assert [f for _, f in weeks] == [[w.counts[p] for p in COLUMNS] for w in plan.weeks]
    header = page.split('<table id="weeks">', 1)[1].split("</tr>", 1)[0]
    assert re.findall(r"<th>([^<]+)</th>", header)[1:] == [PATHWAY_SHORT[p] for p in COLUMNS]
    assert rows(page, "agencies") == [(cfg.agencies[a].name, w) for a, w in plan.by_agency.items()]


def snapshot(conn) -> tuple:
    return tuple(
        conn.execute(sql).fetchall()
        for sql in (
            "SELECT * FROM backlog_plans ORDER BY plan_id",
            "SELECT * FROM checkpoints ORDER BY checkpoint_id",
            "SELECT seq FROM audit_log ORDER BY seq",
        )
    )


def starts(conn) -> list[str]:
    return [
        d
        for (d,) in conn.execute(
            "SELECT due_on FROM checkpoints WHERE kind = 'assessment' AND status IN ('pending', 'asked') ORDER BY due_on"
        )
    ]


def test_the_page_needs_a_login(client, town):
    r = client.get("/backlog", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login?next=%2Fbacklog"
    r = client.post("/backlog/1/accept", data={}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_the_latest_plan_is_shown_with_its_figures_by_label_and_name(console, conn, cfg, town):
    page = console.get("/backlog")
    assert page.status_code == 200
    seen = text_of(page.text)
    assert "対応計画 第1号" in seen and PLAN_STATES["proposed"] in seen
    assert f"作成日 {wareki_with_weekday(ON)}" in " ".join(seen.split())
    assert "週2件" in seen and 'aria-current="page">対応計画' in page.text
    shows_the_plan(page.text, town, cfg)
    assert sum(sum(f) for _, f in rows(page.text, "agencies")) == N
    assert 'action="/backlog/1/accept"' in page.text and 'action="/backlog/1/change"' in page.text
    for agency in cfg.agencies.values():  # agencies by name only: no id, no address
        assert agency.id not in page.text and agency.email not in page.text
    assert not re.search(r"[\w.+-]+@[\w-]+\.[\w.]+", page.text)
    assert not re.search(r"\d{4}-\d{2}-\d{2}", seen)  # days in 和暦


def test_accept_records_the_coordinator_via_the_console(console, conn, town):
    page = console.get("/backlog").text
    r = console.post("/backlog/1/accept", data={"csrf": form_token(page)}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/backlog"
    plan = backlog.load_plan(conn)
    assert (plan.plan_id, plan.status, plan.decided_by) == (1, "accepted", NAME)
    actor, detail = conn.execute("SELECT actor, detail FROM audit_log WHERE event = 'backlog_plan_accepted'").fetchone()
    assert actor == NAME and json.loads(detail)["via"] == "console"
    after = console.get("/backlog").text
    seen = " ".join(text_of(after).split())
    assert PLAN_STATES["accepted"] in seen and f"{NAME}（{wareki_with_weekday(plan.decided_on)}）" in seen
    assert "/backlog/1/accept" not in after and "/backlog/1/change" not in after  # decided: no forms
    again = console.post("/backlog/1/accept", data={"csrf": form_token(after)})
    assert again.status_code == 400 and PLAN_STATES["accepted"] in refusal(again.text)


@pytest.mark.parametrize("pace", ["0", "abc", "1001", ""])
def test_a_bad_pace_is_refused_on_the_page_and_nothing_is_written(console, conn, town, pace):
    page = console.get("/backlog").text
    before = snapshot(conn)
    r = console.post("/backlog/1/change", data={"csrf": form_token(page), "per_week": pace})
    assert r.status_code == 400
    assert "1 から 1000 までの数字" in refusal(r.text) and typed(r.text) == pace
    assert snapshot(conn) == before
    assert backlog.load_plan(conn).status == "proposed"


def test_changing_the_pace_moves_the_start_days_and_shows_the_new_accepted_plan(console, conn, cfg, town):
    before = starts(conn)
    page = console.get("/backlog").text
    r = console.post("/backlog/1/change", data={"csrf": form_token(page), "per_week": "4"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/backlog"
    plan = backlog.load_plan(conn)
    assert (plan.plan_id, plan.status, plan.per_week, plan.decided_by) == (2, "accepted", 4, NAME)
    assert backlog.load_plan(conn, 1).status == "replaced"
    after = starts(conn)
    assert max(after) < max(before) and len(after) == len(before) == N
    assert plan.by_agency[AGENCY][0] == 4  # four start this week now
    moved = conn.execute(
        "SELECT actor, detail FROM audit_log WHERE event IN ('checkpoint_rescheduled', 'backlog_plan_changed')"
    ).fetchall()
    assert len(moved) > 1 and all(a == NAME and json.loads(d)["via"] == "console" for a, d in moved)
    shown = console.get("/backlog").text
    seen = text_of(shown)
    assert "対応計画 第2号" in seen and PLAN_STATES["accepted"] in seen and "週4件" in seen
    shows_the_plan(shown, plan, cfg)


def test_a_post_without_the_csrf_token_is_refused(console, conn, town):
    before = snapshot(conn)
    assert console.post("/backlog/1/accept", data={}).status_code == 403
    assert console.post("/backlog/1/change", data={"per_week": "4"}).status_code == 403
    assert console.post("/backlog/1/change", data={"per_week": "4", "csrf": "x" * 64}).status_code == 403
    assert snapshot(conn) == before


def test_the_schedule_as_of_today(console, conn, app, town):
    page = console.get("/backlog").text
    assert 'href="/backlog?now=1"' in page
    now = console.get("/backlog?now=1")
    assert now.status_code == 200 and "時点の見通し" in now.text
    config = app.state.ctx.config
    expected = backlog.schedule(
        conn, config, workspace_today(conn), per_week(conn, config.triage.settings.assessments_per_week)
    )
    shows_the_plan(now.text, expected, config)
    assert "/backlog/1/accept" not in now.text  # a view, not the plan to decide


def test_without_a_plan_the_page_says_so(console, conn, workspace, rules, cfg):
    add_household(conn, "HE0", person(80, "世帯主", ("care_level", "要介護1")), area="中央")
    cycle(conn, workspace, rules, cfg)
    page = console.get("/backlog")
    assert page.status_code == 200 and "対応計画はありません" in page.text
    assert '<form method="post" action="/backlog' not in page.text
