"""The outcome form: /meetings/{meeting}/cases/{case}/outcome, the same fields as the outcome file
of `engine outcome` (engine/casework/outcome_file.py, docs/lifecycle.md).

The form is turned into the YamlFile the file would have been read into, each field on a line of
its own, so the file's own checks (outcome_of: the model and what each decision needs; then
check_outcome, the date policy and the personal-data guard inside apply_outcome) locate every
problem at a field of the form. Nothing here decides what a valid outcome is.
"""

from __future__ import annotations

import sqlite3

from fastapi import APIRouter, Form, HTTPException, Request
from fastapi.responses import HTMLResponse

from engine.casework.outcome import OutcomeInvalid, apply_outcome
from engine.casework.outcome_file import CONSENT_LABELS, DECISION_LABELS, outcome_of
from engine.rules.problems import RuleProblem
from engine.store.chronology import DateRefused, workspace_today
from engine.store.lifecycle import STATE_LABELS
from engine.support.errors import EngineError
from engine.support.yamlfile import YamlFile
from engine.web.app import Ctx, Db, WebContext
from engine.web.console.forms import date_field, dating, day_problem, japanese, see_other
from engine.web.render import render
from engine.web.session import Coordinator, User, acting, check_form, form_csrf

router = APIRouter()

FIELDS = ("decision", "lead", "consent", "next_evaluation", "review_on", "reason")  # as in the file
ROLE_FIELDS = ("agency", "action", "due")
ROLE_ROWS = 5  # empty role rows offered (no script adds rows: an outcome with more is entered in two goes… or a file)
FORM = "outcome form"
ROW_AGENCY, ROW_ACTION, ROW_DUE = Form([]), Form([]), Form([])  # the columns of the role rows (one Form each)
# 参加支援 (engine/participation/outcome.py): a need per member, and a place or why not
PART_FIELDS = ("member", "need", "place", "consent", "introduced_by", "reason")
PART_ROWS = 3
PART_MEMBER, PART_NEED, PART_PLACE = Form([]), Form([]), Form([])
PART_CONSENT, PART_INTRODUCER, PART_REASON = Form([]), Form([]), Form([])
CONSENT_CHOICES = {"yes": "同意あり（場所に伝えてよい）", "no": "同意なし（紹介元が同行）"}


def _line(path: tuple) -> int:
    """Each field of the form on its own line: 1.. the fields, 100 + 10·j (+1..3) role j and its fields,
    200 + 10·j (+1..6) participation entry j and its fields."""
    if path[0] == "participation" and len(path) > 1:
        return 200 + 10 * path[1] + (PART_FIELDS.index(path[2]) + 1 if len(path) > 2 and path[2] in PART_FIELDS else 0)
    if path[0] == "roles" and len(path) > 1:
        return 100 + 10 * path[1] + (ROLE_FIELDS.index(path[2]) + 1 if len(path) > 2 else 0)
    return FIELDS.index(path[0]) + 1 if path[0] in FIELDS else len(FIELDS) + 1


def form_document(
    values: dict[str, str], roles: list[dict[str, str]], parts: list[dict[str, str]] = ()
) -> tuple[YamlFile, list[int], list[int]]:
    """The form as the outcome file would be read: empty fields left out, role and participation
    rows left empty skipped (an introducer alone does not make a row); and, for each role and entry
    of the file, the row of the form it came from."""
    data: dict = {f: values[f].strip() for f in FIELDS if values.get(f, "").strip()}
    rows = [i for i, r in enumerate(roles) if any(r[f].strip() for f in ROLE_FIELDS)]
    if rows:
        data["roles"] = [{f: roles[i][f].strip() for f in ROLE_FIELDS if roles[i][f].strip()} for i in rows]
    used = [i for i, r in enumerate(parts) if any(r[f].strip() for f in PART_FIELDS if f != "introduced_by")]
    if used:
        data["participation"] = [_entry(parts[i]) for i in used]
    lines = {(f,): _line((f,)) for f in FIELDS + ("roles",)}
    lines[("participation",)] = 200
    for j in range(len(rows)):
        lines[("roles", j)] = _line(("roles", j))
        lines.update({("roles", j, f): _line(("roles", j, f)) for f in ROLE_FIELDS})
    for j in range(len(used)):
        lines[("participation", j)] = _line(("participation", j))
        lines.update({("participation", j, f): _line(("participation", j, f)) for f in PART_FIELDS})
    lines[()] = 0
    return YamlFile(file=FORM, data=data, lines=lines), rows, used


def _entry(row: dict[str, str]) -> dict:
    """A participation row as the file writes it: consent as true/false, empty fields left out."""
    entry: dict = {f: row[f].strip() for f in PART_FIELDS if row[f].strip() and f != "consent"}
    if row["consent"].strip():
        entry["consent"] = {"yes": True, "no": False}.get(row["consent"].strip(), row["consent"].strip())
    return entry


def field_of(problem: RuleProblem, rows: list[int], used: list[int] = ()) -> str:
    """The form field a located problem is about ("_" for the whole form)."""
    line = problem.line
    if line >= 200:
        j, k = divmod(line - 200, 10)
        row = used[j] if j < len(used) else 0
        return f"part_{PART_FIELDS[k - 1]}_{row}" if k else ("participation" if line == 200 else f"part_member_{row}")
    if line >= 100:
        j, k = divmod(line - 100, 10)
        row = rows[j] if j < len(rows) else 0
        return f"role_{ROLE_FIELDS[k - 1]}_{row}" if k else f"role_agency_{row}"
    return FIELDS[line - 1] if 1 <= line <= len(FIELDS) else ("roles" if line == len(FIELDS) + 1 else "_")


def _case(conn: sqlite3.Connection, meeting_id: str, case_id: str) -> tuple:
    meeting = conn.execute(
        "SELECT held_on, start_time, conference_type FROM meetings WHERE meeting_id = ?", (meeting_id,)
    ).fetchone()
    case = conn.execute(
        "SELECT status, lead_agency_id, consent_state FROM cases WHERE case_id = ?", (case_id,)
    ).fetchone()
    booked = conn.execute(
        "SELECT 1 FROM case_meetings WHERE case_id = ? AND meeting_id = ?", (case_id, meeting_id)
    ).fetchone()
    if meeting is None or case is None or booked is None:
        raise HTTPException(status_code=404)
    recorded = conn.execute(
        "SELECT recorded_on, decision FROM outcomes WHERE case_id = ? AND meeting_id = ?", (case_id, meeting_id)
    ).fetchone()
    return meeting, case, recorded


def _page(request, user, ctx, conn, meeting_id, case_id, *, form, roles, parts=(), problems=None, status_code=200):
    from engine.participation.persons import member_label
    from engine.support.vocabulary import NEED_LABELS

    meeting, case, recorded = _case(conn, meeting_id, case_id)
    agencies = sorted(ctx.config.agencies.values(), key=lambda a: (a.kind, a.name))
    day = workspace_today(conn)
    persons = conn.execute(
        "SELECT p.person_id FROM persons p JOIN cases c ON c.household_id = p.household_id WHERE c.case_id = ? ORDER BY p.person_id",
        (case_id,),
    ).fetchall()
    members = [(str(i), member_label(conn, case_id, pid, day)) for i, (pid,) in enumerate(persons, start=1)]
    places = sorted(ctx.config.participation.places.values(), key=lambda p: (p.category, p.area, p.name))
    return render(
        request,
        "console/outcome.html.j2",
        status_code=status_code,
        user=user,
        csrf=form_csrf(request, user),
        meeting_id=meeting_id,
        case_id=case_id,
        held_on=meeting[0],
        start_time=meeting[1],
        conference=ctx.config.name_of(meeting[2]),
        state=STATE_LABELS.get(case[0], case[0]),
        recorded=recorded,
        decisions=DECISION_LABELS,
        consents=CONSENT_LABELS,
        agencies=[(a.id, a.name) for a in agencies],
        form=form,
        roles=roles + [dict.fromkeys(ROLE_FIELDS, "") for _ in range(max(0, ROLE_ROWS - len(roles)))],
        parts=list(parts) + [dict.fromkeys(PART_FIELDS, "") for _ in range(max(0, PART_ROWS - len(parts)))],
        members=members,
        needs=list(NEED_LABELS.items()),
        places=[(p.id, f"{p.name}（{p.category_label}・{p.area}）") for p in places if p.status == "active"],
        part_consents=list(CONSENT_CHOICES.items()),
        participation=ctx.config.participation.present,
        problems=problems or {},
        today=workspace_today(conn),
    )


@router.get("/meetings/{meeting_id}/cases/{case_id}/outcome", response_class=HTMLResponse)
def outcome_form(
    meeting_id: str,
    case_id: str,
    request: Request,
    user: User = Coordinator,
    ctx: WebContext = Ctx,
    conn: sqlite3.Connection = Db,
):
    _, case, _ = _case(conn, meeting_id, case_id)
    form = dict.fromkeys(FIELDS + ("on", "backdate_reason"), "") | {"lead": case[1] or "", "consent": case[2] or ""}
    return _page(request, user, ctx, conn, meeting_id, case_id, form=form, roles=[])


@router.post("/meetings/{meeting_id}/cases/{case_id}/outcome", response_class=HTMLResponse)
def record(
    meeting_id: str,
    case_id: str,
    request: Request,
    user: User = Coordinator,
    ctx: WebContext = Ctx,
    conn: sqlite3.Connection = Db,
    decision: str = Form(""),
    lead: str = Form(""),
    consent: str = Form(""),
    next_evaluation: str = Form(""),
    review_on: str = Form(""),
    reason: str = Form(""),
    role_agency: list[str] = ROW_AGENCY,
    role_action: list[str] = ROW_ACTION,
    role_due: list[str] = ROW_DUE,
    part_member: list[str] = PART_MEMBER,
    part_need: list[str] = PART_NEED,
    part_place: list[str] = PART_PLACE,
    part_consent: list[str] = PART_CONSENT,
    part_introduced_by: list[str] = PART_INTRODUCER,
    part_reason: list[str] = PART_REASON,
    on: str = Form(""),
    backdate_reason: str = Form(""),
    csrf: str | None = Form(None),
):
    """Record the outcome (POST/redirect/GET to the case page), or the form again with each problem beside its field."""
    check_form(request, user, csrf)
    _case(conn, meeting_id, case_id)
    form = dict(
        decision=decision,
        lead=lead,
        consent=consent,
        next_evaluation=next_evaluation,
        review_on=review_on,
        reason=reason,
        on=on,
        backdate_reason=backdate_reason,
    )
    cell = lambda col, i: col[i] if i < len(col) else ""  # noqa: E731
    count = min(max(len(role_agency), len(role_action), len(role_due)), 50)
    roles = [
        dict(agency=cell(role_agency, i), action=cell(role_action, i), due=cell(role_due, i)) for i in range(count)
    ]
    columns = (part_member, part_need, part_place, part_consent, part_introduced_by, part_reason)
    parts = [
        dict(zip(PART_FIELDS, (cell(col, i) for col in columns), strict=True))
        for i in range(min(max(map(len, columns)), 20))
    ]
    problems: dict[str, list[str]] = {}

    def refused(field: str, message: str) -> None:
        problems.setdefault(field, []).append(japanese(message))

    doc, rows, used = form_document(form, roles, parts)
    day, wrong = day_problem(on, workspace_today(conn))
    if wrong:
        problems["on"] = [wrong]
    try:
        outcome = outcome_of(doc)
        if day is not None:
            with acting(user) as actor:
                apply_outcome(
                    conn,
                    ctx.rules,
                    ctx.config,
                    meeting_id,
                    case_id,
                    doc,
                    outcome,
                    day,
                    actor,
                    dating=dating(conn, backdate_reason),
                )
    except OutcomeInvalid as err:
        for p in err.problems:
            refused(field_of(p, rows, used), p.message)
    except DateRefused as err:
        refused(date_field(str(err)), str(err))
    except EngineError as err:
        refused("_", str(err))
    if problems:
        return _page(
            request,
            user,
            ctx,
            conn,
            meeting_id,
            case_id,
            form=form,
            roles=roles,
            parts=parts,
            problems=problems,
            status_code=400,
        )
    return see_other(request, f"/cases/{case_id}")
