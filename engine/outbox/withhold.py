"""Why a queued message must no longer go out, checked just before it is sent: a newer version
replaced it, the meeting has been held, the request or checkpoint was answered, the action is done,
the case left its silo conference, or the household is locked (DV) since it was queued. Such a
message is marked superseded, never sent. Also what a message is about (its case or meeting), for
the audit log and the consent rule.
"""

from __future__ import annotations

import sqlite3
from datetime import datetime

from engine.config import Config
from engine.outbox.keys import MessageKey
from engine.policy.dv import household_locked
from engine.support import clock

ROW_OF = {  # the table and id column a lifecycle message's number points into
    "lead_request": ("lead_requests", "request_id"),
    "lead_withdrawn": ("lead_requests", "request_id"),
    "reminder": ("case_actions", "action_id"),
    "checkpoint": ("checkpoints", "checkpoint_id"),
}


def has_newer_version(conn: sqlite3.Connection, key: MessageKey | None) -> bool:
    """Is there a later version (…:vN) of this agenda or routing notice in the outbox?"""
    prefix = key.version_prefix if key else None
    if prefix is None:
        return False
    return (
        conn.execute(
            "SELECT 1 FROM outbox WHERE substr(message_key, 1, ?) = ? AND CAST(substr(message_key, ?) AS INTEGER) > ?",
            (len(prefix), prefix, len(prefix) + 1, key.version),
        ).fetchone()
        is not None
    )


def stale_reason(conn: sqlite3.Connection, config: Config, key: MessageKey, now: datetime) -> str | None:
    """Why a queued message must no longer go out, checked just before sending."""
    if has_newer_version(conn, key):
        return "a newer version replaced it"
    tokyo_day = now.astimezone(clock.TOKYO).date().isoformat()
    if key.kind == "agenda":
        held_on = conn.execute("SELECT held_on FROM meetings WHERE meeting_id = ?", (key.ref,)).fetchone()
        if held_on and held_on[0] < tokyo_day:
            return "the meeting has been held"
    if key.kind == "lead_request":
        row = conn.execute("SELECT status FROM lead_requests WHERE request_id = ?", (key.number,)).fetchone()
        if not row or row[0] != "pending":
            return "the request has been answered or withdrawn"
    if key.kind == "reminder":
        row = conn.execute(
            "SELECT a.status, a.due_on, c.household_id FROM case_actions a JOIN cases c ON c.case_id = a.case_id WHERE a.action_id = ?",
            (key.number,),
        ).fetchone()
        if not row or row[0] != "open":
            return "the action is done or cancelled"
        if key.stage == "due" and row[1] < tokyo_day:
            return "the due date has passed: the overdue reminder replaces it"
        if not key.locked and household_locked(conn, config, row[2], tokyo_day):
            return "the household is locked (DV): the reminder goes without the action's wording"
    if key.kind == "checkpoint":
        row = conn.execute("SELECT status FROM checkpoints WHERE checkpoint_id = ?", (key.number,)).fetchone()
        if not row or row[0] != "asked":
            return "the checkpoint has been answered or cancelled"
    if key.kind == "routing":
        row = conn.execute("SELECT status, is_open, household_id FROM cases WHERE case_id = ?", (key.ref,)).fetchone()
        if not row or row[0] != "routed" or not row[1]:
            return "the case is no longer routed to a silo conference"
        if household_locked(conn, config, row[2], tokyo_day):
            return "the household is locked (DV): no notice by e-mail"
    return None


def case_of(conn: sqlite3.Connection, key: MessageKey | None) -> tuple[str | None, str | None]:
    """(case id, meeting id) a message belongs to, from its key."""
    if key is None:
        return None, None
    if key.kind == "agenda":
        return None, key.ref
    if key.kind == "routing":
        return key.ref, None
    if key.kind in ROW_OF:
        table, column = ROW_OF[key.kind]
        row = conn.execute(f"SELECT case_id FROM {table} WHERE {column} = ?", (key.number,)).fetchone()
        return (row[0] if row else None), None
    return None, None
