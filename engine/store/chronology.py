"""The date policy: which day a run or a recorded event may carry. One place; every dated writer calls it.

Runs (the nightly cycle, a screen, the daily sweep, the dispatch of the outbox) act on the town as
it is on their day. A run dated before the workspace's last nightly cycle would act on a past the
engine has already acted on (a year typo opened hundreds of phantom cases, booked meetings in the
past and sent e-mails), so `check_run` refuses it; the same day again is allowed (runs are
idempotent) and so is every later day. The last nightly cycle is the latest `screened_on` of
screen_runs: every cycle screens first, and a screen alone counts too.

Events a person records (an outcome, accept, decline, watch, contact, done) are checked by
`check_event`:

- never before the thing they answer (the request, the meeting that agreed the action, the
  checkpoint, the case): an answer cannot precede its question, and no reason changes that;
- never more than FUTURE_DAYS after today (`Dating.not_after`, which the CLI sets from `horizon`):
  a typo in the year would otherwise switch off the 90-day no-contact watch for years;
- before the last nightly cycle only with a reason (`Dating.backdate_reason`, the CLI's
  `--backdate-reason`): the cycles since have run without the entry, so a late entry is a
  deliberate act, kept in the audit log as a `backdated` event with the reason and the actor.

"Today" is the later of the clock's day and the last nightly cycle, so a workspace that lives ahead
of the wall clock (the demo's simulated days) can still be worked on. The plain functions take the
day they are given (the demo and the tests drive simulated days through them); only a day a person
typed carries `not_after`. A wrong entry is corrected by appending a correcting event
(engine/casework/correction.py), never by editing the log.
"""

from __future__ import annotations

import sqlite3
from datetime import date, timedelta

from pydantic import BaseModel, ConfigDict

from engine.support import clock
from engine.support.business_days import add_months
from engine.support.errors import EngineError

FUTURE_DAYS = 3  # how far after today an event or a run may be dated (a meeting's outcome typed the evening before)


PLAN_YEARS = 3  # how far after the day it is decided a planned date (a due date, a review) may lie


def too_far_ahead(decided: date, planned: date) -> str | None:
    """Why a planned date (a role's due date, a suspension's review, the next evaluation, an
    escalation's new due date) is refused, or None: more than PLAN_YEARS after the day it was decided
    is a typo in the year (9999, 2207), and a case would wait for it unseen by the audit for years."""
    if planned <= add_months(decided, 12 * PLAN_YEARS):
        return None
    return f"{planned} is more than {PLAN_YEARS} years after {decided}: check the year (a plan looks at most {PLAN_YEARS} years ahead)"


class DateRefused(EngineError):
    """A run or an event dated where the engine cannot accept it (said why, with the dates)."""

    exit_code = 2


class Dating(BaseModel):
    """How the day of a recorded event was given. `not_after`: the latest day it may carry (the CLI:
    `horizon`; None for the simulated days of the demo and the tests). `backdate_reason`: why it is
    dated before the last nightly cycle (required then, kept in the audit log)."""

    model_config = ConfigDict(frozen=True)
    not_after: date | None = None
    backdate_reason: str | None = None


AS_GIVEN = Dating()  # the plain functions' default: the day as given (simulated days), no back-date reason


def last_cycle(conn: sqlite3.Connection) -> date | None:
    """The day of the workspace's last nightly cycle (its screening), or None before the first."""
    row = conn.execute("SELECT MAX(screened_on) FROM screen_runs").fetchone()
    return date.fromisoformat(row[0]) if row and row[0] else None


def workspace_today(conn: sqlite3.Connection) -> date:
    """The workspace's today: the clock's, or the last nightly cycle when the workspace lives ahead
    of the clock (the demo's, at its simulated end date). The day of an answer given now."""
    return max(clock.today(), last_cycle(conn) or date.min)


def horizon(conn: sqlite3.Connection) -> date:
    """The latest day a date typed now may carry: FUTURE_DAYS after the workspace's today."""
    return workspace_today(conn) + timedelta(days=FUTURE_DAYS)


def check_run(conn: sqlite3.Connection, on: date, what: str, *, not_after: date | None = None) -> None:
    """Refuse a `what` (nightly cycle, screen, sweep, send) dated before the last nightly cycle, or
    after `not_after` when given."""
    last = last_cycle(conn)
    if last is not None and on < last:
        raise DateRefused(
            f"--date {on}: the workspace's last nightly cycle ran for {last}; a {what} dated earlier would act "
            f"again on a past already acted on (nothing was run; check the year, or give {last} or later)"
        )
    if not_after is not None and on > not_after:
        raise DateRefused(
            f"--date {on} is more than {FUTURE_DAYS} days after today ({not_after - timedelta(days=FUTURE_DAYS)}); "
            f"nothing was run (check the year)"
        )


def check_event(
    conn: sqlite3.Connection,
    on: date,
    dating: Dating,
    *,
    answers: date | str,
    what: str,
    case_id: str | None = None,
    relation: str = "it answers",
) -> None:
    """Refuse an event dated `on` before the `what` it answers (dated `answers`; `relation` says how the
    event follows it), after `dating.not_after`, or before the last nightly cycle without a reason.
    Writes nothing: `note_backdate` does, in the caller's transaction."""
    answered = date.fromisoformat(answers) if isinstance(answers, str) else answers
    if on < answered:
        raise DateRefused(
            f"--date {on} is before the {what}{f' {relation}' if relation else ''} ({answered}):"
            f" give the day it happened, {answered} or later"
        )
    if dating.not_after is not None and on > dating.not_after:
        raise DateRefused(
            f"--date {on} is more than {FUTURE_DAYS} days after today "
            f"({dating.not_after - timedelta(days=FUTURE_DAYS)}): record what has happened, on the day it happened"
        )
    reason = (dating.backdate_reason or "").strip()
    if dating.backdate_reason is not None and not reason:
        raise DateRefused("--backdate-reason: say why the entry is late (it is kept in the audit log)")
    last = last_cycle(conn)
    if last is not None and on < last and not reason:
        raise DateRefused(
            f"--date {on} is before the last nightly cycle ({last}), which ran without this entry: "
            "to record a late entry, add --backdate-reason TEXT (kept in the audit log)"
        )
    if reason and case_id:
        from engine.policy.personal_data import holds_personal_data, personal_tokens

        row = conn.execute("SELECT household_id FROM cases WHERE case_id = ?", (case_id,)).fetchone()
        if row and holds_personal_data(reason, personal_tokens(conn, row[0])):
            raise DateRefused(
                "--backdate-reason: the reason holds personal data of the household (a name, kana, address or "
                "birth date); write 本人, 世帯員… instead"
            )


def note_backdate(log, dating: Dating, *, case_id: str | None = None, meeting_id: str | None = None) -> None:
    """The `backdated` audit event of a late entry (when a reason was given): the day it is dated,
    the day it was recorded, the reason; the actor is the log's."""
    reason = (dating.backdate_reason or "").strip()
    if not reason:
        return
    recorded = clock.today()
    log.event(
        "backdated",
        case_id=case_id,
        meeting_id=meeting_id,
        reason=f"{log.on} の出来事として {recorded} に記録（遅れた記録の理由: {reason}）",
        recorded_on=recorded,
        last_cycle=last_cycle(log.conn),
        backdate_reason=reason,
    )
