"""/cases (filters: state, conference, lead agency, overdue; search by case id) and
/cases/{case_id}: the case's flags with the Japanese explanation (`engine explain`), its
timeline (`engine history`), next dated step, lead, roles, the questions out to agencies
(lead requests, actions, checkpoints) with their state, and 参加支援 (participation.py)."""

from __future__ import annotations

import sqlite3
from datetime import date

from fastapi import APIRouter, HTTPException, Query, Request
from fastapi.responses import RedirectResponse, Response
from pydantic import BaseModel

from engine.casework.history import Entry, history
from engine.casework.listing import CaseRow, cases, next_step
from engine.casework.outcome_file import CONSENT_LABELS
from engine.casework.watch import RESULT_LABELS
from engine.config.models import CONFERENCE_NAMES
from engine.rules.model import SEVERITY_JA
from engine.screening.explain import explain
from engine.store.chronology import workspace_today
from engine.store.lifecycle import CHECKPOINT_LABELS, STATE_LABELS
from engine.support.vocabulary import ACTION_STATE_LABELS
from engine.triage.pathways import pathway_of
from engine.web.app import Ctx, Db, WebContext
from engine.web.console import participation
from engine.web.session import Coordinator, User, page

router = APIRouter()

SHOWN = 200  # rows of the case list on one page
ROLE_LABELS = {"lead": "主担当機関", "participant": "参加機関", "owner": "要対協等の担当機関"}
REQUEST_STATES = {"pending": "回答待ち", "accepted": "受諾", "declined": "辞退", "cancelled": "取り下げ"}
ACTOR_LABELS = {  # the engine's own actors (engine.store.lifecycle.SYSTEM_ACTORS); a person's name is shown as is
    "nightly": "自動（夜間処理）",
    "sweep": "自動（日次の確認）",
    "dispatch": "自動（メール送信）",
    "engine": "自動（システム）",
    "web": "コンソール",
}
CHECKPOINT_STATES = {"pending": "予定", "asked": "照会中（回答待ち）", "done": "回答済み", "cancelled": "取り消し"}


class Filters(BaseModel):
    state: str = ""
    conference: str = ""
    lead: str = ""
    overdue: bool = False
    q: str = ""


def listed(conn: sqlite3.Connection, on: date, f: Filters) -> list[CaseRow]:
    """The cases the filters keep (`engine cases` rows, oldest first)."""
    kinds = dict(conn.execute("SELECT case_id, conference_type FROM cases").fetchall())
    q = f.q.strip().casefold()
    return [
        row
        for row in cases(conn, on, f.state or None)
        if (not f.conference or kinds.get(row.case_id) == f.conference)
        and (not f.lead or row.lead_agency_id == f.lead)
        and (not f.overdue or (row.next_on is not None and row.next_on < on.isoformat()))
        and (not q or q in row.case_id.casefold())
    ]


@router.get("/cases")
def cases_page(
    request: Request,
    state: str = Query("", max_length=40),
    conference: str = Query("", max_length=40),
    lead: str = Query("", max_length=100),
    overdue: bool = False,
    q: str = Query("", max_length=100),
    user: User = Coordinator,
    ctx: WebContext = Ctx,
    conn: sqlite3.Connection = Db,
) -> Response:
    f = Filters(
        state=state if state in STATE_LABELS else "",
        conference=conference if conference in CONFERENCE_NAMES else "",
        lead=lead if lead in ctx.config.agencies else "",
        overdue=overdue,
        q=q,
    )
    wanted = q.strip().upper()
    if wanted and conn.execute("SELECT 1 FROM cases WHERE case_id = ?", (wanted,)).fetchone():
        return RedirectResponse(f"/cases/{wanted}", status_code=303)  # a whole case id opens the case
    on = workspace_today(conn)
    rows = listed(conn, on, f)
    return page(
        request,
        user,
        "console/cases.html.j2",
        rows=rows[:SHOWN],
        total=len(rows),
        filters=f,
        on=on,
        states=STATE_LABELS,
        conferences=ctx.config.conference.names,
        agencies={a.id: a.name for a in ctx.config.agencies.values()},
        consent=CONSENT_LABELS,
    )


class Flag(BaseModel):
    rule_id: str
    title: str
    severity: str
    status: str
    first_detected: str
    explanation: list[str]


class Question(BaseModel):
    """Something asked of an agency on this case, and where it stands."""

    kind: str  # 受諾依頼 | 役割 | the checkpoint's label
    agency_id: str | None
    what: str
    asked_on: str | None
    due_on: str | None
    state: str
    open: bool
    answer: str = ""


def flags_of(conn: sqlite3.Connection, ctx: WebContext, case_id: str, household_id: str, on: date) -> list[Flag]:
    out = []
    for rule_id, severity, status, first in conn.execute(
        "SELECT f.rule_id, f.severity, f.status, f.first_detected FROM case_flags cf JOIN flags f ON f.flag_id = cf.flag_id "
        "WHERE cf.case_id = ? ORDER BY f.flag_id",
        (case_id,),
    ):
        rule = ctx.rules.flags.get(rule_id)
        lines = explain(conn, ctx.rules, household_id, on, rule_id).splitlines()[1:] if rule else []
        out.append(
            Flag(
                rule_id=rule_id,
                title=rule.title if rule else "（現在のルールにはないフラグ）",
                severity=SEVERITY_JA.get(severity, severity),
                status="継続中" if status == "open" else "解消",
                first_detected=first,
                explanation=[line for line in lines if not line.startswith("記録されているフラグ")],
            )
        )
    return out


def questions(conn: sqlite3.Connection, case_id: str) -> list[Question]:
    out = [
        Question(
            kind="受諾依頼",
            agency_id=a,
            what="主担当機関の受諾",
            asked_on=asked,
            due_on=due,
            state=REQUEST_STATES.get(s, s),
            open=s == "pending",
            answer=(f"{answered}" if answered else "") + (f"（理由: {reason}）" if reason else ""),
        )
        for a, asked, due, s, answered, reason in conn.execute(
            "SELECT agency_id, requested_on, due_on, status, answered_on, reason FROM lead_requests WHERE case_id = ? ORDER BY request_id",
            (case_id,),
        )
    ]
    out += [
        Question(
            kind="役割",
            agency_id=a,
            what=action,
            asked_on=None,
            due_on=due,
            state=ACTION_STATE_LABELS.get(s, s),
            open=s == "open",
            answer=done or "",
        )
        for a, action, due, s, done in conn.execute(
            "SELECT agency_id, action, due_on, status, done_on FROM case_actions WHERE case_id = ? ORDER BY action_id",
            (case_id,),
        )
    ]
    out += [
        Question(
            kind=CHECKPOINT_LABELS.get(k, k),
            agency_id=None,
            what=CHECKPOINT_LABELS.get(k, k),
            asked_on=asked,
            due_on=answer_due or due,
            state=CHECKPOINT_STATES.get(s, s),
            open=s in ("pending", "asked"),
            answer=" ".join(x for x in (done or "", RESULT_LABELS.get(result or "", result or "")) if x),
        )
        for k, due, s, asked, answer_due, result, done in conn.execute(
            "SELECT kind, due_on, status, asked_on, answer_due, result, done_on FROM checkpoints WHERE case_id = ? ORDER BY checkpoint_id",
            (case_id,),
        )
    ]
    return out


@router.get("/cases/{case_id}")
def case_page(
    request: Request, case_id: str, user: User = Coordinator, ctx: WebContext = Ctx, conn: sqlite3.Connection = Db
) -> Response:
    return show_case(request, user, ctx, conn, case_id)


def show_case(
    request: Request,
    user: User,
    ctx: WebContext,
    conn: sqlite3.Connection,
    case_id: str,
    *,
    status_code: int = 200,
    refused: dict | None = None,
) -> Response:
    """The case page; `refused`: a 参加支援 form refused (its key `form`, the `message`, what was typed)."""
    row = conn.execute(
        "SELECT household_id, status, opened_on, severity, conference_type, conference_basis, lead_agency_id, "
        "lead_confirmed_on, lead_reason, meeting_id, routed_to, consent_state, previous_case_id, reopen_count "
        "FROM cases WHERE case_id = ?",
        (case_id[:40],),
    ).fetchone()
    if row is None:
        raise HTTPException(status_code=404, detail=f"事案 {case_id[:40]} はありません。")
    keys = (
        "household_id status opened_on severity conference_type conference_basis lead_agency_id lead_confirmed_on "
        "lead_reason meeting_id routed_to consent_state previous_case_id reopen_count"
    ).split()
    case = dict(zip(keys, row, strict=True))
    on = workspace_today(conn)
    next_on, next_what = next_step(conn, case_id, case["status"], on)
    timeline: list[Entry] = history(conn, case_id)
    roles = conn.execute(
        "SELECT agency_id, role FROM case_agencies WHERE case_id = ? ORDER BY role = 'lead' DESC, agency_id", (case_id,)
    ).fetchall()
    return page(
        request,
        user,
        "console/case.html.j2",
        status_code=status_code,
        case_id=case_id,
        case=case,
        on=on,
        next_on=next_on,
        next_what=next_what,
        flags=flags_of(conn, ctx, case_id, case["household_id"], on),
        questions=questions(conn, case_id),
        timeline=timeline,
        roles=roles,
        role_labels=ROLE_LABELS,
        actors=ACTOR_LABELS,
        states=STATE_LABELS,
        conferences=ctx.config.conference.names,
        agencies={a.id: a.name for a in ctx.config.agencies.values()},
        consent=CONSENT_LABELS,
        severity=SEVERITY_JA,
        participation=participation.section(conn, ctx, case_id, on),
        pathway=pathway_of(conn, case_id),
        refused=refused or {},
    )
