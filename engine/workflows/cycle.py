"""The nightly cycle and the dispatch as plain functions (the Prefect flows only call these;
the third scheduled job, the daily sweep, is engine/casework/sweep.py).

- nightly_cycle: screen → convene (cases, routing, booking, lead, reopening) → papers (agendas, outbox)
- dispatch:      send the outbox, on business days only
Both are safe to re-run: each step works from the database state and writes nothing twice.
"""

from __future__ import annotations

import sqlite3
from datetime import date, datetime, time
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from engine.conference.convene import ConveneResult, convene
from engine.config import Config
from engine.outbox import SendResult, send_pending
from engine.papers.write import PapersResult, write_papers
from engine.rules.model import RuleSet
from engine.screening.screen import ScreenResult, screen
from engine.store.chronology import check_run
from engine.support import clock
from engine.support.business_days import Calendar


class CycleResult(BaseModel):
    screen: ScreenResult | None = None
    convene: ConveneResult
    papers: PapersResult


class DispatchResult(BaseModel):
    business_day: bool
    closed_reason: str | None = None
    send: SendResult | None = None


def nightly_cycle(
    conn: sqlite3.Connection,
    workspace: Path,
    rules: RuleSet,
    config: Config,
    on: date,
    *,
    screen_first: bool = True,
    workers: int = 2,
) -> CycleResult:
    check_run(conn, on, "nightly cycle")  # never a day before the last cycle: a year typo opened phantom cases
    rules = rules.in_force(on)  # each flag's version in force on the night (rules with effective_from)
    screened = screen(conn, workspace, rules, on, workers=workers) if screen_first else None
    convened = convene(conn, rules, config, on)
    papers = write_papers(conn, rules, config, workspace, on)
    return CycleResult(screen=screened, convene=convened, papers=papers)


def dispatch(
    conn: sqlite3.Connection, config: Config, workspace: Path, on: date, *, transport=None, force: bool = False
) -> DispatchResult:
    """Send queued e-mails; on a closed day (weekend, holiday, 年末年始) do nothing unless forced.
    A day other than today (the demo's fake clock, `engine send --date`) is sent as at 08:00 of
    that day in Japan: what is stale, and the day in the audit log, follow it."""
    check_run(conn, on, "send")
    reason = Calendar.of(config.conference).closed_reason(on)
    if reason and not force:
        return DispatchResult(business_day=False, closed_reason=reason)
    now = None if on == clock.today() else datetime.combine(on, time(8, 0), tzinfo=ZoneInfo("Asia/Tokyo"))
    return DispatchResult(
        business_day=reason is None,
        closed_reason=reason,
        send=send_pending(conn, config, workspace, transport=transport, now=now),
    )
