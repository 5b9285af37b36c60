"""Exports for the coordinator: cases, flags, the outbox and meetings as CSV or JSON files.

Pseudonymous ids, dates, states and counts only, as in the audit log: never a name, kana, address
or birth date. Left out on purpose: the cases' free-text reasons (conference_basis, lead_reason,
lead_reason_shared), the flags' evidence (member ids, ages, relationships, record values) and the
outbox's message bodies (parts). Files are readable by their owner only (0600 in a 0700 folder).
They are for the coordinator, not for agencies: household ids with rule ids (a DV flag) identify
a household's situation to anyone who can map the ids to people.
"""

from __future__ import annotations

import csv
import io
import json
import sqlite3
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel
from sqlite_utils import Database

from engine.support.private_files import private_dir, write_private
from engine.support.sheets import inert_cell

Format = Literal["csv", "json"]

# what each export reads: the one place that says which columns leave the database
EXPORTS: dict[str, str] = {
    "cases": """
        SELECT case_id, household_id, status, is_open, opened_on, closed_on, severity, conference_type,
               meeting_id, routed_to, lead_agency_id, lead_rule_id, lead_confirmed_on, consent_state,
               previous_case_id, reopen_count, rules_hash, config_hash
        FROM cases ORDER BY case_id""",
    "flags": """
        SELECT f.flag_id, f.household_id, cf.case_id, f.rule_id, f.rule_version, f.severity, f.status,
               f.first_detected, f.last_confirmed, f.resolved_on, f.run_id
        FROM flags f LEFT JOIN case_flags cf ON cf.flag_id = f.flag_id ORDER BY f.flag_id""",
    "outbox": """
        SELECT message_key, kind, agency_id, subject, status, attempts, last_error, queued_at,
               next_attempt_at, sent_at, sent_to, possible_duplicate, members_only
        FROM outbox ORDER BY queued_at, message_key""",
    "meetings": """
        SELECT meeting_id, conference_type, held_on, start_time, place, capacity, added_for_urgent
        FROM meetings ORDER BY held_on, start_time, meeting_id""",
}


class Exported(BaseModel):
    table: str
    path: Path
    rows: int


def export(
    conn: sqlite3.Connection,
    folder: Path,
    *,
    fmt: Format = "csv",
    tables: Sequence[str] = tuple(EXPORTS),
    encoding: str = "utf-8",
) -> list[Exported]:
    """Write one file per table (cases.csv, flags.csv, outbox.csv, meetings.csv, or .json) into
    `folder`, each replaced atomically. `encoding` is for CSV: "utf-8-sig" opens in Excel."""
    unknown = [t for t in tables if t not in EXPORTS]
    if unknown:
        raise ValueError(f"no export for {', '.join(unknown)}: choose from {', '.join(EXPORTS)}")
    db = Database(conn, recursive_triggers=False, execute_plugins=False)  # the engine's own connection settings
    private_dir(folder)
    out = []
    for table in tables:
        cursor = db.execute(EXPORTS[table])
        columns = [c[0] for c in cursor.description]
        rows = [dict(zip(columns, row)) for row in cursor]
        path = Path(folder) / f"{table}.{fmt}"
        if fmt == "csv":
            write_private(path, _csv(columns, rows).encode(encoding))
        else:
            write_private(path, json.dumps(rows, ensure_ascii=False, indent=1) + "\n")
        out.append(Exported(table=table, path=path, rows=len(rows)))
    return out


def _csv(columns: list[str], rows: Iterable[dict]) -> str:
    buffer = io.StringIO(newline="")
    writer = csv.DictWriter(buffer, fieldnames=columns)
    writer.writeheader()
    writer.writerows({k: inert_cell(v) if isinstance(v, str) else v for k, v in row.items()} for row in rows)
    return buffer.getvalue()
