"""The outbox queue: a message is queued once under its key, and later versions supersede the ones not sent yet.

Papers (agendas, routing notices) and lifecycle notices (lead requests, reminders, checkpoint
questions, the digest) are queued here; engine/outbox/dispatch.py sends them.
"""

from __future__ import annotations

import json
import sqlite3

from engine.outbox.keys import PREFIXED, MessageKey, prefixed
from engine.outbox.withhold import has_newer_version
from engine.support import clock


def queue(
    conn: sqlite3.Connection,
    *,
    key: str | MessageKey,
    kind: str,
    agency_id: str,
    subject: str,
    parts: dict,
    members_only: bool = False,
    content_hash: str | None = None,
) -> bool:
    """Queue a message under its key; False when that key is already queued (a rerun queues nothing twice)."""
    cur = conn.execute(
        "INSERT OR IGNORE INTO outbox (message_key, kind, agency_id, subject, parts, status, queued_at, members_only, content_hash) VALUES (?,?,?,?,?,'pending',?,?,?)",
        (
            str(key),
            kind,
            agency_id,
            subject,
            json.dumps(parts, ensure_ascii=False),
            clock.stamp(),
            int(members_only),
            content_hash,
        ),
    )
    return cur.rowcount == 1


def supersede_pending(conn: sqlite3.Connection, prefix: str) -> None:
    """Older versions not sent yet are replaced by the one about to be queued. (`+status`: the key's
    range, not the index of every pending message, which the planner would otherwise take.)"""
    conn.execute(
        f"UPDATE outbox SET status = 'superseded' WHERE +status = 'pending' AND {PREFIXED}",
        prefixed(prefix),
    )


def retry(conn: sqlite3.Connection, keys: list[str] | None = None) -> tuple[int, int]:
    """Queue failed messages again (all of them, or the given keys) after the cause is fixed.
    A failed version that a newer one has replaced is marked superseded instead: it must not
    arrive after its successor."""
    failed = [k for (k,) in conn.execute("SELECT message_key FROM outbox WHERE status = 'failed'")]
    wanted = [k for k in failed if keys is None or k in keys]
    queued = superseded = 0
    with conn:
        for key in wanted:
            if has_newer_version(conn, MessageKey.read(key)):
                superseded += conn.execute(
                    "UPDATE outbox SET status = 'superseded' WHERE message_key = ?", (key,)
                ).rowcount
                continue
            queued += conn.execute(
                "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = NULL WHERE message_key = ?",
                (key,),
            ).rowcount
    return queued, superseded
