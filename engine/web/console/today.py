"""/ (Today): what the coordinator must act on today — the digest's parts, each from the plain
function behind its command: escalations, the gap audit (`engine audit`), cases waiting for a
meeting slot and outcomes owed (`engine cases`), failed e-mails (`engine outbox`)."""

from __future__ import annotations

import sqlite3
from datetime import date

from fastapi import APIRouter, Request
from fastapi.responses import Response
from pydantic import BaseModel

from engine.casework.audit import KINDS, Violation, run_audit
from engine.casework.escalations import escalations as open_escalations
from engine.casework.listing import OutboxRow, outbox
from engine.casework.steps import owed_outcomes
from engine.config import Config
from engine.store.chronology import workspace_today
from engine.web.app import Ctx, Db, WebContext
from engine.web.session import Coordinator, User, page

router = APIRouter()

SHOWN = 100  # rows of each list on the page (the count says how many there are)


class Escalation(BaseModel):
    case_id: str | None
    raised_on: str
    detail: str
    new: bool  # not yet in a digest
    age: int = 0  # business days nobody has acted on it (0: settled)
    settled_how: str | None = None  # Japanese: how it was acted on


class Owed(BaseModel):
    case_id: str
    meeting_id: str
    held_on: str


class Today(BaseModel):
    on: date
    open_cases: int
    escalations: list[Escalation]
    violations: list[Violation]
    waiting: list[str]  # cases detected (or reopened) without a meeting: waiting for a free slot
    owed: list[Owed]  # meetings held before today whose outcome is not recorded
    failed_mail: list[OutboxRow]


def today(conn: sqlite3.Connection, config: Config, on: date) -> Today:
    report = run_audit(conn, config, on)
    fresh = {k for (k,) in conn.execute("SELECT subject_key FROM escalations WHERE digest_on IS NULL")}
    escalations = [  # nobody acted on them yet, oldest first; then the settled ones (engine/casework/escalations.py)
        Escalation(
            case_id=e.case_id,
            raised_on=e.raised_on.isoformat(),
            detail=e.detail,
            new=e.key in fresh,
            age=e.age,
            settled_how=e.settled_how,
        )
        for e in open_escalations(conn, config, on)
    ]
    waiting = [
        r[0]
        for r in conn.execute(
            "SELECT case_id FROM cases WHERE status IN ('detected', 'reopened') AND meeting_id IS NULL ORDER BY case_id"
        )
    ]
    owed = [Owed(case_id=c, meeting_id=m, held_on=h) for c, m, h in owed_outcomes(conn, on.isoformat())]
    return Today(
        on=on,
        open_cases=report.open_cases,
        escalations=escalations,
        violations=report.violations,
        waiting=waiting,
        owed=owed,
        failed_mail=outbox(conn, "failed")[1],
    )


@router.get("/")
def today_page(
    request: Request, user: User = Coordinator, ctx: WebContext = Ctx, conn: sqlite3.Connection = Db
) -> Response:
    config = ctx.config
    return page(
        request,
        user,
        "console/today.html.j2",
        today=today(conn, config, workspace_today(conn)),
        kinds=KINDS,
        agencies={a.id: a.name for a in config.agencies.values()},
        shown=SHOWN,
    )
