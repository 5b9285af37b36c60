"""`engine history CASE` (engine/casework/history.py): the story of a case in order, every entry with a
Japanese label, the action numbers `engine done` needs, the mail sent and failed — only the agendas
that carried the case."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from engine.casework.handshake import accept
from engine.casework.history import history, render_history
from engine.casework.sweep import daily_sweep
from engine.casework.watch import answer_checkpoint
from engine.outbox import FileTransport, send_pending
from engine.store.lifecycle import CaseNotFound
from engine.workflows.cycle import nightly_cycle
from tests.helpers.casework import (
    DAY,
    LEAD,
    MEETING_DAY,
    PLAN,
    add_arrears,
    case,
    close,
    d,
    decide,
    morning,
    open_cases,
    plan,
    plan_text,
)
from tests.helpers.cli import cli
from tests.helpers.town import ON, add_household, person


def test_history_tells_the_story_in_order(convened):
    convened.outcome(PLAN)
    accept(convened.conn, convened.cfg, convened.case, DAY, "tester")
    entries = history(convened.conn, convened.case)
    assert [e.seq for e in entries] == sorted(e.seq for e in entries)
    assert {"opened", "outcome", "lead_requested", "lead_accepted", "checkpoint_scheduled"} <= {
        e.event for e in entries
    }
    text = render_history(convened.case, entries)
    assert "状態の変更: 会議に付議 → 主担当機関の受諾待ち" in text and "受諾" in text
    with pytest.raises(CaseNotFound):
        history(convened.conn, "C-2026-99999")


def test_sent_and_failed_lifecycle_mail_is_in_the_case_history(conn, workspace, rules, cfg):
    from engine.outbox import PermanentFailure

    class Refuses:
        def __init__(self):
            self.inner = FileTransport(workspace / "outbox")

        def send(self, msg, recipient, key):
            if key.startswith("reminder:"):
                raise PermanentFailure("550 mailbox unavailable")
            self.inner.send(msg, recipient, key)

        def close(self):
            pass

    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    decide(
        conn,
        workspace,
        rules,
        cfg,
        cid,
        mid,
        MEETING_DAY,
        plan_text(roles=((LEAD, "介護サービスの利用調整", "2026-12-10"),)),
    )
    send_pending(conn, cfg, workspace, transport=Refuses(), now=morning("2026-12-04"))
    accept(conn, cfg, cid, MEETING_DAY, "tester")
    daily_sweep(conn, rules, cfg, d("2026-12-07"))
    send_pending(conn, cfg, workspace, transport=Refuses(), now=morning("2026-12-07"))
    events = conn.execute(
        "SELECT event, json_extract(detail, '$.message_key') FROM audit_log WHERE case_id = ? AND event LIKE 'mail_%'",
        (cid,),
    ).fetchall()
    assert ("mail_sent", "lead_request:1") in events
    assert any(e == "mail_failed" and k.startswith("reminder:") for e, k in events)


@pytest.mark.regression("issue 4: the case lifecycle used from the CLI")
def test_every_history_entry_has_a_japanese_label(conn, workspace, rules, cfg):
    (a, ma), (b, mb) = open_cases(conn, workspace, rules, cfg, "HA", "HB")
    close(conn, workspace, rules, cfg, a, ma, d("2026-12-07"))
    answer_checkpoint(conn, rules, cfg, a, "concern", d("2027-01-15"), "tester")  # a crisis between checkpoints
    plan(conn, workspace, rules, cfg, b, mb, accepted=False)
    # the pending request of b is withdrawn when the conference suspends the case at its next meeting
    add_arrears(conn, "HB", 1, "2026-12-07")
    nightly_cycle(conn, workspace, rules, cfg, d("2026-12-07"))
    m2 = case(conn, b)["meeting_id"]
    held = d(conn.execute("SELECT held_on FROM meetings WHERE meeting_id = ?", (m2,)).fetchone()[0])
    decide(
        conn,
        workspace,
        rules,
        cfg,
        b,
        m2,
        held,
        "decision: suspend\nreview_on: 2027-03-01\nreason: 本人が入院したため\n",
    )
    seen = {e.event: e.label for cid in (a, b) for e in history(conn, cid)}
    assert {"crisis_reported", "lead_request_withdrawn"} <= set(seen)
    english = {event: label for event, label in seen.items() if not re.search(r"[ぁ-んァ-ヶ一-龥]", label)}
    assert english == {}
    text = render_history(a, history(conn, a)) + render_history(b, history(conn, b))
    assert "crisis_reported" not in text and "lead_request_withdrawn" not in text


@pytest.mark.regression("issue 4: the case lifecycle used from the CLI")
def test_history_shows_the_action_numbers_engine_done_needs(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    plan(
        conn,
        workspace,
        rules,
        cfg,
        cid,
        mid,
        roles=((LEAD, "介護サービスの利用調整", "2027-01-29"), ("jiritsu_soudan", "就労に向けた相談", "2027-01-29")),
    )
    ids = [
        a for (a,) in conn.execute("SELECT action_id FROM case_actions WHERE case_id = ? ORDER BY action_id", (cid,))
    ]
    failed = cli(workspace, "done", "9999", on=d("2026-12-07"))
    assert "engine history" in failed.output  # the hint a coordinator follows
    shown = cli(workspace, "history", cid).stdout
    assert all(re.search(rf"役割 {i}\b", shown) for i in ids), shown


@pytest.mark.regression("issue 4: the case lifecycle used from the CLI")
def test_history_lists_only_the_agendas_that_carried_the_case(conn, workspace, rules, cfg):
    add_household(
        conn, "HCHUO", person(82, "世帯主", ("care_level", "要介護2"), sex="M"), person(52, "子", sex="M"), area="中央"
    )
    add_household(
        conn,
        "HMINAMI",
        person(81, "世帯主", ("care_level", "要介護2"), sex="M"),
        person(50, "子", sex="M"),
        area="南部",
    )
    nightly_cycle(conn, workspace, rules, cfg, ON)
    (c1, m1, lead1), (c2, m2, lead2) = conn.execute(
        "SELECT case_id, meeting_id, lead_agency_id FROM cases ORDER BY household_id"
    ).fetchall()
    assert m1 == m2 and lead1 != lead2  # one meeting, two different leads
    send_pending(
        conn,
        cfg,
        workspace,
        transport=FileTransport(workspace / "outbox"),
        now=datetime(2026, 11, 27, 23, 0, tzinfo=UTC),
    )
    invited = {a for (a,) in conn.execute("SELECT agency_id FROM case_agencies WHERE case_id = ?", (c2,))}
    assert lead1 not in invited
    told = {e.detail["agency"] for e in history(conn, c2) if e.event == "mail_sent"}
    assert told and told <= invited, f"{c2}'s history says {sorted(told - invited)} were sent it"
