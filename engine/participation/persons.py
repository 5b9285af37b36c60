"""The members of a case's household as 参加支援 names them: 世帯員N（50代・子）, numbered as the
agendas number them (engine/papers/agenda.py member_labels), and the coordinator's 世帯員N or N."""

from __future__ import annotations

import sqlite3
from datetime import date

from engine.policy.consent import CODE as CONSENT_CODE
from engine.policy.consent import valid
from engine.rules.facts import age_on


def _members(conn: sqlite3.Connection, case_id: str) -> list[tuple[str, str, str | None]]:
    return conn.execute(
        "SELECT p.person_id, p.birth_date, p.relationship FROM persons p JOIN cases c ON c.household_id = p.household_id "
        "WHERE c.case_id = ? ORDER BY p.person_id",
        (case_id,),
    ).fetchall()


def member_label(conn: sqlite3.Connection, case_id: str, person_id: str, on: date) -> str:
    """世帯員N（50代・子）."""
    from engine.papers.agenda import age_band, relationship_word  # papers imports casework, which imports this package

    for i, (pid, birth, relationship) in enumerate(_members(conn, case_id), start=1):
        if pid == person_id:
            return f"世帯員{i}（{age_band(age_on(birth, on.isoformat()))}・{relationship_word(relationship)}）"
    return "世帯員"


def member_number(label: str) -> str:
    """世帯員N of 世帯員N（50代・子）."""
    return label.split("（", 1)[0]


def member_of(conn: sqlite3.Connection, case_id: str, on: date, text: str) -> str | None:
    """The person a coordinator names as 世帯員N, N, or by id, in the case's household."""
    rows = [pid for pid, _, _ in _members(conn, case_id)]
    t = str(text).strip().removeprefix("世帯員")
    if t.isdigit() and 1 <= int(t) <= len(rows):
        return rows[int(t) - 1]
    return str(text).strip() if str(text).strip() in rows else None


def age_of(conn: sqlite3.Connection, person_id: str, on: date) -> int:
    (birth,) = conn.execute("SELECT birth_date FROM persons WHERE person_id = ?", (person_id,)).fetchone()
    return age_on(birth, on.isoformat())


def person_consents(conn: sqlite3.Connection, person_id: str, on: date) -> bool:
    """The person has a consent record valid on the day (engine/policy/consent.py)."""
    return any(
        valid(start, end, on.isoformat())
        for start, end in conn.execute(
            "SELECT start_date, end_date FROM records WHERE person_id = ? AND code = ?", (person_id, CONSENT_CODE)
        )
    )
