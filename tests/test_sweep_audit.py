"""The daily sweep and the gap audit on a fake clock: reminders, escalations, the coordinator's
digest, plan evaluations, the post-closure watch, every reopen trigger (もどし・つなぎ直し) and
each audit invariant. The clock is only the `on` date handed to each call.

The town: one 8050 household in 中央 (lead: houkatsu_chuo) screened on ON = 2026-11-27 (Fri);
its case is booked into the 支援会議 of 2026-12-04 (Fri).
"""

from __future__ import annotations

import email
import email.policy
import json
from datetime import date, timedelta

import pytest
from typer.testing import CliRunner

from engine.casework.audit import run_audit
from engine.casework.handshake import accept, action_done, record_contact
from engine.casework.sweep import daily_sweep
from engine.casework.watch import answer_checkpoint
from engine.cli.main import app
from engine.conference.lead import propose_lead
from engine.outbox.mail import FileTransport, send_pending
from engine.support.business_days import add_months
from engine.workflows.cycle import nightly_cycle
from tests.casework import LEAD, MEETING_DAY, add_arrears, case, checkpoints, d, decide, open_cases
from tests.conftest import ROOT
from tests.town import ON


# --- helpers ----------------------------------------------------------------------------------
def plan(
    conn,
    workspace,
    rules,
    cfg,
    case_id,
    meeting_id,
    on=MEETING_DAY,
    roles=((LEAD, "介護サービスの利用調整", "2027-01-29"),),
    lead=LEAD,
    accepted=True,
):
    lines = "".join(f"  - {{agency: {a}, action: {act}, due: {due}}}\n" for a, act, due in roles)
    decide(conn, workspace, rules, cfg, case_id, meeting_id, on, f"decision: plan\nlead: {lead}\nroles:\n{lines}")
    if accepted:
        assert accept(conn, cfg, case_id, on, "tester").status == "active"


def close(conn, workspace, rules, cfg, case_id, meeting_id, on: date):
    """The conference closes the case on `on` and the lead accepts the hand-off the same day."""
    decide(
        conn,
        workspace,
        rules,
        cfg,
        case_id,
        meeting_id,
        on,
        f"decision: close\nlead: {LEAD}\nreason: 介護サービスにつながったため\n",
    )
    assert accept(conn, cfg, case_id, on, "tester").status == "closed"


def outbox(conn, kind: str) -> list[tuple[str, str]]:
    return conn.execute(
        "SELECT message_key, agency_id FROM outbox WHERE kind = ? ORDER BY message_key", (kind,)
    ).fetchall()


def escalations(conn) -> dict[str, tuple]:
    return {
        k: (case_id, kind, raised, digest)
        for k, case_id, kind, raised, digest in conn.execute(
            "SELECT subject_key, case_id, kind, raised_on, digest_on FROM escalations"
        )
    }


def actions(conn, case_id: str) -> list[int]:
    return [
        a for (a,) in conn.execute("SELECT action_id FROM case_actions WHERE case_id = ? ORDER BY due_on", (case_id,))
    ]


def violations(conn, cfg, on: date, kind: str | None = None):
    return [v for v in run_audit(conn, cfg, on).violations if kind is None or v.kind == kind]


def text_of(conn, key: str) -> str:
    return json.loads(conn.execute("SELECT parts FROM outbox WHERE message_key = ?", (key,)).fetchone()[0])["text"]


# --- 1. reminders and the digest --------------------------------------------------------------
def test_an_action_due_within_three_business_days_gets_exactly_one_reminder(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    plan(
        conn,
        workspace,
        rules,
        cfg,
        cid,
        mid,
        roles=((LEAD, "介護サービスの利用調整", "2026-12-10"), ("jiritsu_soudan", "就労に向けた相談", "2026-12-25")),
    )
    soon, later = actions(conn, cid)
    # Fri 12-04: three business days ahead is Wed 12-09, the action is due Thu 12-10: not yet
    assert daily_sweep(conn, rules, cfg, d("2026-12-04")).reminders == 0 and outbox(conn, "reminder") == []
    assert daily_sweep(conn, rules, cfg, d("2026-12-07")).reminders == 1
    assert outbox(conn, "reminder") == [(f"reminder:{soon}:due", LEAD)]
    # run again the same day and the next day: nothing new
    assert daily_sweep(conn, rules, cfg, d("2026-12-07")).reminders == 0
    assert daily_sweep(conn, rules, cfg, d("2026-12-08")).reminders == 0
    assert outbox(conn, "reminder") == [(f"reminder:{soon}:due", LEAD)]
    assert escalations(conn) == {}
    assert f"reminder:{later}:due" not in dict(outbox(conn, "reminder"))


def test_an_overdue_action_gets_an_overdue_reminder_and_one_escalation(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    plan(conn, workspace, rules, cfg, cid, mid, roles=((LEAD, "介護サービスの利用調整", "2026-12-10"),))
    (aid,) = actions(conn, cid)
    daily_sweep(conn, rules, cfg, d("2026-12-07"))
    assert daily_sweep(conn, rules, cfg, d("2026-12-10")).escalations == 0  # due today: not overdue yet
    result = daily_sweep(conn, rules, cfg, d("2026-12-11"))
    assert (result.reminders, result.escalations) == (1, 1)
    assert outbox(conn, "reminder") == [(f"reminder:{aid}:due", LEAD), (f"reminder:{aid}:overdue", LEAD)]
    assert escalations(conn) == {f"action:{aid}": (cid, "action_overdue", "2026-12-11", "2026-12-11")}
    again = [daily_sweep(conn, rules, cfg, day) for day in (d("2026-12-11"), d("2026-12-14"))]
    assert sum(r.reminders + r.escalations for r in again) == 0
    assert len(outbox(conn, "reminder")) == 2 and len(escalations(conn)) == 1


def test_a_done_action_gets_no_reminder(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    plan(conn, workspace, rules, cfg, cid, mid, roles=((LEAD, "介護サービスの利用調整", "2026-12-10"),))
    (aid,) = actions(conn, cid)
    action_done(conn, cfg, aid, d("2026-12-05"), "tester")
    for day in ("2026-12-07", "2026-12-11", "2026-12-14"):
        assert daily_sweep(conn, rules, cfg, d(day)).reminders == 0
    assert outbox(conn, "reminder") == [] and escalations(conn) == {}
    assert violations(conn, cfg, d("2026-12-14")) == []


def test_the_digest_goes_to_the_coordinator_on_business_days_only(conn, workspace, rules, cfg, cal):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    plan(conn, workspace, rules, cfg, cid, mid, roles=((LEAD, "介護サービスの利用調整", "2026-12-10"),))
    (aid,) = actions(conn, cid)
    saturday = d("2026-12-12")
    assert cal.closed_reason(saturday) == "土曜日"
    result = daily_sweep(conn, rules, cfg, saturday)
    assert result.escalations == 1 and result.digest is False
    assert outbox(conn, "digest") == [] and escalations(conn)[f"action:{aid}"][3] is None  # waits for Monday
    monday = daily_sweep(conn, rules, cfg, d("2026-12-14"))
    assert monday.digest is True
    assert outbox(conn, "digest") == [("digest:2026-12-14", "coordinator")]
    body = text_of(conn, "digest:2026-12-14")
    assert (
        "新たなエスカレーション 1 件" in body
        and f"役割 {aid}（{LEAD}）が期日 2026-12-10 を過ぎても未完了" in body
        and cid in body
    )
    assert escalations(conn)[f"action:{aid}"][3] == "2026-12-14"
    # a second sweep the same day queues no second digest; the next day's digest has nothing new
    assert daily_sweep(conn, rules, cfg, d("2026-12-14")).digest is False
    assert daily_sweep(conn, rules, cfg, d("2026-12-15")).digest is True
    assert "新たなエスカレーション 0 件" in text_of(conn, "digest:2026-12-15")
    # a national holiday (成人の日) and the new-year closure: no digest
    assert cal.closed_reason(d("2027-01-11")) == "成人の日"
    for closed in ("2027-01-11", "2026-12-30"):
        assert daily_sweep(conn, rules, cfg, d(closed)).digest is False
    assert [k for k, _ in outbox(conn, "digest")] == ["digest:2026-12-14", "digest:2026-12-15"]

    send_pending(conn, cfg, workspace, transport=FileTransport(workspace / "outbox"))
    assert conn.execute("SELECT status, sent_to FROM outbox WHERE message_key = 'digest:2026-12-14'").fetchone() == (
        "sent",
        cfg.lifecycle.coordinator_email,
    )
    msg = email.message_from_bytes(
        (workspace / "outbox" / "digest_2026-12-14.eml").read_bytes(), policy=email.policy.default
    )
    assert msg["To"] == cfg.lifecycle.coordinator_email and msg["X-Engine-Key"] == "digest:2026-12-14"
    assert f"役割 {aid}" in msg.get_body(("plain",)).get_content()


# --- 2. escalations ---------------------------------------------------------------------------
def test_a_lead_request_unanswered_past_its_due_day_is_escalated(conn, workspace, rules, cfg, cal):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    plan(conn, workspace, rules, cfg, cid, mid, accepted=False)
    request_id, due = conn.execute(
        "SELECT request_id, due_on FROM lead_requests WHERE case_id = ? AND status = 'pending'", (cid,)
    ).fetchone()
    assert due == cal.add(MEETING_DAY, cfg.lifecycle.lead_answer_business_days).isoformat() == "2026-12-11"
    assert daily_sweep(conn, rules, cfg, d(due)).escalations == 0
    assert daily_sweep(conn, rules, cfg, d("2026-12-14")).escalations == 1
    assert escalations(conn) == {f"lead:{request_id}": (cid, "lead_no_answer", "2026-12-14", "2026-12-14")}
    assert daily_sweep(conn, rules, cfg, d("2026-12-15")).escalations == 0


def test_a_meeting_without_outcome_is_escalated_only_after_the_grace(conn, workspace, rules, cfg, cal):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    assert cal.add(MEETING_DAY, cfg.lifecycle.outcome_business_days) == d("2026-12-08")
    for day in ("2026-12-04", "2026-12-07", "2026-12-08"):
        assert daily_sweep(conn, rules, cfg, d(day)).escalations == 0, day
    assert escalations(conn) == {}
    assert daily_sweep(conn, rules, cfg, d("2026-12-09")).escalations == 1
    assert escalations(conn) == {f"outcome:{cid}:{mid}": (cid, "outcome_missing", "2026-12-09", "2026-12-09")}


def test_a_recorded_outcome_is_not_escalated(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    plan(conn, workspace, rules, cfg, cid, mid, on=d("2026-12-07"))
    assert daily_sweep(conn, rules, cfg, d("2026-12-09")).escalations == 0 and escalations(conn) == {}


def test_an_unanswered_watch_checkpoint_is_escalated_after_its_answer_day(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    close(conn, workspace, rules, cfg, cid, mid, d("2026-12-22"))
    record_contact(conn, cfg, cid, LEAD, d("2027-03-01"), "tester")  # keeps the 90-day rule quiet
    assert daily_sweep(conn, rules, cfg, d("2027-03-23")).checkpoints_asked == 1
    first = checkpoints(conn, cid, "watch")[0]
    assert (first["status"], first["answer_due"]) == ("asked", "2027-03-30")
    assert daily_sweep(conn, rules, cfg, d("2027-03-30")).escalations == 0
    assert daily_sweep(conn, rules, cfg, d("2027-03-31")).escalations == 1
    assert escalations(conn) == {
        f"checkpoint:{first['checkpoint_id']}": (cid, "checkpoint_no_answer", "2027-03-31", "2027-03-31")
    }
    assert violations(conn, cfg, d("2027-03-31")) == []


# --- 3. plan evaluation -----------------------------------------------------------------------
def test_a_due_plan_evaluation_is_booked_into_a_meeting(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    plan(conn, workspace, rules, cfg, cid, mid)
    (evaluation,) = checkpoints(conn, cid, "evaluation")
    assert (evaluation["due_on"], evaluation["status"]) == ("2027-03-04", "pending")  # +3 months of acceptance
    assert (
        daily_sweep(conn, rules, cfg, d("2027-03-03")).evaluations_booked == 0 and case(conn, cid)["meeting_id"] == mid
    )
    result = daily_sweep(conn, rules, cfg, d("2027-03-04"))
    assert result.evaluations_booked == 1
    after = case(conn, cid)
    assert after["status"] == "active" and after["lead_agency_id"] == LEAD and after["meeting_id"] != mid
    held_on = conn.execute("SELECT held_on FROM meetings WHERE meeting_id = ?", (after["meeting_id"],)).fetchone()[0]
    assert held_on > "2027-03-04"
    assert checkpoints(conn, cid, "evaluation")[0]["status"] == "done"
    assert (
        daily_sweep(conn, rules, cfg, d("2027-03-05")).evaluations_booked == 0
        and case(conn, cid)["meeting_id"] == after["meeting_id"]
    )


# --- 4. the watch on business days ------------------------------------------------------------
@pytest.mark.parametrize(
    "closed_on, expected",
    [
        ("2026-12-07", ["2027-03-08", "2027-06-07", "2027-12-07"]),  # +3 months: Sunday 2027-03-07
        ("2026-12-22", ["2027-03-23", "2027-06-22", "2027-12-22"]),  # +3 months: 2027-03-22 春分の日 振替休日
        ("2027-02-03", ["2027-05-06", "2027-08-03", "2028-02-03"]),  # +3 months: 憲法記念日, みどりの日, こどもの日
    ],
)
def test_watch_checkpoints_are_moved_to_the_next_business_day(conn, workspace, rules, cfg, cal, closed_on, expected):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    close(conn, workspace, rules, cfg, cid, mid, d(closed_on))
    assert case(conn, cid)["closed_on"] == closed_on
    due = [c["due_on"] for c in checkpoints(conn, cid, "watch")]
    assert due == expected
    assert all(cal.is_business_day(d(x)) for x in due)
    assert not cal.is_business_day(add_months(d(closed_on), 3))  # the raw +3 months is a closed day


def test_the_sweep_asks_the_lead_on_the_checkpoint_day(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    close(conn, workspace, rules, cfg, cid, mid, d("2026-12-22"))
    record_contact(conn, cfg, cid, LEAD, d("2027-03-01"), "tester")
    first = checkpoints(conn, cid, "watch")[0]
    assert daily_sweep(conn, rules, cfg, d("2027-03-22")).checkpoints_asked == 0  # 振替休日: the raw +3 months
    assert checkpoints(conn, cid, "watch")[0]["status"] == "pending" and outbox(conn, "checkpoint") == []
    assert daily_sweep(conn, rules, cfg, d("2027-03-23")).checkpoints_asked == 1
    asked = checkpoints(conn, cid, "watch")
    assert (asked[0]["status"], asked[0]["asked_on"], asked[0]["answer_due"]) == ("asked", "2027-03-23", "2027-03-30")
    assert [c["status"] for c in asked[1:]] == ["pending", "pending"]
    assert outbox(conn, "checkpoint") == [(f"checkpoint:{first['checkpoint_id']}", LEAD)]
    assert "engine watch" in text_of(conn, f"checkpoint:{first['checkpoint_id']}")
    assert (
        daily_sweep(conn, rules, cfg, d("2027-03-24")).checkpoints_asked == 0 and len(outbox(conn, "checkpoint")) == 1
    )
    assert case(conn, cid)["status"] == "closed"


# --- 5. reopen triggers (もどし) and re-linking (つなぎ直し) --------------------------------------
def assert_reopened(conn, case_id: str, on: date) -> dict:
    row = case(conn, case_id)
    assert row["status"] in ("convened", "detected") and row["is_open"] == 1
    assert (
        row["reopen_count"] == 1
        and row["lead_agency_id"] == LEAD
        and row["lead_confirmed_on"] is None
        and row["closed_on"] is None
    )
    assert "前回の主担当機関" in row["lead_reason"]
    if row["status"] == "convened":
        assert (
            conn.execute("SELECT held_on FROM meetings WHERE meeting_id = ?", (row["meeting_id"],)).fetchone()[0]
            > on.isoformat()
        )
    assert (
        conn.execute("SELECT COUNT(*) FROM cases WHERE household_id = ?", (row["household_id"],)).fetchone()[0] == 1
    )  # the same case, no new one
    assert not [c for c in checkpoints(conn, case_id) if c["status"] in ("pending", "asked")]
    assert conn.execute(
        "SELECT to_status FROM audit_log WHERE case_id = ? AND event = 'transition' ORDER BY seq DESC LIMIT 2",
        (case_id,),
    ).fetchall()[1] == ("reopened",)
    return row


@pytest.mark.parametrize("answer", ["concern", "lost_contact"])
def test_a_watch_answer_of_concern_or_lost_contact_reopens_the_case(conn, workspace, rules, cfg, answer):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    close(conn, workspace, rules, cfg, cid, mid, d("2026-12-22"))
    record_contact(conn, cfg, cid, LEAD, d("2027-03-01"), "tester")
    daily_sweep(conn, rules, cfg, d("2027-03-23"))
    result = answer_checkpoint(conn, rules, cfg, cid, answer, d("2027-03-25"), "tester")
    assert result.status == "convened"
    assert_reopened(conn, cid, d("2027-03-25"))
    assert checkpoints(conn, cid, "watch")[0]["result"] == answer
    contacts = conn.execute("SELECT via FROM contacts WHERE case_id = ? AND on_day = '2027-03-25'", (cid,)).fetchall()
    assert contacts == ([] if answer == "lost_contact" else [("watch",)])


def test_a_new_flag_for_a_closed_household_reopens_the_same_case(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    close(conn, workspace, rules, cfg, cid, mid, d("2026-12-07"))
    add_arrears(conn, "H1", 1, "2027-01-20")
    result = nightly_cycle(conn, workspace, rules, cfg, d("2027-01-20")).convene
    assert (result.reopened, result.cases_opened, result.flags_attached) == (1, 0, 1)
    assert_reopened(conn, cid, d("2027-01-20"))
    flags = {
        r
        for (r,) in conn.execute(
            "SELECT f.rule_id FROM case_flags c JOIN flags f ON f.flag_id = c.flag_id WHERE c.case_id = ?", (cid,)
        )
    }
    assert {"8050", "multiple_arrears"} <= flags


def test_a_new_flag_for_a_suspended_household_reopens_the_same_case(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    decide(
        conn,
        workspace,
        rules,
        cfg,
        cid,
        mid,
        MEETING_DAY,
        "decision: suspend\nreview_on: 2027-06-01\nreason: 本人が支援を希望しないため\n",
    )
    assert case(conn, cid)["status"] == "suspended"
    add_arrears(conn, "H1", 1, "2027-01-20")
    assert nightly_cycle(conn, workspace, rules, cfg, d("2027-01-20")).convene.reopened == 1
    assert_reopened(conn, cid, d("2027-01-20"))


def test_no_contact_by_the_lead_for_90_days_reopens_but_a_logged_contact_keeps_it_closed(conn, workspace, rules, cfg):
    (silent, m), (in_touch, _), (other_agency, _) = open_cases(conn, workspace, rules, cfg, "HA", "HB", "HC")
    for cid in (silent, in_touch, other_agency):
        close(conn, workspace, rules, cfg, cid, m, d("2026-12-07"))
    record_contact(conn, cfg, in_touch, LEAD, d("2027-02-01"), "tester")
    record_contact(conn, cfg, other_agency, "jiritsu_soudan", d("2027-02-01"), "tester")  # not the lead: does not count
    assert daily_sweep(conn, rules, cfg, d("2027-03-05")).reopened == 0  # 88 days
    assert {case(conn, c)["status"] for c in (silent, in_touch, other_agency)} == {"closed"}
    # 91 days after closure the +3-month checkpoint is asked that very morning: the lead has until
    # the answer is due before its silence counts against it
    result = daily_sweep(conn, rules, cfg, d("2027-03-08"))
    assert (result.checkpoints_asked, result.reopened) == (3, 0)
    answer_due = checkpoints(conn, silent, "watch")[0]["answer_due"]
    assert daily_sweep(conn, rules, cfg, d(answer_due)).reopened == 0
    after = d(answer_due) + timedelta(days=1)
    result = daily_sweep(conn, rules, cfg, after)
    assert result.reopened == 2
    assert_reopened(conn, silent, after)
    assert_reopened(conn, other_agency, after)
    kept = case(conn, in_touch)
    assert (kept["status"], kept["reopen_count"]) == ("closed", 0)
    assert checkpoints(conn, in_touch, "watch")[0]["status"] == "asked"
    reason = conn.execute(
        "SELECT reason FROM audit_log WHERE case_id = ? AND to_status = 'reopened'", (silent,)
    ).fetchone()[0]
    assert "90日間ない" in reason
    assert daily_sweep(conn, rules, cfg, after).reopened == 0


def test_the_suspension_review_day_reopens_the_case(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    decide(
        conn,
        workspace,
        rules,
        cfg,
        cid,
        mid,
        MEETING_DAY,
        "decision: suspend\nreview_on: 2027-01-11\nreason: 本人が支援を希望しないため\n",
    )
    (review,) = checkpoints(conn, cid, "review")
    assert (review["due_on"], review["status"]) == ("2027-01-12", "pending")  # 2027-01-11 is 成人の日
    assert violations(conn, cfg, d("2027-01-08")) == []
    assert daily_sweep(conn, rules, cfg, d("2027-01-11")).reopened == 0 and case(conn, cid)["status"] == "suspended"
    assert daily_sweep(conn, rules, cfg, d("2027-01-12")).reopened == 1
    assert_reopened(conn, cid, d("2027-01-12"))
    assert checkpoints(conn, cid, "review")[0]["status"] == "done"
    assert daily_sweep(conn, rules, cfg, d("2027-01-12")).reopened == 0


def archive(conn, workspace, rules, cfg) -> str:
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    close(conn, workspace, rules, cfg, cid, mid, d("2026-12-07"))
    states = [
        answer_checkpoint(conn, rules, cfg, cid, "stable", d(day), "tester").status
        for day in ("2027-03-08", "2027-06-07", "2027-12-07")
    ]
    assert states == ["closed", "closed", "archived"]
    return cid


def test_stable_on_the_last_watch_checkpoint_archives_the_case(conn, workspace, rules, cfg):
    cid = archive(conn, workspace, rules, cfg)
    row = case(conn, cid)
    assert (row["status"], row["is_open"]) == ("archived", 0)
    assert [c["result"] for c in checkpoints(conn, cid, "watch")] == ["stable"] * 3
    assert violations(conn, cfg, d("2027-12-08")) == []
    assert daily_sweep(conn, rules, cfg, d("2028-06-01")).reopened == 0  # the 90-day rule is for closed cases only


def test_an_archived_household_flagged_again_gets_a_new_case_linked_to_the_old_one(conn, workspace, rules, cfg):
    old = archive(conn, workspace, rules, cfg)
    add_arrears(conn, "H1", 1, "2028-01-10")
    result = nightly_cycle(conn, workspace, rules, cfg, d("2028-01-10")).convene
    assert (result.cases_opened, result.relinked, result.reopened) == (1, 1, 0)
    new = conn.execute("SELECT case_id FROM cases WHERE household_id = 'H1' AND is_open = 1").fetchone()[0]
    assert new != old and case(conn, old)["status"] == "archived"
    row = case(conn, new)
    assert row["previous_case_id"] == old and row["status"] == "convened" and row["reopen_count"] == 0
    # the rules alone would choose the 困窮 lead for arrears; the previous lead is proposed instead
    assert (
        propose_lead(
            cfg, area="中央", flag_ids={"multiple_arrears"}, served_silos=set(), conference_type="support", led={}
        ).agency_id
        != LEAD
    )
    assert row["lead_agency_id"] == LEAD and "前回の主担当機関" in row["lead_reason"]
    assert (
        conn.execute("SELECT COUNT(*) FROM audit_log WHERE case_id = ? AND event = 'relinked'", (new,)).fetchone()[0]
        == 1
    )


# --- 6. the audit -----------------------------------------------------------------------------
def one(found, kind):
    assert [v.kind for v in found] == [kind], found
    return found[0]


def test_audit_unhandled_flag(conn, workspace, rules, cfg):
    ((cid, _),) = open_cases(conn, workspace, rules, cfg)
    assert violations(conn, cfg, ON) == []
    conn.execute(
        "DELETE FROM case_flags WHERE case_id = ? AND flag_id = (SELECT flag_id FROM flags WHERE household_id = 'H1' AND rule_id = '8050')",
        (cid,),
    )
    conn.commit()
    v = one(violations(conn, cfg, d("2026-11-30")), "unhandled_flag")
    assert (v.household_id, v.case_id, v.since, v.days) == ("H1", None, ON.isoformat(), 3)
    assert "8050" in v.detail


def test_audit_no_lead(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    plan(conn, workspace, rules, cfg, cid, mid, accepted=False)
    assert case(conn, cid)["status"] == "lead_pending" and violations(conn, cfg, d("2026-12-07")) == []
    conn.execute("UPDATE lead_requests SET status = 'cancelled' WHERE case_id = ?", (cid,))
    conn.commit()
    found = violations(conn, cfg, d("2026-12-07"))
    v = next(v for v in found if v.kind == "no_lead")
    assert (v.household_id, v.case_id, v.since, v.days) == ("H1", cid, "2026-12-04", 3)


def test_audit_no_next_step(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    plan(conn, workspace, rules, cfg, cid, mid)
    assert violations(conn, cfg, d("2026-12-07")) == []
    conn.execute("UPDATE checkpoints SET status = 'cancelled' WHERE case_id = ? AND kind = 'evaluation'", (cid,))
    conn.commit()
    v = one(violations(conn, cfg, d("2026-12-07")), "no_next_step")
    assert (v.household_id, v.case_id, v.since, v.days) == ("H1", cid, "2026-12-04", 3)


def test_audit_meeting_without_outcome(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    assert violations(conn, cfg, d("2026-12-08")) == []  # within outcome_business_days
    v = one(violations(conn, cfg, d("2026-12-09")), "meeting_without_outcome")
    assert (v.household_id, v.case_id, v.since, v.days) == ("H1", cid, "2026-12-04", 5)
    assert mid in v.detail


def test_audit_closure_without_watch(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    close(conn, workspace, rules, cfg, cid, mid, d("2026-12-07"))
    assert violations(conn, cfg, d("2026-12-21")) == []
    conn.execute("UPDATE checkpoints SET status = 'cancelled' WHERE case_id = ? AND kind = 'watch'", (cid,))
    conn.commit()
    v = one(violations(conn, cfg, d("2026-12-21")), "closure_without_watch")
    assert (v.household_id, v.case_id, v.since, v.days) == ("H1", cid, "2026-12-07", 14)


def test_audit_overdue_without_escalation_disappears_after_the_sweep(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    plan(conn, workspace, rules, cfg, cid, mid, roles=((LEAD, "介護サービスの利用調整", "2026-12-10"),))
    (aid,) = actions(conn, cid)
    v = one(violations(conn, cfg, d("2026-12-14")), "overdue_without_escalation")
    assert (v.household_id, v.case_id, v.since, v.days) == ("H1", cid, "2026-12-10", 4)
    assert f"役割 {aid}" in v.detail
    result = daily_sweep(conn, rules, cfg, d("2026-12-14"))
    assert result.escalations == 1 and result.violations == 0
    assert violations(conn, cfg, d("2026-12-14")) == []


def test_engine_audit_exit_code_and_json(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    conn.commit()
    runner = CliRunner()
    base = [
        "audit",
        "--workspace",
        str(workspace),
        "--rules",
        str(ROOT / "configs" / "rules"),
        "--config",
        str(ROOT / "configs"),
    ]
    clean = runner.invoke(app, [*base, "--date", "2026-12-08"])
    assert clean.exit_code == 0, clean.output
    assert "抜け漏れなし" in clean.stdout
    gap = runner.invoke(app, [*base, "--date", "2026-12-09"])
    assert gap.exit_code == 1, gap.output
    assert "meeting_without_outcome" in gap.stdout and cid in gap.stdout
    as_json = runner.invoke(app, [*base, "--date", "2026-12-09", "--json"])
    assert as_json.exit_code == 1
    report = json.loads(as_json.stdout)
    assert isinstance(report["violations"], list) and report["on"] == "2026-12-09"
    assert [(v["kind"], v["household_id"], v["case_id"], v["since"], v["days"]) for v in report["violations"]] == [
        ("meeting_without_outcome", "H1", cid, "2026-12-04", 5)
    ]
    ok_json = runner.invoke(app, [*base, "--date", "2026-12-08", "--json"])
    assert ok_json.exit_code == 0 and json.loads(ok_json.stdout)["violations"] == []


# --- bugs found -------------------------------------------------------------------------------


def test_evaluation_due_while_already_booked_is_not_escalated_as_unbookable(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    plan(conn, workspace, rules, cfg, cid, mid)
    action_done(conn, cfg, actions(conn, cid)[0], d("2027-01-20"), "tester")
    # a new problem a few days before the evaluation: the active case is booked into a meeting
    add_arrears(conn, "H1", 1, "2027-03-01")
    nightly_cycle(conn, workspace, rules, cfg, d("2027-03-01"))
    upcoming = case(conn, cid)["meeting_id"]
    assert (
        upcoming != mid
        and conn.execute("SELECT held_on FROM meetings WHERE meeting_id = ?", (upcoming,)).fetchone()[0] > "2027-03-04"
    )
    daily_sweep(conn, rules, cfg, d("2027-03-04"))  # the evaluation is due
    assert not [k for k, v in escalations(conn).items() if v[1] == "evaluation_unbooked"], escalations(conn)
    assert checkpoints(conn, cid, "evaluation")[0]["status"] == "done"


def test_active_case_awaiting_its_evaluation_outcome_within_the_grace_is_not_a_gap(conn, workspace, rules, cfg, cal):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    plan(conn, workspace, rules, cfg, cid, mid)
    action_done(conn, cfg, actions(conn, cid)[0], d("2027-01-20"), "tester")
    daily_sweep(conn, rules, cfg, d("2027-03-04"))
    evaluation = case(conn, cid)["meeting_id"]
    held = d(conn.execute("SELECT held_on FROM meetings WHERE meeting_id = ?", (evaluation,)).fetchone()[0])
    assert held == d("2027-03-12")
    grace = cal.add(held, cfg.lifecycle.outcome_business_days)
    assert grace == d("2027-03-16")
    # the outcome may still be recorded on time: nothing is missing yet (a convened case in the
    # same position is not reported either: see test_audit_meeting_without_outcome)
    for day in (d("2027-03-15"), grace):
        assert violations(conn, cfg, day) == [], day


def test_a_held_meeting_without_outcome_stays_visible_when_a_new_flag_rebooks_the_case(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    add_arrears(conn, "H1", 1, "2026-12-07")
    nightly_cycle(conn, workspace, rules, cfg, d("2026-12-07"))  # within the grace of the 12-04 meeting
    assert case(conn, cid)["meeting_id"] != mid
    daily_sweep(conn, rules, cfg, d("2026-12-09"))
    reported = f"outcome:{cid}:{mid}" in escalations(conn) or any(
        mid in v.detail for v in violations(conn, cfg, d("2026-12-09"), "meeting_without_outcome")
    )
    assert reported, "the 2026-12-04 meeting's outcome was never recorded, and nobody is told"


def test_an_evaluation_due_while_the_lead_is_pending_does_not_stay_an_audit_gap(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    plan(conn, workspace, rules, cfg, cid, mid)
    action_done(conn, cfg, actions(conn, cid)[0], d("2027-01-20"), "tester")
    add_arrears(conn, "H1", 1, "2027-02-15")
    nightly_cycle(conn, workspace, rules, cfg, d("2027-02-15"))
    m2 = case(conn, cid)["meeting_id"]
    held = d(conn.execute("SELECT held_on FROM meetings WHERE meeting_id = ?", (m2,)).fetchone()[0])
    plan(
        conn,
        workspace,
        rules,
        cfg,
        cid,
        m2,
        on=held,
        lead="jiritsu_soudan",
        roles=(("jiritsu_soudan", "家計改善支援", "2027-04-30"),),
        accepted=False,
    )
    assert case(conn, cid)["status"] == "lead_pending"
    assert checkpoints(conn, cid, "evaluation")[0]["due_on"] == "2027-03-04"
    daily_sweep(conn, rules, cfg, d("2027-03-04"))
    result = daily_sweep(conn, rules, cfg, d("2027-03-05"))
    assert result.violations == 0, violations(conn, cfg, d("2027-03-05"))
