"""The audit log's hash chain: `audit_log` is tamper-evident (migration 3).

Each row's `chain` is sha256 over the previous row's chain and the row's own content (its seq and
every column of COLUMNS, as JSON). `append` computes it under the write lock (BEGIN IMMEDIATE when
no transaction is open), in the same transaction as the insert, so two writers cannot fork it.

`verify` reports, one line each: a row whose content no longer matches its hash (changed, or
inserted outside the engine), missing seqs (rows deleted, also at the end: SQLite's
sqlite_sequence remembers the highest seq given), a protecting trigger missing or changed now, and
every `audit_guard_restored` entry: each read-write open (`restore_guards`) puts back a trigger
found missing or changed, and records that it did, so a dropped trigger stays visible after the
next command restored it.

Not covered: someone who can write the database file and recomputes every hash after the row they
changed (the chain has no secret key), or who deletes the newest rows and lowers sqlite_sequence too.
`engine audit --verify` prints the head of the chain; a head noted outside the workspace (a
coordinator's notebook) shows such a rewrite.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from collections.abc import Sequence

from engine.store.schema import SCHEMA
from engine.support import clock

COLUMNS = (
    "seq",
    "at",
    "on_day",
    "actor",
    "event",
    "case_id",
    "household_id",
    "meeting_id",
    "from_status",
    "to_status",
    "reason",
    "rule_id",
    "rules_hash",
    "config_hash",
    "detail",
)
GUARD_EVENT = "audit_guard_restored"
ENGINE_ACTOR = "engine"  # the actor of the engine's own repairs


def _guards() -> dict[str, str]:
    """The triggers protecting audit_log, as SQLite keeps their text (from the frozen SCHEMA)."""
    out, statement = {}, ""
    for line in SCHEMA.splitlines(keepends=True):
        if line.startswith("--") and not statement.strip():
            continue
        statement += line
        if sqlite3.complete_statement(statement):
            text = statement.strip().rstrip(";")
            if text.startswith("CREATE TRIGGER IF NOT EXISTS audit_log_"):
                text = text.replace("CREATE TRIGGER IF NOT EXISTS ", "CREATE TRIGGER ", 1)
                out[text.split()[2]] = text
            statement = ""
    return out


GUARDS = _guards()


def link(previous: str | None, row: Sequence) -> str:
    """The chain value of `row` (its values in COLUMNS order) after a row whose chain is `previous`."""
    content = [row[0], *(None if v is None else str(v) for v in row[1:])]
    text = (previous or "") + "\n" + json.dumps(content, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def append(conn: sqlite3.Connection, values: dict) -> None:
    """Insert one audit row (`values` by column name, seq aside) with its link in the chain."""
    if not conn.in_transaction:
        conn.execute("BEGIN IMMEDIATE")  # the last row read below stays the last until the insert
    seq, previous = conn.execute(
        "SELECT MAX(COALESCE((SELECT seq FROM sqlite_sequence WHERE name = 'audit_log'), 0), "
        "COALESCE((SELECT MAX(seq) FROM audit_log), 0)) + 1, "
        "(SELECT chain FROM audit_log ORDER BY seq DESC LIMIT 1)"
    ).fetchone()
    row = (seq, *(values.get(c) for c in COLUMNS[1:]))
    conn.execute(
        f"INSERT INTO audit_log ({', '.join(COLUMNS)}, chain) VALUES ({', '.join('?' * (len(COLUMNS) + 1))})",
        (*row, link(previous, row)),
    )
    if conn.isolation_level is None:  # an autocommit connection: nobody else will commit
        conn.execute("COMMIT")


def guard_problems(conn: sqlite3.Connection) -> dict[str, str]:
    """trigger name -> missing | changed, for the triggers protecting audit_log now."""
    have = dict(conn.execute("SELECT name, sql FROM sqlite_master WHERE type = 'trigger' AND tbl_name = 'audit_log'"))
    return {
        name: ("missing" if name not in have else "changed") for name, sql in GUARDS.items() if have.get(name) != sql
    }


def restore_guards(conn: sqlite3.Connection) -> list[str]:
    """Put back each protecting trigger that is missing or changed, and record it in the log
    (an entry of the chain that `verify` reports). The triggers restored."""
    if not guard_problems(conn):
        return []
    conn.execute("BEGIN IMMEDIATE")
    try:
        found = guard_problems(conn)  # again, under the write lock
        for name, how in found.items():
            if how == "changed":
                conn.execute(f"DROP TRIGGER {name}")
            conn.execute(GUARDS[name])
        if found:
            listed = "、".join(f"{name}（{'削除' if how == 'missing' else '変更'}）" for name, how in found.items())
            append(
                conn,
                dict(
                    at=clock.stamp(),
                    on_day=clock.today().isoformat(),
                    actor=ENGINE_ACTOR,
                    event=GUARD_EVENT,
                    reason=f"監査ログを保護するトリガーが失われていたため作り直しました: {listed}",
                    detail=json.dumps({"triggers": found}, ensure_ascii=False, sort_keys=True),
                ),
            )
        conn.commit()
    except BaseException:
        conn.rollback()
        raise
    return sorted(found)


def chain_all(conn: sqlite3.Connection) -> None:
    """Compute `chain` for every row in seq order (migration 3; inside its transaction)."""
    previous = None
    rows = conn.execute(f"SELECT {', '.join(COLUMNS)} FROM audit_log ORDER BY seq").fetchall()
    for row in rows:
        previous = link(previous, row)
        conn.execute("UPDATE audit_log SET chain = ? WHERE seq = ?", (previous, row[0]))


def verify(conn: sqlite3.Connection) -> tuple[list[str], int, str | None]:
    """(one line per problem, rows checked, the chain's head)."""
    problems = [
        f"trigger {name} protecting audit_log is {how} at this moment" for name, how in guard_problems(conn).items()
    ]
    last_seq, previous, rows = 0, None, 0
    for *row, chain in conn.execute(f"SELECT {', '.join(COLUMNS)}, chain FROM audit_log ORDER BY seq"):
        rows += 1
        seq, on_day, event = row[0], row[2], row[4]
        gap = seq != last_seq + 1
        if gap:
            problems.append(f"seq {_span(last_seq + 1, seq - 1)} missing: deleted from the audit log")
        elif chain != link(previous, row):
            problems.append(
                f"seq {seq} ({on_day} {event}) does not match its hash: changed after it was written, or not written by the engine"
            )
        if event == GUARD_EVENT:
            problems.append(f"seq {seq} ({on_day}): {row[10]} (the log was unprotected before this entry)")
        last_seq, previous = seq, chain
    given = conn.execute("SELECT seq FROM sqlite_sequence WHERE name = 'audit_log'").fetchone()
    if given and given[0] > last_seq:
        problems.append(f"seq {_span(last_seq + 1, given[0])} missing: deleted from the end of the audit log")
    return problems, rows, previous


def _span(first: int, last: int) -> str:
    return f"{first:,}" if first == last else f"{first:,}–{last:,}"
