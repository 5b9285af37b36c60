"""参加支援 on the console's case page: the case's needs, its referrals with their follow-ups, the
proposals of engine/participation/matching.py, and three forms that call what the CLI calls —
a referral (`engine refer`), an answer about a referral given by telephone (`engine referral N
--answer`) and a follow-up's answer (`engine followup N --result`).

A refusal (the referral's states, the date policy, a note holding personal data) is shown on the
case page beside its form, with status 400, and nothing is recorded.
"""

from __future__ import annotations

import re
import sqlite3
from datetime import date

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel

from engine.participation.answers import COORDINATOR_CHOICES, allowed, answer_followup, answer_referral, refer_case
from engine.participation.listing import ReferralRow, list_referrals
from engine.participation.matching import MemberProposals, propose
from engine.participation.persons import member_label
from engine.policy.personal_data import holds_personal_data, personal_tokens
from engine.store.chronology import DateRefused, workspace_today
from engine.support.errors import EngineError
from engine.support.vocabulary import (
    FOLLOWUP_LEAD_LABELS,
    FOLLOWUP_PLACE_LABELS,
    NEED_LABELS,
    PLACE_CATEGORY_LABELS,
    need_label,
)
from engine.web.app import Ctx, Db, WebContext
from engine.web.console.forms import PERSONAL, dating, day_problem, japanese, see_other
from engine.web.session import Coordinator, User, acting, check_form

router = APIRouter()

NOTE_MAX = 300
PLACES_SHOWN = 3  # proposed places shown per category (the best ranked)
SIDES = {"lead": FOLLOWUP_LEAD_LABELS, "place": FOLLOWUP_PLACE_LABELS}
NEED_STATES = {"referred": "紹介中", "open": "未紹介", "cancelled": "取消し"}
WHAT = {"referral": "紹介 {0} の依頼日", "follow-up": "定着の確認 {0} の確認日", "case": "事案 {0} の開始日"}


class NeedRow(BaseModel):
    need_id: int
    label: str
    member: str  # 世帯員N（50代・子）
    state: str  # 紹介中 | 理由あり（…） | 未紹介


class Awaiting(BaseModel):
    """A follow-up that can be answered now (asked, or due today or before)."""

    followup_id: int
    referral_id: int
    asked: str  # 主担当機関 | the place's name
    due_on: date
    choices: list[tuple[str, str]]


class Section(BaseModel):
    needs: list[NeedRow]
    referrals: list[ReferralRow]
    answers: dict[int, list[tuple[str, str]]]  # referral id -> the answers its state allows
    awaiting: dict[int, list[Awaiting]]  # referral id -> its follow-ups awaiting an answer
    proposals: list[MemberProposals] | None  # None: none could be made (proposal_problem says why)
    proposal_problem: str = ""
    members: list[tuple[str, str]]  # (N, 世帯員N（50代・子）)
    places: list[tuple[str, list[tuple[str, str]]]]  # (category label, [(place id, name)]): active places
    need_choices: list[tuple[str, str]]
    referred: dict[str, str] = {}  # "person id|place id" -> 紹介 N（its state）: a place proposed and already referred

    def forms(self) -> set[str]:
        """The keys of the places on the page where a form's refusal is shown."""
        keys = {"refer"} | {f"referral-{r.referral_id}" for r in self.referrals}
        return keys | {f"followup-{f.followup_id}" for fs in self.awaiting.values() for f in fs}


def needs_of(conn: sqlite3.Connection, case_id: str, on: date) -> list[NeedRow]:
    return [
        NeedRow(
            need_id=need_id,
            label=need_label(need),
            member=member_label(conn, case_id, person, on),
            state=f"理由あり（{reason}）"
            if status == "settled"
            else f"紹介できる場所なし（{reason}）"
            if status == "unmatched"
            else NEED_STATES.get(status, status),
        )
        for need_id, person, need, reason, status in conn.execute(
            "SELECT need_id, person_id, need, reason, status FROM participation_needs WHERE case_id = ? ORDER BY need_id",
            (case_id,),
        )
    ]


def awaiting_of(conn: sqlite3.Connection, ctx: WebContext, case_id: str, on: date) -> dict[int, list[Awaiting]]:
    out: dict[int, list[Awaiting]] = {}
    for fid, rid, side, place_id, due in conn.execute(
        "SELECT f.followup_id, f.referral_id, f.side, r.place_id, f.due_on FROM followups f "
        "JOIN referrals r ON r.referral_id = f.referral_id WHERE r.case_id = ? "
        "AND (f.status = 'asked' OR (f.status = 'pending' AND f.due_on <= ?)) ORDER BY f.due_on, f.side",
        (case_id, on.isoformat()),
    ):
        place = ctx.config.participation.places.get(place_id)
        out.setdefault(rid, []).append(
            Awaiting(
                followup_id=fid,
                referral_id=rid,
                asked="主担当機関" if side == "lead" else (place.name if place else place_id),
                due_on=date.fromisoformat(due),
                choices=list(SIDES[side].items()),
            )
        )
    return out


def section(conn: sqlite3.Connection, ctx: WebContext, case_id: str, on: date) -> Section:
    """What the case page shows of 参加支援."""
    referrals = list_referrals(conn, ctx.config, on, case_id=case_id)
    answers = {
        r.referral_id: [(k, v) for k, v in COORDINATOR_CHOICES.items() if allowed(r.status, k)] for r in referrals
    }
    proposals, problem = None, ""
    try:
        proposals = propose(conn, ctx.config, case_id, on, rules=ctx.rules)
    except EngineError as err:
        problem = str(err)
    persons = conn.execute(
        "SELECT p.person_id FROM persons p JOIN cases c ON c.household_id = p.household_id WHERE c.case_id = ? "
        "ORDER BY p.person_id",
        (case_id,),
    ).fetchall()
    grouped: dict[str, list[tuple[str, str]]] = {}
    for p in ctx.config.participation.places.values():
        if p.status == "active":
            grouped.setdefault(p.category, []).append((p.id, p.name if p.area in p.name else f"{p.name}（{p.area}）"))
    return Section(
        needs=needs_of(conn, case_id, on),
        referrals=referrals,
        answers={k: v for k, v in answers.items() if v},
        awaiting=awaiting_of(conn, ctx, case_id, on),
        proposals=proposals,
        proposal_problem=problem,
        members=[(str(i), member_label(conn, case_id, pid, on)) for i, (pid,) in enumerate(persons, start=1)],
        places=[(PLACE_CATEGORY_LABELS.get(c, c), places) for c, places in grouped.items()],
        need_choices=list(NEED_LABELS.items()),
        referred={
            f"{person}|{r.place_id}": f"紹介 {r.referral_id}（{r.state}）"
            for r, (person,) in zip(
                referrals,
                conn.execute("SELECT person_id FROM referrals WHERE case_id = ? ORDER BY referral_id", (case_id,)),
                strict=True,
            )
        },
    )


# --- the forms ---------------------------------------------------------------------------------
def said(message: str) -> str:
    """An engine refusal in the coordinator's words (the date policy's, with what it answers named)."""
    found = re.match(r"^--date (\S+) is before the (referral|follow-up|case) (\S+) it answers \((\S+)\)", message)
    if found:
        what = WHAT[found[2]].format(found[3])
        return f"記録日は {what}（{found[4]}）以降にしてください。"
    return japanese(message.removeprefix("--member: "))


def _case_household(conn: sqlite3.Connection, case_id: str) -> str:
    row = conn.execute("SELECT household_id FROM cases WHERE case_id = ?", (case_id[:40],)).fetchone()
    if row is None:
        raise HTTPException(status_code=404, detail=f"事案 {case_id[:40]} はありません。")
    return row[0]


def _belongs(conn: sqlite3.Connection, case_id: str, sql: str, number: int) -> tuple:
    """The row of the referral (or follow-up) `number`; 404 unless it is the case's."""
    row = conn.execute(sql, (number,)).fetchone() if 0 < number < 2**63 else None
    if row is None or row[0] != case_id:
        raise HTTPException(status_code=404)
    return row


def _note_problem(conn: sqlite3.Connection, household_id: str, note: str) -> str | None:
    if len(note) > NOTE_MAX:
        return f"メモは{NOTE_MAX}字以内で入力してください。"
    if note and holds_personal_data(note, personal_tokens(conn, household_id)):
        return PERSONAL
    return None


def _again(request, user, ctx, conn, case_id: str, form: str, message: str, values: dict) -> Response:
    """The case page again, the refusal beside the form `form` (what was typed kept), status 400."""
    from engine.web.console.cases import show_case  # cases shows this module's section

    return show_case(
        request, user, ctx, conn, case_id, status_code=400, refused={"form": form, "message": message, **values}
    )


def _record(request, user, ctx, conn, case_id: str, form: str, values: dict, do) -> Response:
    """Run `do(actor, day, dating)` under the coordinator's name; the case page, or the refusal."""
    day, wrong = day_problem(values.get("on", ""), workspace_today(conn))
    message = wrong or _note_problem(conn, _case_household(conn, case_id), values.get("note", "").strip())
    if message is None:
        try:
            with acting(user) as actor:
                do(actor, day, dating(conn, values.get("backdate_reason", "")))
        except (DateRefused, EngineError) as err:
            message = said(str(err))
    if message:
        return _again(request, user, ctx, conn, case_id, form, message, values)
    return see_other(request, f"/cases/{case_id}#participation")


@router.post("/cases/{case_id}/referrals")
def refer(
    case_id: str,
    request: Request,
    user: User = Coordinator,
    ctx: WebContext = Ctx,
    conn: sqlite3.Connection = Db,
    member: str = Form(""),
    place: str = Form(""),
    consent: str = Form(""),
    need: str = Form(""),
    on: str = Form(""),
    backdate_reason: str = Form(""),
    csrf: str | None = Form(None),
) -> Response:
    """A referral decided after the conference (`engine refer`)."""
    check_form(request, user, csrf)
    _case_household(conn, case_id)
    values = dict(member=member, place=place, consent=consent, need=need, on=on, backdate_reason=backdate_reason)
    missing = [
        what
        for what, given in (("世帯員", member), ("紹介先", place), ("本人の同意", consent in ("yes", "no")))
        if not given
    ]
    if missing:
        return _again(request, user, ctx, conn, case_id, "refer", "、".join(missing) + "を選んでください。", values)
    if need and need not in NEED_LABELS:
        return _again(request, user, ctx, conn, case_id, "refer", "ニーズは選択肢から選んでください。", values)

    def do(actor: str, day: date, dated) -> None:
        refer_case(
            conn,
            ctx.config,
            case_id,
            member,
            place,
            day,
            actor,
            consent=consent == "yes",
            need=need or None,
            dating=dated,
        )

    return _record(request, user, ctx, conn, case_id, "refer", values, do)


@router.post("/cases/{case_id}/referrals/{referral_id}/answer")
def answer(
    case_id: str,
    referral_id: int,
    request: Request,
    user: User = Coordinator,
    ctx: WebContext = Ctx,
    conn: sqlite3.Connection = Db,
    choice: str = Form(""),
    note: str = Form(""),
    on: str = Form(""),
    backdate_reason: str = Form(""),
    csrf: str | None = Form(None),
) -> Response:
    """An answer about a referral given by telephone (`engine referral N --answer`)."""
    check_form(request, user, csrf)
    _belongs(conn, case_id, "SELECT case_id FROM referrals WHERE referral_id = ?", referral_id)
    form = f"referral-{referral_id}"
    values = dict(choice=choice, note=note, on=on, backdate_reason=backdate_reason)
    if choice not in COORDINATOR_CHOICES:
        return _again(request, user, ctx, conn, case_id, form, "回答を選んでください。", values)

    def do(actor: str, day: date, dated) -> None:
        answer_referral(
            conn, ctx.rules, ctx.config, referral_id, choice, day, actor, note.strip() or None, dating=dated
        )

    return _record(request, user, ctx, conn, case_id, form, values, do)


@router.post("/cases/{case_id}/followups/{followup_id}/answer")
def followup(
    case_id: str,
    followup_id: int,
    request: Request,
    user: User = Coordinator,
    ctx: WebContext = Ctx,
    conn: sqlite3.Connection = Db,
    result: str = Form(""),
    note: str = Form(""),
    on: str = Form(""),
    backdate_reason: str = Form(""),
    csrf: str | None = Form(None),
) -> Response:
    """A follow-up's answer given by telephone (`engine followup N --result`)."""
    check_form(request, user, csrf)
    _, side = _belongs(
        conn,
        case_id,
        "SELECT r.case_id, f.side FROM followups f JOIN referrals r ON r.referral_id = f.referral_id "
        "WHERE f.followup_id = ?",
        followup_id,
    )
    form = f"followup-{followup_id}"
    values = dict(result=result, note=note, on=on, backdate_reason=backdate_reason)
    if result not in SIDES[side]:
        return _again(request, user, ctx, conn, case_id, form, "確認の回答を選んでください。", values)

    def do(actor: str, day: date, dated) -> None:
        answer_followup(
            conn, ctx.rules, ctx.config, followup_id, result, day, actor, note.strip() or None, dating=dated
        )

    return _record(request, user, ctx, conn, case_id, form, values, do)
