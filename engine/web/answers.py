"""The pages an agency opens from the link in its e-mail, without an account: BASE_URL/a/TOKEN.

GET shows what is asked and changes nothing (mail scanners and previews open links); the answer
is a POST carrying the link's CSRF token, and it uses the link once (engine/links does the work).
Both are rate limited per client address and per link. A token that is unknown or tampered with
gets one plain 404 page, the same for all: nothing tells whether a case exists. The page shows only
the question's facts, which engine/links minimised for that agency (a DV-locked case: its id).
"""

from __future__ import annotations

import hashlib
import sqlite3
import threading
from dataclasses import dataclass, field
from datetime import datetime

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse

from engine import links
from engine.links.questions import TITLES
from engine.papers.agenda import NOTICE_106
from engine.store.chronology import workspace_today
from engine.support import clock
from engine.support.dates import wareki_with_weekday
from engine.web.app import Ctx, Db, WebContext
from engine.web.render import render
from engine.web.security import RateLimiter, check_csrf, csrf_token

router = APIRouter()

PER_ADDRESS = 30  # requests per minute from one client address (GET and POST together)
PER_LINK = 10  # requests per minute on one link, from anywhere
WINDOW = 60.0  # seconds
MAX_TEXT = 1000  # the form's limit of a reason or a note (engine/links refuses longer ones: NOTE_MAX)

DUE_LABELS = {
    "lead_request": "回答期限",
    "action": "期日",
    "checkpoint": "回答期限",
    "attendance": "開催日",
    "referral": "回答期限",
    "followup": "回答期限",
}
STATE_STATUS = {"answered": 409, "expired": 410, "revoked": 410}  # a POST to a link that cannot be used


@dataclass
class Limits:
    """The answer routes' rate limits, one set per app (in memory)."""

    address: RateLimiter = field(default_factory=lambda: RateLimiter(PER_ADDRESS, WINDOW))
    link: RateLimiter = field(default_factory=lambda: RateLimiter(PER_LINK, WINDOW))


_MAKING = threading.Lock()


def _limit(request: Request, token: str) -> None:
    """429 when this address, or this link, asked too often (before anything is looked up)."""
    with _MAKING:
        limits = getattr(request.app.state, "answer_limits", None)
        if limits is None:
            limits = request.app.state.answer_limits = Limits()
    limits.address.check(request.client.host if request.client else "-")
    limits.link.check(hashlib.sha256(token.encode("utf-8", "replace")).hexdigest())


def _question(conn: sqlite3.Connection, ctx: WebContext, token: str) -> links.Question | None:
    """The link's question; None when no link has this token (unknown, cut short, tampered with)."""
    try:
        return links.lookup(conn, ctx.config, token, workspace_today(conn))
    except links.LinkNotFound:
        return None


def _missing(request: Request, ctx: WebContext) -> HTMLResponse:
    """The same 404 for every token that is not a link: it tells nothing about any case."""
    return render(request, "answer_missing.html.j2", status_code=404, office=office(ctx))


def office(ctx: WebContext, question: links.Question | None = None) -> str:
    """Whom an agency contacts: the coordinator's office (the sender of every e-mail), not a person;
    a place of 参加支援 the 参加支援 担当 that wrote to it."""
    if question is not None and question.kind in ("referral", "followup") and not question.case_id:
        from engine.participation.mail import SENDER

        return SENDER
    return ctx.config.name_of("support") + "事務局"


def when(stamp: str | None) -> str:
    """'2026-12-07 09:00' -> '令和8年12月7日（月）9時00分'; a day alone ('2026-12-07', answered by
    telephone through the coordinator) -> '令和8年12月7日（月）'."""
    if not stamp:
        return ""
    try:
        moment = datetime.fromisoformat(stamp)
    except ValueError:
        return stamp
    if moment.tzinfo is not None:
        moment = moment.astimezone(clock.TOKYO)
    day = wareki_with_weekday(moment.date())
    return day if len(stamp) <= 10 else f"{day}{moment.hour}時{moment.minute:02d}分"


def _confidentiality(conn: sqlite3.Connection, ctx: WebContext, question: links.Question) -> str | None:
    """The agendas' 106条の6 notice when the question comes from a 支援会議 (none for 重層的支援会議,
    nor for a place of 参加支援: it is never told which conference knows the person)."""
    if question.kind in ("referral", "followup") and not question.case_id:
        return None
    if question.case_id:
        row = conn.execute("SELECT conference_type FROM cases WHERE case_id = ?", (question.case_id,)).fetchone()
    elif question.meeting_id:
        row = conn.execute(
            "SELECT conference_type FROM meetings WHERE meeting_id = ?", (question.meeting_id,)
        ).fetchone()
    else:
        row = None
    kind = row[0] if row else "support"  # unknown: the stricter notice
    return NOTICE_106.format(name=ctx.config.name_of(kind)) if kind == "support" else None


def note_label(choices: list[links.Choice]) -> str | None:
    """The label of the one text field (engine/links takes one note): a reason where a choice needs
    one, a note where one is allowed; None when no choice takes any text."""
    needs = "」「".join(c.label for c in choices if c.needs_reason)
    optional = any(c.allows_note and not c.needs_reason for c in choices)
    if needs:
        return f"{'理由・補足' if optional else '理由'}（「{needs}」を選ぶ場合は、理由を必ずご記入ください）"
    return "補足（任意）" if optional else None


def _same(a: links.Question, b: links.Question) -> bool:
    return (a.kind, a.case_id, a.meeting_id, a.action_id) == (b.kind, b.case_id, b.meeting_id, b.action_id)


def _page(
    request: Request,
    conn: sqlite3.Connection,
    ctx: WebContext,
    question: links.Question,
    *,
    status_code: int = 200,
    problems: dict[str, str] | None = None,
    form: dict[str, str] | None = None,
) -> HTMLResponse:
    others = []
    if question.state == "open" and question.case_id and not question.locked:  # DV: nothing but the case id
        others = [
            q
            for q in links.open_questions(conn, ctx.config, question.agency_id, question.case_id, workspace_today(conn))
            if not _same(q, question)
        ]
    return render(
        request,
        "answer.html.j2",
        status_code=status_code,
        q=question,
        title=TITLES[question.kind],
        titles=TITLES,
        others=others,
        office=office(ctx, question),
        notice=_confidentiality(conn, ctx, question),
        answered_at=when(question.answered_at),
        due_labels=DUE_LABELS,
        note_label=note_label(question.choices),
        csrf=csrf_token(ctx.secret, question.scope) if question.state == "open" else "",
        max_text=MAX_TEXT,
        problems=problems or {},
        form=form or {},
    )


@router.get("/a/{token}", response_class=HTMLResponse)
def show(token: str, request: Request, ctx: WebContext = Ctx, conn: sqlite3.Connection = Db) -> HTMLResponse:
    """What is asked, and the form to answer it: looking changes nothing."""
    _limit(request, token)
    question = _question(conn, ctx, token)
    return _missing(request, ctx) if question is None else _page(request, conn, ctx, question)


@router.post("/a/{token}", response_class=HTMLResponse)
def answer(
    token: str,
    request: Request,
    ctx: WebContext = Ctx,
    conn: sqlite3.Connection = Db,
    choice: str = Form(""),
    note: str = Form(""),
    csrf_token: str | None = Form(None),
):
    """The agency's answer: recorded once, then the page again (POST/redirect/GET) shows 回答済み."""
    _limit(request, token)
    question = _question(conn, ctx, token)
    if question is None:
        return _missing(request, ctx)
    check_csrf(request, ctx.secret, question.scope, csrf_token)
    if question.state != "open":
        return _page(request, conn, ctx, question, status_code=STATE_STATUS.get(question.state, 409))
    form = {"choice": choice, "note": note}
    if not any(c.value == choice for c in question.choices):
        return _page(
            request, conn, ctx, question, status_code=400, problems={"choice": "回答を選んでください。"}, form=form
        )
    try:
        links.answer(conn, ctx.config, ctx.rules, token, choice, note, workspace_today(conn))
    except links.AnswerRefused as err:
        return _page(request, conn, ctx, question, status_code=400, problems={"note": str(err)}, form=form)
    except (links.LinkUsed, links.LinkExpired, links.LinkRevoked, links.LinkNotFound):
        now = _question(conn, ctx, token)  # answered, expired or withdrawn since the form was shown
        if now is None:
            return _missing(request, ctx)
        return _page(request, conn, ctx, now, status_code=STATE_STATUS.get(now.state, 409))
    return RedirectResponse(request.url.path, status_code=303)
