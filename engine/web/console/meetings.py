"""The console's meeting pages: /meetings (coming and past meetings) and /meetings/{id} (its cases,
the agencies invited, and every agenda version as each agency received it).

The lists come from engine/casework/listing.py (what `engine meetings` shows); an agenda version is
the e-mail queued in the outbox (what the agency was sent) or, before it was queued, the file
engine/papers/write.py wrote under WORKSPACE/agendas/<meeting>/. The coordinator's own version
(names, every silo) is never e-mailed: it is shown only here, behind the login.
"""

from __future__ import annotations

import json
import sqlite3
from datetime import date
from pathlib import Path
from typing import Annotated

from fastapi import APIRouter, HTTPException, Request
from fastapi import Path as FastPath
from fastapi.responses import HTMLResponse
from pydantic import BaseModel

from engine.casework.listing import MeetingRow, meetings
from engine.casework.steps import owed_outcomes
from engine.outbox.keys import MessageKey
from engine.papers.write import COORDINATOR
from engine.store.chronology import workspace_today
from engine.store.lifecycle import STATE_LABELS
from engine.web.app import Ctx, Db, WebContext
from engine.web.render import render
from engine.web.session import Coordinator, User, form_csrf

router = APIRouter()

MAIL_STATUS = {
    "pending": "送信待ち",
    "sending": "送信中",
    "sent": "送信済み",
    "failed": "送信失敗（再送します）",
    "superseded": "新しい版に置き換え（未送信）",
    "withheld": "送信保留",
}


class AgendaVersion(BaseModel):
    agency_id: str
    agency: str  # its name
    version: int
    rendered_at: str
    mail: str | None = None  # the e-mail's state (None: the coordinator's version, never e-mailed)
    sent_at: str | None = None


def agenda_versions(conn: sqlite3.Connection, ctx: WebContext, meeting_id: str) -> list[AgendaVersion]:
    """Every agenda version written for the meeting, newest first per agency, the coordinator's last."""
    out = []
    for agency_id, version, rendered_at in conn.execute(
        "SELECT agency_id, version, rendered_at FROM agendas WHERE meeting_id = ? "
        "ORDER BY agency_id = ?, agency_id, version DESC",
        (meeting_id, COORDINATOR),
    ):
        if agency_id == COORDINATOR:
            out.append(
                AgendaVersion(
                    agency_id=agency_id, agency="コーディネーター用", version=version, rendered_at=rendered_at
                )
            )
            continue
        mail = conn.execute(
            "SELECT status, sent_at FROM outbox WHERE message_key = ?",
            (str(MessageKey.agenda(meeting_id, agency_id, version)),),
        ).fetchone()
        out.append(
            AgendaVersion(
                agency_id=agency_id,
                agency=agency_name(ctx, agency_id),
                version=version,
                rendered_at=rendered_at,
                mail=MAIL_STATUS.get(mail[0], mail[0]) if mail else "未キュー",
                sent_at=mail[1] if mail else None,
            )
        )
    return out


def agency_name(ctx: WebContext, agency_id: str | None) -> str:
    if not agency_id:
        return "—"
    agency = ctx.config.agencies.get(agency_id)
    return agency.name if agency else agency_id


def _meeting(conn: sqlite3.Connection, ctx: WebContext, meeting_id: str) -> MeetingRow:
    found = [m for m in meetings(conn, ctx.config, date.min, include_past=True) if m.meeting_id == meeting_id]
    if not found:
        raise HTTPException(status_code=404)
    return found[0]


@router.get("/meetings", response_class=HTMLResponse)
def meetings_page(request: Request, user: User = Coordinator, ctx: WebContext = Ctx, conn: sqlite3.Connection = Db):
    today = workspace_today(conn)
    owed: dict[str, int] = {}
    for _, meeting_id, _ in owed_outcomes(conn, today.isoformat(), inclusive=True):
        owed[meeting_id] = owed.get(meeting_id, 0) + 1
    rows = meetings(conn, ctx.config, today, include_past=True)
    return render(
        request,
        "console/meetings.html.j2",
        user=user,
        csrf=form_csrf(request, user),
        coming=[m for m in rows if m.held_on >= today.isoformat()],
        past=[m for m in reversed(rows) if m.held_on < today.isoformat()],
        owed=owed,
        today=today,
    )


@router.get("/meetings/{meeting_id}", response_class=HTMLResponse)
def meeting_page(
    meeting_id: str, request: Request, user: User = Coordinator, ctx: WebContext = Ctx, conn: sqlite3.Connection = Db
):
    meeting = _meeting(conn, ctx, meeting_id)
    today = workspace_today(conn)
    owed = {c for c, m, _ in owed_outcomes(conn, today.isoformat(), inclusive=True) if m == meeting_id}
    states = dict(conn.execute("SELECT case_id, status FROM cases"))
    invited = sorted({a for c in meeting.cases for a in c.agencies}, key=lambda a: agency_name(ctx, a))
    versions = agenda_versions(conn, ctx, meeting_id)
    return render(
        request,
        "console/meetings_detail.html.j2",
        user=user,
        csrf=form_csrf(request, user),
        m=meeting,
        held=meeting.held_on <= today.isoformat(),
        owed=owed,
        states={c: STATE_LABELS.get(s, s) for c, s in states.items()},
        agency_name=lambda a: agency_name(ctx, a),
        invited=[agency_name(ctx, a) for a in invited],
        agencies=[v for v in versions if v.agency_id != COORDINATOR],
        coordinator=[v for v in versions if v.agency_id == COORDINATOR],
    )


def _version(conn: sqlite3.Connection, ctx: WebContext, meeting_id: str, agency_id: str, version: int) -> Path:
    """The folder of one agenda version (404 when there is none)."""
    row = conn.execute(
        "SELECT folder FROM agendas WHERE meeting_id = ? AND agency_id = ? AND version = ?",
        (meeting_id, agency_id, version),
    ).fetchone()
    if row is None:
        raise HTTPException(status_code=404)
    root = (ctx.workspace / "agendas").resolve()
    folder = (ctx.workspace / row[0]).resolve()
    if not folder.is_relative_to(root):
        raise HTTPException(status_code=404)
    return folder


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except OSError:
        raise HTTPException(status_code=404, detail="議題の控えのファイルが見つかりません。") from None


MAX_VERSION = 2**31  # an agenda version number in a URL (SQLite's INTEGER is 64-bit; no meeting has more)


@router.get("/meetings/{meeting_id}/agendas/{agency_id}/v{version}", response_class=HTMLResponse)
def agenda_page(
    meeting_id: str,
    agency_id: str,
    version: Annotated[int, FastPath(ge=1, le=MAX_VERSION)],
    request: Request,
    user: User = Coordinator,
    ctx: WebContext = Ctx,
    conn: sqlite3.Connection = Db,
):
    """One agency's agenda version, as it was e-mailed (its text part), with the e-mail's state."""
    if agency_id == COORDINATOR:
        return coordinator_agenda(meeting_id, version, user, ctx, conn)
    folder = _version(conn, ctx, meeting_id, agency_id, version)
    mail = conn.execute(
        "SELECT subject, parts, status, sent_at FROM outbox WHERE message_key = ?",
        (str(MessageKey.agenda(meeting_id, agency_id, version)),),
    ).fetchone()
    text = json.loads(mail[1]).get("text") if mail else None
    return render(
        request,
        "console/meetings_agenda.html.j2",
        user=user,
        csrf=form_csrf(request, user),
        meeting_id=meeting_id,
        agency=agency_name(ctx, agency_id),
        version=version,
        subject=mail[0] if mail else None,
        mail=MAIL_STATUS.get(mail[2], mail[2]) if mail else "未キュー",
        sent_at=mail[3] if mail else None,
        text=text if text is not None else _read(folder / f"{agency_id}.v{version}.txt"),
    )


def coordinator_agenda(meeting_id: str, version: int, user: User, ctx: WebContext, conn: sqlite3.Connection):
    """The coordinator's version (names, every silo): the file as written, under the console's headers
    (no script can run in it: the Content-Security-Policy allows none)."""
    folder = _version(conn, ctx, meeting_id, COORDINATOR, version)
    return HTMLResponse(_read(folder / f"{COORDINATOR}.v{version}.html"))
