"""/backlog (対応計画): the backlog plan of engine/triage/backlog.py, as `engine backlog` shows it —
the latest plan (its number, state, who decided it and when), the pace of assessments asked of one
agency a week, the first steps week by week for each pathway and each agency's assessments — and,
while the plan awaits the coordinator, the two forms that call what the CLI calls: accept it as it
is (`engine backlog accept N`) or accept it with another pace (`engine backlog change N --per-week
M`). `?now=1` shows where the first steps fall today instead (`engine backlog --now`).

Agencies are shown by name, pathways by their Japanese label, days in 和暦. A refusal (a pace that
is not a number from 1 to 1000, a plan no longer awaiting a decision) is shown beside the form on
the page again, with status 400, and nothing is recorded.
"""

from __future__ import annotations

import sqlite3
from datetime import date

from fastapi import APIRouter, Form, Query, Request
from fastapi.responses import Response
from pydantic import BaseModel

from engine.config import Config
from engine.store.chronology import workspace_today
from engine.triage import pathways
from engine.triage.backlog import COLUMNS, PLAN_STATES, Plan, PlanError, accept, change, load_plan, schedule
from engine.triage.model import PATHWAY_SHORT
from engine.web.app import Ctx, Db, WebContext
from engine.web.console.forms import see_other
from engine.web.session import Coordinator, User, acting, check_form, page

router = APIRouter()

PACE_MIN, PACE_MAX = 1, 1000
PACE_PROBLEM = f"1機関あたりの週の件数は {PACE_MIN} から {PACE_MAX} までの数字で入力してください。"
NO_AGENCY = "登録簿にない機関"
TYPED_MAX = 20  # characters of a refused pace shown again in its field


class AgencyRow(BaseModel):
    name: str
    weeks: list[int]  # assessments per week, from this week


class Shown(BaseModel):
    """What the page shows of a plan (or of the schedule as of today)."""

    plan_id: int | None
    status: str  # its label (PLAN_STATES)
    proposed: bool  # awaiting the coordinator: the forms are shown
    made_on: date
    decided_by: str | None
    decided_on: date | None
    per_week: int
    waiting: int
    overflow: int
    weeks: list[dict]  # {"number": 1.., "starts_on": date, "counts": [count of each of COLUMNS]}
    agencies: list[AgencyRow]


def shown(plan: Plan, config: Config) -> Shown:
    """The plan with its labels: the agencies by name (never their ids), the counts in COLUMNS' order."""
    decided_on = plan.decided_on
    if isinstance(decided_on, str):  # load_plan puts the stored text on the copy as it is
        decided_on = date.fromisoformat(decided_on)
    return Shown(
        plan_id=plan.plan_id,
        status=PLAN_STATES.get(plan.status, plan.status),
        proposed=plan.plan_id is not None and plan.status == "proposed",
        made_on=plan.made_on,
        decided_by=plan.decided_by,
        decided_on=decided_on,
        per_week=plan.per_week,
        waiting=plan.waiting,
        overflow=plan.overflow,
        weeks=[
            {"number": w.index + 1, "starts_on": w.starts_on, "counts": [w.counts.get(p, 0) for p in COLUMNS]}
            for w in plan.weeks
        ],
        agencies=[
            AgencyRow(name=config.agencies[a].name if a in config.agencies else NO_AGENCY, weeks=weeks)
            for a, weeks in plan.by_agency.items()
        ],
    )


def pace_of(text: str) -> int | None:
    """The pace a form gives (half- or full-width digits), None unless a number from 1 to 1000."""
    text = text.strip()
    if not text.isdecimal() or len(text) > 4:
        return None
    pace = int(text)
    return pace if PACE_MIN <= pace <= PACE_MAX else None


def _page(
    request: Request,
    user: User,
    ctx: WebContext,
    conn: sqlite3.Connection,
    *,
    now: bool = False,
    refused: dict | None = None,
    status_code: int = 200,
) -> Response:
    on = workspace_today(conn)
    plan = load_plan(conn)
    current = None
    if now:
        pace = pathways.per_week(conn, ctx.config.triage.settings.assessments_per_week)
        current = shown(schedule(conn, ctx.config, on, pace), ctx.config)
    return page(
        request,
        user,
        "console/backlog.html.j2",
        status_code=status_code,
        on=on,
        plan=shown(plan, ctx.config) if plan else None,
        current=current,
        columns=[PATHWAY_SHORT[p] for p in COLUMNS],
        refused=refused or {},
        pace_min=PACE_MIN,
        pace_max=PACE_MAX,
    )


@router.get("/backlog")
def backlog_page(
    request: Request,
    now: bool = Query(False),
    user: User = Coordinator,
    ctx: WebContext = Ctx,
    conn: sqlite3.Connection = Db,
) -> Response:
    return _page(request, user, ctx, conn, now=now)


@router.post("/backlog/{plan_id}/accept")
def accept_plan(
    plan_id: int,
    request: Request,
    user: User = Coordinator,
    ctx: WebContext = Ctx,
    conn: sqlite3.Connection = Db,
    csrf: str | None = Form(None),
) -> Response:
    """Accept the proposed plan as it is (`engine backlog accept N`)."""
    check_form(request, user, csrf)
    try:
        with acting(user) as actor:
            accept(conn, ctx.config, plan_id, workspace_today(conn), actor)
    except PlanError as err:
        refused = {"form": "accept", "message": str(err)}
        return _page(request, user, ctx, conn, refused=refused, status_code=400)
    return see_other(request, "/backlog")


@router.post("/backlog/{plan_id}/change")
def change_plan(
    plan_id: int,
    request: Request,
    user: User = Coordinator,
    ctx: WebContext = Ctx,
    conn: sqlite3.Connection = Db,
    per_week: str = Form(""),
    csrf: str | None = Form(None),
) -> Response:
    """Accept the proposed plan with another pace (`engine backlog change N --per-week M`)."""
    check_form(request, user, csrf)
    refused = {"form": "change", "per_week": per_week[:TYPED_MAX]}
    pace = pace_of(per_week)
    if pace is None:
        return _page(request, user, ctx, conn, refused={**refused, "message": PACE_PROBLEM}, status_code=400)
    try:
        with acting(user) as actor:
            change(conn, ctx.config, plan_id, pace, workspace_today(conn), actor)
    except PlanError as err:
        return _page(request, user, ctx, conn, refused={**refused, "message": str(err)}, status_code=400)
    return see_other(request, "/backlog")
