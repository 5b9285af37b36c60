"""Golden files: one notice of each kind as its recipient reads it, rendered from a fixed scenario on
the pinned clock (2026-11-27 09:00 JST) and compared byte for byte with tests/papers/golden/notices/:

- lead_request (a 支援会議 case, and a 重層的支援会議 case: signed by that conference's 事務局);
- lead_withdrawn (a request that had reached the agency);
- reminder due, reminder overdue, and a reminder of a DV-locked household (no wording of the role);
- checkpoint (the question to the owner of the silo conference a routed case was left with);
- routing (the notice to that owner);
- digest (the coordinator's, with escalations named by agency).

Each file is the e-mail's subject, a blank line and the text part as queued (the answer link is
still its mark [[回答用リンク]]: the token is made when the e-mail is sent).

To regenerate after an intended change: `UPDATE_GOLDEN=1 .venv/bin/python -m pytest tests/papers/test_notices_golden.py`,
then read the diff of tests/papers/golden/notices/ before committing it.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from engine.casework.steps import withdraw_requests
from engine.casework.sweep import daily_sweep
from engine.store.lifecycle import Log
from tests.helpers.casework import LEAD, MEETING_DAY, add_yotaikyo, d, decide, open_cases, plan, plan_text
from tests.helpers.town import add_household, elder_and_son

GOLDEN = Path(__file__).parent / "golden" / "notices"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
KINDS = (
    "lead_request",
    "lead_request.multi",
    "lead_withdrawn",
    "reminder.due",
    "reminder.overdue",
    "reminder.locked",
    "checkpoint",
    "routing",
    "digest",
)


def mail(conn, key: str) -> str:
    subject, parts = conn.execute("SELECT subject, parts FROM outbox WHERE message_key = ?", (key,)).fetchone()
    return f"{subject}\n\n{json.loads(parts)['text']}"


def lock(conn, hid: str) -> None:
    """A DV support measure for a member of the household (imported after the night)."""
    pid = conn.execute("SELECT person_id FROM persons WHERE household_id = ? ORDER BY person_id", (hid,)).fetchone()[0]
    conn.execute(
        "INSERT INTO records VALUES (?,?,?,?,?,?,?)",
        (f"{pid}|t|dv", pid, "t", "dv_support_measure", "", "2026-11-20", None),
    )
    conn.commit()


def case_of(conn, hid: str) -> tuple[str, str]:
    return conn.execute("SELECT case_id, meeting_id FROM cases WHERE household_id = ?", (hid,)).fetchone()


@pytest.fixture
def notices(conn, workspace, rules, cfg) -> dict[str, str]:
    """The scenario: the night of 2026-11-27 (three 8050 households in 中央, one in 北部 with consent,
    one known to 要対協), the meetings' outcomes, and the daily sweeps after them."""
    add_yotaikyo(conn)
    add_household(conn, "HAGREED", *elder_and_son(consent=True), area="北部")
    (c1, m1), (c2, _), (c3, _) = open_cases(conn, workspace, rules, cfg, "H1", "H2", "H3")
    multi, multi_meeting = case_of(conn, "HAGREED")
    routed, _ = case_of(conn, "HYOTAI")
    # C1: a plan with a role due on 2026-12-10 (a Thursday), accepted the day of the meeting
    plan(conn, workspace, rules, cfg, c1, m1, roles=((LEAD, "介護サービスの利用調整と訪問", "2026-12-10"),))
    # C2: a plan whose lead request reached the agency, withdrawn (as a reopening withdraws it)
    decide(conn, workspace, rules, cfg, c2, m1, MEETING_DAY, plan_text())
    (request,) = conn.execute("SELECT request_id FROM lead_requests WHERE case_id = ?", (c2,)).fetchone()
    conn.execute("UPDATE outbox SET status = 'sent' WHERE message_key = ?", (f"lead_request:{request}",))
    with conn:
        withdraw_requests(Log(conn, d("2026-12-07"), "tester"), cfg, c2, "事案の再開")
    # C3: a DV support measure arrives for the household after its plan: the reminder keeps the role's wording out
    plan(conn, workspace, rules, cfg, c3, m1, roles=((LEAD, "家計の見直しの相談", "2026-12-10"),))
    lock(conn, "H3")
    # the 重層的支援会議 case: its lead request is signed by that conference's 事務局
    held = conn.execute("SELECT held_on FROM meetings WHERE meeting_id = ?", (multi_meeting,)).fetchone()[0]
    decide(
        conn,
        workspace,
        rules,
        cfg,
        multi,
        multi_meeting,
        d(held),
        plan_text(lead="houkatsu_kita", roles=(("houkatsu_kita", "定期的な訪問による見守り", "2027-01-29"),)),
    )
    daily_sweep(conn, rules, cfg, d("2026-12-07"))  # reminders: due
    daily_sweep(conn, rules, cfg, d("2026-12-11"))  # reminders: overdue, escalations, the digest
    (due_on,) = conn.execute(
        "SELECT due_on FROM checkpoints WHERE case_id = ? AND kind = 'check_back'", (routed,)
    ).fetchone()
    daily_sweep(conn, rules, cfg, d(due_on))  # the check-back question to the owner of 要対協
    one = lambda sql, *args: conn.execute(sql, args).fetchone()[0]  # noqa: E731
    a1 = one("SELECT action_id FROM case_actions WHERE case_id = ?", c1)
    a3 = one("SELECT action_id FROM case_actions WHERE case_id = ?", c3)
    keys = {
        "lead_request": f"lead_request:{request}",
        "lead_request.multi": one(
            "SELECT message_key FROM outbox o JOIN lead_requests r ON o.message_key = 'lead_request:' || r.request_id WHERE r.case_id = ?",
            multi,
        ),
        "lead_withdrawn": f"lead_withdrawn:{request}",
        "reminder.due": f"reminder:{a1}:due",
        "reminder.overdue": f"reminder:{a1}:overdue",
        "reminder.locked": f"reminder:{a3}:due:locked",
        "checkpoint": one(
            "SELECT 'checkpoint:' || checkpoint_id FROM checkpoints WHERE case_id = ? AND kind = 'check_back' AND status = 'asked'",
            routed,
        ),
        "routing": one("SELECT message_key FROM outbox WHERE kind = 'routing'"),
        "digest": "digest:2026-12-11",
    }
    return {kind: mail(conn, key) for kind, key in keys.items()}


@pytest.mark.parametrize("kind", KINDS)
def test_each_notice_matches_its_golden_file(notices, kind):
    golden = GOLDEN / f"{kind}.txt"
    if UPDATE:
        golden.parent.mkdir(parents=True, exist_ok=True)
        golden.write_text(notices[kind], encoding="utf-8")
    assert golden.is_file(), f"{golden} missing: run with UPDATE_GOLDEN=1 to make it"
    assert notices[kind] == golden.read_text(encoding="utf-8"), f"{kind} differs from its golden file"
