"""What `engine meetings`, `engine agenda` and `engine outbox` show (plain functions over the DB)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from datetime import date
from pathlib import Path

from pydantic import BaseModel

from engine.casework.steps import owed_outcomes
from engine.config import Config
from engine.store.lifecycle import CHECKPOINT_LABELS, STATE_LABELS
from engine.support.errors import EngineError


def agency_label(config: Config, agency_id: str | None) -> str:
    """An agency as the coordinator reads it and types it back: 名称（id）; '-' for none."""
    if not agency_id:
        return "-"
    if agency_id == "coordinator":
        return "コーディネーター"
    agency = config.agencies.get(agency_id)
    return f"{agency.name}（{agency_id}）" if agency else agency_id


class MeetingCase(BaseModel):
    case_id: str
    severity: str
    lead_agency_id: str | None
    agencies: list[str]
    outcome_recorded: bool = False  # the conference's outcome for this case is recorded (engine outcome)


class MeetingRow(BaseModel):
    meeting_id: str
    conference: str
    held_on: str
    start_time: str
    place: str
    added_for_urgent: bool
    cases: list[MeetingCase]


def meetings(conn: sqlite3.Connection, config: Config, on: date, *, include_past: bool = False) -> list[MeetingRow]:
    """Meetings from `on` on (or all), with their cases and invited agencies — ids only."""
    rows = conn.execute(
        "SELECT meeting_id, conference_type, held_on, start_time, place, added_for_urgent FROM meetings WHERE ? OR held_on >= ? ORDER BY held_on, start_time, meeting_id",
        (include_past, on.isoformat()),
    ).fetchall()
    out = []
    for mid, kind, held_on, start, place, added in rows:
        cases = [
            MeetingCase(
                case_id=cid,
                severity=sev,
                lead_agency_id=lead,
                outcome_recorded=bool(recorded),
                agencies=[
                    a
                    for (a,) in conn.execute(
                        "SELECT agency_id FROM case_agencies WHERE case_id = ? ORDER BY role != 'lead', agency_id",
                        (cid,),
                    )
                ],
            )
            for cid, sev, lead, recorded in conn.execute(
                # every case on the meeting when it was held (or booked now), also one a new flag has since moved on
                "SELECT c.case_id, c.severity, c.lead_agency_id, EXISTS (SELECT 1 FROM outcomes o WHERE o.case_id = c.case_id AND o.meeting_id = cm.meeting_id) "
                "FROM case_meetings cm JOIN cases c ON c.case_id = cm.case_id WHERE cm.meeting_id = ? AND c.is_open = 1 ORDER BY c.case_id",
                (mid,),
            )
        ]
        out.append(
            MeetingRow(
                meeting_id=mid,
                conference=config.name_of(kind),
                held_on=held_on,
                start_time=start,
                place=place,
                added_for_urgent=bool(added),
                cases=cases,
            )
        )
    return out


class AgendaNotFound(EngineError):
    pass


class NotAnAgency(AgendaNotFound):
    """`--agency coordinator`: the coordinator's full version (names, every silo) is never e-mailed,
    so the command that prints what is e-mailed does not print it; it names the local file."""


def agenda(
    conn: sqlite3.Connection,
    workspace: Path,
    meeting_id: str,
    agency_id: str | None,
    *,
    html: bool = False,
    agency: Callable[[str], str] = str,
) -> str:
    """The latest agenda of one agency (text), or the list of agencies with agendas for the meeting."""
    if conn.execute("SELECT 1 FROM meetings WHERE meeting_id = ?", (meeting_id,)).fetchone() is None:
        raise AgendaNotFound(f"no meeting '{meeting_id}': see `engine meetings`")
    if agency_id is None:
        rows = conn.execute(
            "SELECT agency_id, MAX(version) FROM agendas WHERE meeting_id = ? AND agency_id != 'coordinator' GROUP BY agency_id ORDER BY agency_id",
            (meeting_id,),
        ).fetchall()
        if not rows:
            raise AgendaNotFound(f"no agendas written for {meeting_id} yet: run `engine run`")
        folder = workspace / "agendas" / meeting_id
        lines = [f"{meeting_id}: 議題を送る機関 {len(rows)} か所（1 機関の議題は --agency 機関ID で表示）"]
        lines += [f"  {agency(a)}  第{v}版  {folder / f'{a}.v{v}.txt'}" for a, v in rows]
        lines.append(f"  コーディネーター用（氏名入り、送信しない）: {folder}/coordinator.v*.html")
        return "\n".join(lines)
    row = conn.execute(
        "SELECT MAX(version), folder FROM agendas WHERE meeting_id = ? AND agency_id = ?", (meeting_id, agency_id)
    ).fetchone()
    if agency_id == "coordinator":
        where = workspace / row[1] / f"coordinator.v{row[0]}.html" if row[0] else "none written yet: run `engine run`"
        raise NotAnAgency(
            f"--agency coordinator: the coordinator's version (names, every silo) is never e-mailed, so `engine agenda` "
            f"does not print it; open it in the workspace only: {where}"
        )
    if row[0] is None:
        known = [
            a
            for (a,) in conn.execute(
                "SELECT DISTINCT agency_id FROM agendas WHERE meeting_id = ? AND agency_id != 'coordinator' ORDER BY agency_id",
                (meeting_id,),
            )
        ]
        raise AgendaNotFound(
            f"agency '{agency_id}' has no agenda for {meeting_id} (agencies with one: {', '.join(known) or 'none'})"
        )
    return (workspace / row[1] / f"{agency_id}.v{row[0]}.{'html' if html else 'txt'}").read_text(encoding="utf-8")


class OutboxRow(BaseModel):
    message_key: str
    agency_id: str
    status: str
    attempts: int
    last_error: str | None
    sent_at: str | None
    possible_duplicate: bool


def outbox(conn: sqlite3.Connection, status: str | None = None) -> tuple[dict[str, int], list[OutboxRow]]:
    """Counts per status, and the messages (filtered by status if given)."""
    counts = dict(conn.execute("SELECT status, COUNT(*) FROM outbox GROUP BY status").fetchall())
    counts["possible_duplicate"] = conn.execute("SELECT COUNT(*) FROM outbox WHERE possible_duplicate = 1").fetchone()[
        0
    ]
    rows = [
        OutboxRow(message_key=k, agency_id=a, status=s, attempts=n, last_error=e, sent_at=t, possible_duplicate=bool(d))
        for k, a, s, n, e, t, d in conn.execute(
            "SELECT message_key, agency_id, status, attempts, last_error, sent_at, possible_duplicate FROM outbox WHERE ? IS NULL OR status = ? ORDER BY queued_at, message_key",
            (status, status),
        )
    ]
    return counts, rows


class CaseRow(BaseModel):
    case_id: str
    household_id: str  # local only: `engine cases` is the coordinator's view, never e-mailed
    status: str
    label: str  # the state in Japanese
    lead_agency_id: str | None
    lead_confirmed_on: str | None
    opened_on: str
    reopen_count: int
    previous_case_id: str | None
    consent_state: str | None  # as the last conference recorded it: obtained | pending | refused
    next_on: str | None  # the date of the next step, None if there is none (the audit reports that)
    next_step: str  # what happens then, in Japanese


def next_step(
    conn: sqlite3.Connection, case_id: str, status: str, on: date, agency: Callable[[str], str] = str
) -> tuple[str | None, str]:
    """The case's next dated step for its state: the earliest of a meeting owing an outcome, the
    answer due to a lead request, the state's checkpoint and (active) an action's due date. A case
    without one is what the audit reports as no_next_step. `agency` shows an agency id (agency_label)."""
    day = on.isoformat()
    one = lambda sql, *p: conn.execute(sql, p).fetchone()  # noqa: E731
    steps: list[tuple[str, str]] = []
    for _, meeting_id, held_on in owed_outcomes(conn, case_id=case_id)[:1]:
        steps.append((held_on, f"会議 {meeting_id}" + ("（結果の記録待ち）" if held_on < day else "")))
    if status == "lead_pending":
        row = one("SELECT due_on, agency_id FROM lead_requests WHERE case_id = ? AND status = 'pending'", case_id)
        if row:
            steps.append((row[0], f"{agency(row[1])} の受諾回答期限"))
    kinds = {
        "active": "evaluation",
        "closed": "watch",
        "suspended": "review",
        "routed": "check_back",
        "assessing": "assessment",
        "watching": "rescreen",
    }
    if status in kinds:
        kind = kinds[status]
        text = CHECKPOINT_LABELS[kind]
        row = one(
            "SELECT CASE WHEN status = 'asked' THEN answer_due ELSE due_on END, status FROM checkpoints WHERE case_id = ? AND kind = ? AND status IN ('pending', 'asked') ORDER BY due_on LIMIT 1",
            case_id,
            kind,
        )
        if row:
            steps.append((row[0], text + ("（回答待ち）" if row[1] == "asked" else "")))
    if status == "active":
        row = one("SELECT MIN(due_on) FROM case_actions WHERE case_id = ? AND status = 'open'", case_id)
        if row and row[0]:
            steps.append((row[0], "役割の期日"))
    if not steps:
        return None, "予定なし" if status != "archived" else "見守り完了"
    return min(steps)


def cases(
    conn: sqlite3.Connection, on: date, status: str | None = None, agency: Callable[[str], str] = str
) -> list[CaseRow]:
    """Every case (or those in one state) with its next dated step, oldest first."""
    rows = conn.execute(
        "SELECT case_id, household_id, status, lead_agency_id, lead_confirmed_on, opened_on, reopen_count, previous_case_id, consent_state FROM cases "
        "WHERE ? IS NULL OR status = ? ORDER BY case_id",
        (status, status),
    ).fetchall()
    out = []
    for cid, hid, st, lead, confirmed, opened, reopened, previous, consent in rows:
        when, what = next_step(conn, cid, st, on, agency)
        out.append(
            CaseRow(
                case_id=cid,
                household_id=hid,
                status=st,
                label=STATE_LABELS[st],
                lead_agency_id=lead,
                lead_confirmed_on=confirmed,
                opened_on=opened,
                reopen_count=reopened,
                previous_case_id=previous,
                consent_state=consent,
                next_on=when,
                next_step=what,
            )
        )
    return out
