"""An escalation is not an answer (issue 18, engine/casework/escalations.py): an escalation nobody
acts on ages, and past lifecycle.escalation_business_days it is a gap of its own
(escalation_unanswered); the subject's answer, a person's act on the case, or the coordinator's act
with a new due date settle it; `engine escalations` lists them by age, the digest too."""

from __future__ import annotations

import pytest

from engine.casework.audit import run_audit
from engine.casework.escalations import EscalationError, escalations, record_act
from engine.casework.handshake import accept
from engine.casework.sweep import daily_sweep
from tests.helpers.casework import LEAD, d, open_cases, plan
from tests.helpers.cli import cli


@pytest.fixture
def escalated(conn, workspace, rules, cfg):
    """A lead request due 2026-12-11 left unanswered: the sweep of 12-14 escalates it."""
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    plan(conn, workspace, rules, cfg, cid, mid, accepted=False)
    daily_sweep(conn, rules, cfg, d("2026-12-14"))
    (key,) = [k for (k,) in conn.execute("SELECT subject_key FROM escalations WHERE subject_key LIKE 'lead:%'")]
    return cid, key


def unanswered(conn, cfg, day):
    return [v for v in run_audit(conn, cfg, d(day)).violations if v.kind == "escalation_unanswered"]


def test_an_escalation_nobody_acts_on_is_a_gap_after_ten_business_days(conn, cfg, escalated):
    cid, key = escalated
    (e,) = [e for e in escalations(conn, cfg, d("2026-12-28")) if e.key == key]
    assert not e.settled and e.age == 10  # 12-15 … 12-28, weekends out
    assert unanswered(conn, cfg, "2026-12-28") == []  # 10 is the limit, not over it
    (v,) = unanswered(conn, cfg, "2027-01-04")  # 年末年始 (12-29 … 01-03) does not count: 11 on 01-04
    assert v.case_id == cid and v.since == "2026-12-14" and "11営業日" in v.detail and "受諾依頼" in v.detail


def test_the_answer_settles_it(conn, cfg, escalated):
    cid, key = escalated
    accept(conn, cfg, cid, d("2026-12-21"), "agency", LEAD)
    (e,) = [e for e in escalations(conn, cfg, d("2027-01-08")) if e.key == key]
    assert e.settled and "解決" in e.settled_how and unanswered(conn, cfg, "2027-01-08") == []


def test_the_coordinators_act_settles_it_until_its_new_due_date(conn, cfg, escalated):
    cid, key = escalated
    acted = record_act(conn, cfg, key, d("2026-12-16"), "田中", due=d("2027-01-08"), note="電話で催促し、期日を再設定")
    assert acted.key == key and acted.settled and "コーディネーター" in acted.settled_how
    assert [e for e in escalations(conn, cfg, d("2026-12-16")) if e.key == key] == [acted]
    assert escalations(conn, cfg, d("2026-12-16"), key=key) == [acted]
    assert unanswered(conn, cfg, "2027-01-08") == []
    (e,) = [e for e in escalations(conn, cfg, d("2027-01-22")) if e.key == key]
    assert not e.settled and e.since == d("2027-01-08") and e.age == 9  # it ages again from the new due date
    (v,) = unanswered(conn, cfg, "2027-01-26")
    assert v.since == "2027-01-08"
    entry = conn.execute("SELECT actor, reason FROM audit_log WHERE event = 'escalation_acted'").fetchone()
    assert entry[0] == "田中" and "電話で催促" in entry[1] and "2027-01-08" in entry[1]


def test_an_act_is_refused_without_a_note_with_a_past_or_far_date_or_with_a_name(conn, cfg, escalated):
    _, key = escalated
    with pytest.raises(EscalationError, match="書いてください"):
        record_act(conn, cfg, key, d("2026-12-16"), "田中", due=None, note="  ")
    with pytest.raises(EscalationError, match="前の期日"):
        record_act(conn, cfg, key, d("2026-12-16"), "田中", due=d("2026-12-01"), note="催促")
    with pytest.raises(EscalationError, match="more than 3 years after"):  # a year typed wrong
        record_act(conn, cfg, key, d("2026-12-16"), "田中", due=d("9999-12-31"), note="催促")
    with pytest.raises(EscalationError, match="ありません"):
        record_act(conn, cfg, "lead:999", d("2026-12-16"), "田中", due=None, note="催促")
    name = conn.execute("SELECT name FROM persons LIMIT 1").fetchone()[0]
    with pytest.raises(Exception, match="個人情報"):
        record_act(conn, cfg, key, d("2026-12-16"), "田中", due=None, note=f"{name}さんに電話")
    assert not conn.execute("SELECT 1 FROM audit_log WHERE event = 'escalation_acted'").fetchone()


def test_engine_escalations_lists_them_by_age_and_the_digest_names_them(conn, workspace, rules, cfg, escalated):
    _, key = escalated
    daily_sweep(conn, rules, cfg, d("2027-01-04"))
    digest = conn.execute("SELECT parts FROM outbox WHERE message_key = 'digest:2027-01-04'").fetchone()[0]
    assert "対応の記録がないエスカレーション" in digest and "11営業日" in digest
    conn.close()
    shown = cli(workspace, "escalations", on=d("2027-01-04"))
    assert shown.exit_code == 0 and key in shown.output and "11営業日（上限超過）" in shown.output, shown.output
    done = cli(workspace, "escalation", key, "--note", "担当を変更", "--due", "2027-01-15", on=d("2027-01-04"))
    assert done.exit_code == 0 and "対応を記録しました" in done.output, done.output
    assert key not in cli(workspace, "escalations", on=d("2027-01-04")).output


def test_an_act_on_the_escalation_of_a_case_closed_since_is_recorded_and_read_back(conn, cfg, escalated):
    cid, key = escalated
    conn.execute("UPDATE cases SET is_open = 0 WHERE case_id = ?", (cid,))  # closed meanwhile
    assert [e for e in escalations(conn, cfg, d("2026-12-16")) if e.key == key] == []  # not listed any more
    acted = record_act(conn, cfg, key, d("2026-12-16"), "田中", due=None, note="経過を確認")  # StopIteration before
    assert acted.key == key and acted.case_id == cid
