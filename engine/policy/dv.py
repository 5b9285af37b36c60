"""The DV lock: a household with an open locked flag (conference.yaml `locked_flags`, DV) or a
current record of a locked code (`locked_codes`, a DV support measure) is locked in every case it
is in. A locked case is never detailed by e-mail (an agenda only counts it: 「N件（詳細は会議にて）」,
a reminder leaves out the action's wording, no routing notice goes), and it is never left to a
silo conference: the DV centre (the agencies of silo DV) takes part in its conference, whether
the lock comes from the flag or from a DV support measure alone. The lock is checked again just
before each e-mail is sent (engine/outbox/withhold.py).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from engine.config import Config

DV_CENTRE_SILO = "DV"  # agencies.yaml `silo: DV`: the 配偶者暴力相談支援センター


def locked_flag(config: Config, rule_ids: Iterable[str]) -> bool:
    """One of these flags is a locked one."""
    return bool(set(rule_ids) & set(config.conference.locked_flags))


def household_locked(conn: sqlite3.Connection, config: Config, household_id: str, on_iso: str) -> bool:
    """The DV lock of a household, whichever case it is in: an open locked flag (DV) or a current
    record of a locked code (DV support measure)."""
    flags, codes = config.conference.locked_flags, config.conference.locked_codes
    if (
        flags
        and conn.execute(
            f"SELECT 1 FROM flags WHERE household_id = ? AND status = 'open' AND rule_id IN ({','.join('?' * len(flags))})",
            (household_id, *flags),
        ).fetchone()
    ):
        return True
    return (
        bool(codes)
        and conn.execute(
            f"SELECT 1 FROM persons p CROSS JOIN records r ON r.person_id = p.person_id WHERE p.household_id = ? AND r.code IN ({','.join('?' * len(codes))}) "
            "AND r.start_date <= ? AND (r.end_date IS NULL OR r.end_date >= ?)",
            (household_id, *codes, on_iso, on_iso),
        ).fetchone()
        is not None
    )


def case_locked(
    conn: sqlite3.Connection, config: Config, household_id: str, rule_ids: Iterable[str], on_iso: str
) -> bool:
    """A case is locked when one of its flags is a locked one or its household is locked."""
    return locked_flag(config, rule_ids) or household_locked(conn, config, household_id, on_iso)
