"""Correct or annotate one entry of a case's history: /cases/{case}/entries/{seq}.

Both append: a correction (engine/casework/correction.py, what `engine correct` does) withdraws or
re-dates a contact or a done action; a note (engine/casework/notes.py) adds a remark to any entry
(a contact, a done action, a concern, an outcome…). The page shows the entry with every correction
and note made on it since. What cannot be corrected is said, with why, instead of the form.
"""

from __future__ import annotations

import sqlite3

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse

from engine.casework.correction import correct_entry
from engine.casework.history import CORRECTABLE_EVENTS, EVENT_LABELS, Entry, history
from engine.casework.notes import NOTE_MAX, add_note
from engine.store.chronology import DateRefused, workspace_today
from engine.store.lifecycle import CaseNotFound
from engine.support.errors import EngineError
from engine.web.app import Ctx, Db, WebContext
from engine.web.console.forms import date_field, dating, day_problem, japanese, see_other
from engine.web.render import render
from engine.web.session import Coordinator, User, acting, check_form, form_csrf

router = APIRouter()

NOT_CORRECTABLE = (
    "「{label}」は訂正できません。訂正できるのは接触の記録と役割の完了だけです: 事案を動かした決定"
    "（会議の結果、受諾・辞退、見守りの回答）は、次の会議の結果で改めてください。補足はメモとして残せます。"
)


def entry_and_after(conn: sqlite3.Connection, case_id: str, seq: int) -> tuple[Entry, list[Entry]]:
    """The entry, and the corrections and notes made on it since (404 when the case has no such entry)."""
    try:
        entries = history(conn, case_id)
    except CaseNotFound:
        raise HTTPException(status_code=404) from None
    found = [e for e in entries if e.seq == seq and e.event not in ("mail_sent", "mail_failed")]
    if not found:
        raise HTTPException(status_code=404)
    later = [
        e
        for e in entries
        if e.detail and (e.detail.get("corrects") == seq or e.detail.get("about") == seq) and e.seq > seq
    ]
    return found[0], later


def _page(request, user, conn, case_id: str, seq: int, *, form=None, problems=None, status_code=200):
    entry, later = entry_and_after(conn, case_id, seq)
    withdrawn = any(e.event == "corrected" and e.detail.get("to") is None for e in later)
    correctable = entry.event in CORRECTABLE_EVENTS and not withdrawn
    return render(
        request,
        "console/correct.html.j2",
        status_code=status_code,
        user=user,
        csrf=form_csrf(request, user),
        case_id=case_id,
        entry=entry,
        later=later,
        correctable=correctable,
        withdrawn=withdrawn,
        why_not=None if correctable or withdrawn else NOT_CORRECTABLE.format(label=EVENT_LABELS.get(entry.event)),
        form=form or {},
        problems=problems or {},
        note_max=NOTE_MAX,
        today=workspace_today(conn),
    )


@router.get("/cases/{case_id}/entries/{seq}", response_class=HTMLResponse)
def entry_page(case_id: str, seq: int, request: Request, user: User = Coordinator, conn: sqlite3.Connection = Db):
    return _page(request, user, conn, case_id, seq)


@router.post("/cases/{case_id}/entries/{seq}/correct", response_class=HTMLResponse)
def correct(
    case_id: str,
    seq: int,
    request: Request,
    user: User = Coordinator,
    ctx: WebContext = Ctx,
    conn: sqlite3.Connection = Db,
    how: str = Form(""),
    on: str = Form(""),
    reason: str = Form(""),
    csrf: str | None = Form(None),
):
    """Withdraw the entry (how=withdraw) or re-date it (how=redate, on=the day it really happened)."""
    check_form(request, user, csrf)
    entry_and_after(conn, case_id, seq)
    form = {"how": how, "on": on, "reason": reason}
    problems: dict[str, list[str]] = {}
    day = None
    if how not in ("withdraw", "redate"):
        problems["how"] = ["取り消すか、日付を訂正するかを選んでください。"]
    elif how == "redate":
        if not on.strip():
            problems["on"] = ["実際にあった日を入力してください。"]
        else:
            day, wrong = day_problem(on, workspace_today(conn))
            if wrong:
                problems["on"] = [wrong]
    if not problems:
        try:
            with acting(user) as actor:
                correct_entry(conn, ctx.config, case_id, seq, reason, actor, to=day, dating=dating(conn, ""))
        except DateRefused as err:
            field = "reason" if date_field(str(err)) == "backdate_reason" else "on"
            problems[field] = [japanese(str(err))]
        except EngineError as err:
            problems["reason" if str(err).startswith("--reason") else "_"] = [japanese(str(err))]
    if problems:
        return _page(request, user, conn, case_id, seq, form=form, problems=problems, status_code=400)
    return see_other(request, f"/cases/{case_id}/entries/{seq}")


@router.post("/cases/{case_id}/entries/{seq}/note", response_class=HTMLResponse)
def note(
    case_id: str,
    seq: int,
    request: Request,
    user: User = Coordinator,
    ctx: WebContext = Ctx,
    conn: sqlite3.Connection = Db,
    text: str = Form(""),
    csrf: str | None = Form(None),
):
    """A note on the entry (refused when it holds personal data of the household)."""
    check_form(request, user, csrf)
    entry_and_after(conn, case_id, seq)
    try:
        with acting(user) as actor:
            add_note(conn, ctx.config, case_id, seq, text, actor)
    except EngineError as err:
        return _page(
            request, user, conn, case_id, seq, form={"text": text}, problems={"text": [str(err)]}, status_code=400
        )
    return see_other(request, f"/cases/{case_id}/entries/{seq}")
