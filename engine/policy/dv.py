"""The DV lock: a household with an open locked flag (conference.yaml `locked_flags`, DV) or a
current record of a locked code (`locked_codes`, a DV support measure) is locked in every case it
is in. A locked case is never detailed by e-mail (an agenda only counts it: 「N件（詳細は会議にて）」,
a reminder leaves out the action's wording, no routing notice goes), and it is never left to a
silo conference: the DV centre (the agencies of silo DV) takes part in its conference, whether
the lock comes from the flag or from a DV support measure alone. The lock is checked again just
before each e-mail is sent (engine/outbox/withhold.py).
"""

from __future__ import annotations

import json
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
    return household_id in locked_among(conn, config, [household_id], on_iso)


def locked_among(conn: sqlite3.Connection, config: Config, household_ids: Iterable[str], on_iso: str) -> set[str]:
    """Which of these households are DV-locked on the day, in two queries (the night's check of
    every case left with one agency asked three questions a case)."""
    flags, codes = config.conference.locked_flags, config.conference.locked_codes
    ids = json.dumps(list(household_ids))
    locked: set[str] = set()
    if flags:
        locked |= {
            h
            for (h,) in conn.execute(
                "SELECT DISTINCT f.household_id FROM json_each(?) h JOIN flags f ON f.household_id = h.value "
                f"WHERE f.status = 'open' AND f.rule_id IN ({','.join('?' * len(flags))})",
                (ids, *flags),
            )
        }
    if codes:
        locked |= {
            h
            for (h,) in conn.execute(
                "SELECT DISTINCT p.household_id FROM json_each(?) h JOIN persons p ON p.household_id = h.value "
                f"JOIN records r ON r.person_id = p.person_id WHERE r.code IN ({','.join('?' * len(codes))}) "
                "AND r.start_date <= ? AND (r.end_date IS NULL OR r.end_date >= ?)",
                (ids, *codes, on_iso, on_iso),
            )
        }
    return locked


def case_locked(
    conn: sqlite3.Connection,
    config: Config,
    household_id: str,
    rule_ids: Iterable[str],
    on_iso: str,
    locked: set[str] | None = None,
) -> bool:
    """A case is locked when one of its flags is a locked one or its household is locked.
    `locked`: the locked households among many, from locked_among, when they were checked at once."""
    if locked_flag(config, rule_ids):
        return True
    return household_id in locked if locked is not None else household_locked(conn, config, household_id, on_iso)


def case_id_locked(conn: sqlite3.Connection, config: Config, case_id: str, on_iso: str) -> bool:
    """case_locked for a case known by its id: its household and its flags read from the database."""
    (household,) = conn.execute("SELECT household_id FROM cases WHERE case_id = ?", (case_id,)).fetchone()
    rule_ids = [
        r
        for (r,) in conn.execute(
            "SELECT f.rule_id FROM case_flags c JOIN flags f ON f.flag_id = c.flag_id WHERE c.case_id = ?", (case_id,)
        )
    ]
    return case_locked(conn, config, household, rule_ids, on_iso)


class Locks:
    """case_locked, with the locks of households read at once (`read`) and kept: for a run in which
    nothing changes a flag or a record (a night's convening). A household not read so is asked
    each time, as case_locked does."""

    def __init__(self, conn: sqlite3.Connection, config: Config, on_iso: str):
        self.conn, self.config, self.on_iso = conn, config, on_iso
        self._known: dict[str, bool] = {}

    def read(self, household_ids: Iterable[str]) -> None:
        wanted = [h for h in dict.fromkeys(household_ids) if h not in self._known]
        if wanted:
            found = locked_among(self.conn, self.config, wanted, self.on_iso)
            self._known.update((h, h in found) for h in wanted)

    def case(self, household_id: str, rule_ids: Iterable[str]) -> bool:
        if household_id in self._known:
            return locked_flag(self.config, rule_ids) or self._known[household_id]
        return case_locked(self.conn, self.config, household_id, rule_ids, self.on_iso)
