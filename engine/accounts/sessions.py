"""Server-side sessions of the console. The browser holds a random 256-bit id in a cookie; the
database keeps only its sha256, so a copy of the database opens no session. A session ends after
IDLE_MINUTES without a request, after LIFETIME_HOURS whatever happens, at logout, and when its
user is removed or locked out. Times are read from engine.support.clock."""

from __future__ import annotations

import hashlib
import secrets
import sqlite3
from datetime import datetime, timedelta

from pydantic import BaseModel

from engine.store.db import write_transaction
from engine.support import clock

IDLE_MINUTES = 30  # a session unused this long is over
LIFETIME_HOURS = 12  # a session is over this long after login, used or not
TOUCH_SECONDS = 60  # last_seen is written at most once a minute (a page view does not always write)


class Session(BaseModel):
    """A live session: whose it is, and the hash that scopes its forms' CSRF tokens."""

    name: str
    role: str
    id_hash: str


def id_hash(session_id: str) -> str:
    return hashlib.sha256(session_id.encode()).hexdigest()


def start(conn: sqlite3.Connection, name: str) -> str:
    """A new session of `name`; returns the id for the cookie (never stored)."""
    session_id = secrets.token_urlsafe(32)
    now = clock.stamp()
    with write_transaction(conn):
        conn.execute(
            "INSERT INTO sessions (id_hash, user_name, created_at, last_seen_at) VALUES (?, ?, ?, ?)",
            (id_hash(session_id), name, now, now),
        )
    return session_id


def _over(created: str, last_seen: str, now: datetime) -> bool:
    return now - datetime.fromisoformat(last_seen) >= timedelta(minutes=IDLE_MINUTES) or now - datetime.fromisoformat(
        created
    ) >= timedelta(hours=LIFETIME_HOURS)


def find(conn: sqlite3.Connection, session_id: str | None) -> Session | None:
    """The live session of this cookie value (its use noted), or None: unknown, expired (then
    deleted), or its user gone or locked."""
    if not session_id or len(session_id) > 100:
        return None
    key = id_hash(session_id)
    row = conn.execute(
        "SELECT s.created_at, s.last_seen_at, u.name, u.role, u.locked_until FROM sessions s "
        "JOIN users u ON u.name = s.user_name WHERE s.id_hash = ?",
        (key,),
    ).fetchone()
    if row is None:
        return None
    created, last_seen, name, role, locked_until = row
    now = clock.now()
    if _over(created, last_seen, now) or (locked_until and datetime.fromisoformat(locked_until) > now):
        with write_transaction(conn):
            conn.execute("DELETE FROM sessions WHERE id_hash = ?", (key,))
        return None
    if now - datetime.fromisoformat(last_seen) >= timedelta(seconds=TOUCH_SECONDS):
        with write_transaction(conn):
            conn.execute("UPDATE sessions SET last_seen_at = ? WHERE id_hash = ?", (clock.stamp(), key))
    return Session(name=name, role=role, id_hash=key)


def end(conn: sqlite3.Connection, session_id: str | None) -> str | None:
    """Delete the session of this cookie value; the name of its user, or None if there was none."""
    if not session_id or len(session_id) > 100:
        return None
    key = id_hash(session_id)
    with write_transaction(conn):
        row = conn.execute("SELECT user_name FROM sessions WHERE id_hash = ?", (key,)).fetchone()
        conn.execute("DELETE FROM sessions WHERE id_hash = ?", (key,))
    return row[0] if row else None


def end_all(conn: sqlite3.Connection, name: str) -> int:
    """End every session of `name` (removed or locked); how many there were."""
    with write_transaction(conn):
        return conn.execute("DELETE FROM sessions WHERE user_name = ?", (name,)).rowcount
