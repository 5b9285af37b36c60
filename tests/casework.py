"""Helpers shared by the lifecycle tests: an 8050 household in 中央 whose case is booked into the
支援会議 of 2026-12-04 with houkatsu_chuo proposed as lead, and ways to drive it forward."""

from __future__ import annotations

import itertools
from datetime import date

from engine.casework.outcome import record_outcome
from engine.workflows.cycle import nightly_cycle
from tests.town import ON, add_household, person

LEAD = "houkatsu_chuo"  # the lead rules' choice for an 8050 household in 中央
MEETING_DAY = date(2026, 12, 4)  # the first 支援会議 a case screened on ON is booked into
_files = itertools.count(1)


def d(text: str) -> date:
    return date.fromisoformat(text)


def add_8050(conn, hid: str = "H1") -> str:
    return add_household(
        conn, hid, person(82, "世帯主", ("care_level", "要介護2"), sex="M"), person(52, "子", sex="M"), area="中央"
    )


def open_cases(conn, workspace, rules, cfg, *hids: str) -> list[tuple[str, str]]:
    """Add 8050 households, run the night of ON; (case_id, meeting_id) per household, in order."""
    for hid in hids or ("H1",):
        add_8050(conn, hid)
    nightly_cycle(conn, workspace, rules, cfg, ON)
    out = []
    for hid in hids or ("H1",):
        case_id, status, meeting_id, lead = conn.execute(
            "SELECT case_id, status, meeting_id, lead_agency_id FROM cases WHERE household_id = ?", (hid,)
        ).fetchone()
        assert (status, lead) == ("convened", LEAD)
        assert (
            conn.execute("SELECT held_on FROM meetings WHERE meeting_id = ?", (meeting_id,)).fetchone()[0]
            == MEETING_DAY.isoformat()
        )
        out.append((case_id, meeting_id))
    return out


def decide(conn, workspace, rules, cfg, case_id: str, meeting_id: str, on: date, text: str):
    """Write `text` as an outcome file and record it for the case at the meeting."""
    path = workspace.parent / f"outcome-{next(_files)}.yaml"
    path.write_text(text, encoding="utf-8")
    return record_outcome(conn, rules, cfg, meeting_id, case_id, path, on, "tester")


def case(conn, case_id: str) -> dict:
    cur = conn.execute("SELECT * FROM cases WHERE case_id = ?", (case_id,))
    return dict(zip([c[0] for c in cur.description], cur.fetchone()))


def checkpoints(conn, case_id: str, kind: str | None = None) -> list[dict]:
    cur = conn.execute(
        "SELECT * FROM checkpoints WHERE case_id = ? AND (? IS NULL OR kind = ?) ORDER BY due_on, checkpoint_id",
        (case_id, kind, kind),
    )
    cols = [c[0] for c in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def held_on(conn, meeting_id: str) -> date:
    return d(conn.execute("SELECT held_on FROM meetings WHERE meeting_id = ?", (meeting_id,)).fetchone()[0])


def add_arrears(conn, hid: str, seq: int, when: str, rel: str = "子") -> None:
    """Two 4-month arrears of a member arrive with an import: the night flags multiple_arrears."""
    pid = conn.execute(
        "SELECT person_id FROM persons WHERE household_id = ? AND relationship = ?", (hid, rel)
    ).fetchone()[0]
    for kind in ("kokuho", "water"):
        conn.execute(
            "INSERT INTO records VALUES (?,?,?,?,?,?,?)",
            (f"{pid}|t|arrears|{kind}", pid, "t", "arrears", f"{kind}:4", "2026-09-01", None),
        )
    conn.execute("UPDATE households SET changed_seq = ? WHERE household_id = ?", (seq, hid))
    conn.execute("INSERT INTO imports VALUES (?, ?, 'x', 'utf-8', '{}')", (seq, f"{when}T00:00:00"))
    conn.commit()
