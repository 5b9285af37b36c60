"""Helpers shared by the lifecycle tests: an 8050 household in 中央 whose case is booked into the
支援会議 of 2026-12-04 with houkatsu_chuo proposed as lead, ways to drive it forward (outcomes,
hand-shake, the clock of the daily sweep), and ways to read what the lifecycle left behind."""

from __future__ import annotations

import itertools
import json
import sqlite3
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from engine.casework.audit import run_audit
from engine.casework.handshake import accept
from engine.casework.outcome import record_outcome
from engine.workflows.cycle import nightly_cycle
from tests.helpers.town import ON, add_household, elder_and_son, person

LEAD = "houkatsu_chuo"  # the lead rules' choice for an 8050 household in 中央
MEETING_DAY = date(2026, 12, 4)  # the first 支援会議 a case screened on ON is booked into (a Friday)
DAY = date(2026, 12, 7)  # the Monday after it: outcomes and answers are recorded then
TOKYO_MORNING = "T08:00:00+09:00"  # the 08:00 dispatch
PLAN = (
    "decision: plan\nlead: houkatsu_chuo\nconsent: pending\nroles:\n"
    "  - {agency: houkatsu_chuo, action: 介護サービスの利用調整, due: 2026-12-20}\n"
)
ROLE = "roles:\n  - {agency: houkatsu_chuo, action: 調整, due: 2026-12-20}\n"
_files = itertools.count(1)


def d(text: str) -> date:
    return date.fromisoformat(text)


def morning(day: str) -> datetime:
    """08:00 in Japan on `day` (the dispatch's `now`)."""
    return datetime.fromisoformat(day + TOKYO_MORNING)


# --- the town -------------------------------------------------------------------------------------
def add_8050(conn, hid: str = "H1") -> str:
    return add_household(conn, hid, *elder_and_son(), area="中央")


def add_yotaikyo(conn, hid="HYOTAI"):
    """A household in 東部 whose child is registered with 要対協: its case is routed there."""
    return add_household(
        conn,
        hid,
        person(30, "世帯主", ("earned_income", "2000000")),
        person(1, "子", ("health_check_missed", "連絡なし"), ("yotaikyo_registered", "要支援児童")),
        area="東部",
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


def with_lc(cfg, **values):
    """The configuration with some lifecycle.yaml values changed."""
    return cfg.model_copy(update={"lifecycle": cfg.lifecycle.model_copy(update=values)})


# --- outcomes and the hand-shake ------------------------------------------------------------------
def decide(conn, workspace, rules, cfg, case_id: str, meeting_id: str, on: date, text: str):
    """Write `text` as an outcome file and record it for the case at the meeting."""
    path = workspace.parent / f"outcome-{next(_files)}.yaml"
    path.write_text(text, encoding="utf-8")
    return record_outcome(conn, rules, cfg, meeting_id, case_id, path, on, "tester")


def decided_and_accepted(conn, workspace, rules, cfg, case: dict, text: str) -> date:
    """The outcome `text` recorded at the case's meeting (`case` as tests.helpers.conference.case_of
    gives it), and its lead's acceptance the same day: the meeting's day."""
    day = held_on(conn, case["meeting"])
    decide(conn, workspace, rules, cfg, case["case_id"], case["meeting"], day, text)
    accept(conn, cfg, case["case_id"], day, "tester")
    return day


def plan_text(lead=LEAD, roles=((LEAD, "介護サービスの利用調整", "2027-01-29"),), extra=""):
    lines = "".join(f"  - {{agency: {a}, action: {act}, due: {due}}}\n" for a, act, due in roles)
    return f"decision: plan\nlead: {lead}\nroles:\n{lines}{extra}"


def plan(
    conn,
    workspace,
    rules,
    cfg,
    case_id,
    meeting_id,
    *,
    on=MEETING_DAY,
    lead=LEAD,
    roles=((LEAD, "介護サービスの利用調整", "2027-01-29"),),
    accepted=True,
):
    """The conference decides a plan on `on`; the lead accepts it the same day (unless not `accepted`)."""
    decide(conn, workspace, rules, cfg, case_id, meeting_id, on, plan_text(lead, roles))
    if accepted:
        assert accept(conn, cfg, case_id, on, "tester").status == "active"


def close(conn, workspace, rules, cfg, case_id, meeting_id, on: date, lead: str = LEAD):
    """The conference closes the case on `on` and the lead accepts the hand-off the same day."""
    decide(
        conn,
        workspace,
        rules,
        cfg,
        case_id,
        meeting_id,
        on,
        f"decision: close\nlead: {lead}\nreason: 介護サービスにつながったため\n",
    )
    assert accept(conn, cfg, case_id, on, "tester").status == "closed"


# --- reading the database -------------------------------------------------------------------------
def case(conn, case_id: str) -> dict:
    cur = conn.execute("SELECT * FROM cases WHERE case_id = ?", (case_id,))
    return dict(zip([c[0] for c in cur.description], cur.fetchone()))


def status_of(conn, case_id) -> str:
    return conn.execute("SELECT status FROM cases WHERE case_id = ?", (case_id,)).fetchone()[0]


def checkpoints(conn, case_id: str, kind: str | None = None) -> list[dict]:
    cur = conn.execute(
        "SELECT * FROM checkpoints WHERE case_id = ? AND (? IS NULL OR kind = ?) ORDER BY due_on, checkpoint_id",
        (case_id, kind, kind),
    )
    cols = [c[0] for c in cur.description]
    return [dict(zip(cols, r)) for r in cur.fetchall()]


def held_on(conn, meeting_id: str) -> date:
    return d(conn.execute("SELECT held_on FROM meetings WHERE meeting_id = ?", (meeting_id,)).fetchone()[0])


def actions(conn, case_id: str) -> list[int]:
    return [
        a for (a,) in conn.execute("SELECT action_id FROM case_actions WHERE case_id = ? ORDER BY due_on", (case_id,))
    ]


def escalations(conn) -> dict[str, tuple]:
    return {
        k: (case_id, kind, raised, digest)
        for k, case_id, kind, raised, digest in conn.execute(
            "SELECT subject_key, case_id, kind, raised_on, digest_on FROM escalations"
        )
    }


def escalation_kinds(conn) -> dict[str, str]:
    return dict(conn.execute("SELECT subject_key, kind FROM escalations"))


def violations(conn, cfg, on: date, kind: str | None = None):
    return [v for v in run_audit(conn, cfg, on).violations if kind is None or v.kind == kind]


def kinds(conn, cfg, on: date) -> list[str]:
    return [v.kind for v in run_audit(conn, cfg, on).violations]


def text_of(conn, key: str) -> str:
    """The text part of a queued e-mail."""
    return json.loads(conn.execute("SELECT parts FROM outbox WHERE message_key = ?", (key,)).fetchone()[0])["text"]


def audit_count(conn, case_id=None) -> int:
    if case_id is None:
        return conn.execute("SELECT COUNT(*) FROM audit_log").fetchone()[0]
    return conn.execute("SELECT COUNT(*) FROM audit_log WHERE case_id = ?", (case_id,)).fetchone()[0]


def events(conn, case_id) -> list[str]:
    return [e for (e,) in conn.execute("SELECT event FROM audit_log WHERE case_id = ? ORDER BY seq", (case_id,))]


def snapshot(conn) -> dict:
    """Row counts of every lifecycle table and each case's state: equal before and after a refusal."""
    tables = (
        "cases",
        "outcomes",
        "lead_requests",
        "case_actions",
        "checkpoints",
        "escalations",
        "outbox",
        "audit_log",
        "contacts",
        "case_meetings",
    )
    return {t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0] for t in tables} | {
        "states": conn.execute("SELECT case_id, status, meeting_id FROM cases ORDER BY case_id").fetchall()
    }


# --- three convened cases (the `convened` fixture of tests/conftest.py) ---------------------------
@dataclass
class Town:
    conn: sqlite3.Connection
    workspace: Path
    tmp: Path
    rules: object
    cfg: object
    cases: list[str]  # C-2026-00001.. for households H1.. (all in 中央)
    meeting: str

    @property
    def case(self) -> str:
        return self.cases[0]

    def file(self, text: str, name: str = "outcome.yaml") -> Path:
        path = self.tmp / name
        path.write_text(text, encoding="utf-8")
        return path

    def outcome(
        self,
        text: str,
        *,
        case: str | None = None,
        meeting: str | None = None,
        on: date = DAY,
        name: str = "outcome.yaml",
    ):
        return record_outcome(
            self.conn,
            self.rules,
            self.cfg,
            meeting or self.meeting,
            case or self.case,
            self.file(text, name),
            on,
            "tester",
        )

    def snapshot(self, case: str | None = None) -> dict:
        case = case or self.case
        q = lambda sql: self.conn.execute(sql, (case,)).fetchall()  # noqa: E731
        return {
            "case": q("SELECT * FROM cases WHERE case_id = ?"),
            "outcomes": q("SELECT * FROM outcomes WHERE case_id = ?"),
            "requests": q("SELECT * FROM lead_requests WHERE case_id = ?"),
            "actions": q("SELECT * FROM case_actions WHERE case_id = ?"),
            "checkpoints": q("SELECT * FROM checkpoints WHERE case_id = ?"),
            "audit": q("SELECT seq FROM audit_log WHERE case_id = ?"),
            "contacts": q("SELECT * FROM contacts WHERE case_id = ?"),
            "escalations": q("SELECT * FROM escalations WHERE case_id = ?"),
            "outbox": self.conn.execute(
                "SELECT message_key FROM outbox WHERE kind != 'agenda' ORDER BY message_key"
            ).fetchall(),
        }
