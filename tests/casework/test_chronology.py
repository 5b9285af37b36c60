"""The date policy (engine/store/chronology.py) in the plain functions: runs never before the last
nightly cycle, entries never before what they answer nor ahead of today, late entries only with an
audited reason, corrections appended, system actor names reserved."""

from __future__ import annotations

import re
from datetime import date, datetime, time
from pathlib import Path

import pytest

from engine.casework.correction import CorrectionRefused, correct_entry
from engine.casework.handshake import accept, action_done, decline, record_contact
from engine.casework.history import history, render_history
from engine.casework.sweep import daily_sweep
from engine.casework.watch import answer_checkpoint
from engine.screening.screen import screen
from engine.store.chronology import FUTURE_DAYS, DateRefused, Dating, horizon, last_cycle, workspace_today
from engine.store.lifecycle import SYSTEM_ACTORS, ActorRefused, person_actor
from engine.support import clock
from engine.workflows.cycle import dispatch, nightly_cycle
from tests.helpers.casework import DAY, MEETING_DAY, PLAN, actions, close, d, decide, plan, status_of
from tests.helpers.town import ON

ENGINE = Path(__file__).resolve().parents[2] / "engine"


def typed(conn, on: date, reason: str | None = None) -> Dating:
    """A date a person typed on `on` (the CLI's checks)."""
    with clock.pinned(datetime.combine(on, time(9), clock.TOKYO)):
        return Dating(not_after=horizon(conn), backdate_reason=reason)


def counts(conn) -> dict:
    return {
        t: conn.execute(f"SELECT COUNT(*) FROM {t}").fetchone()[0]
        for t in ("audit_log", "cases", "meetings", "outbox", "contacts", "screen_runs", "lead_requests")
    }


# --- runs ------------------------------------------------------------------------------------------
def test_a_run_dated_before_the_last_nightly_cycle_is_refused_and_changes_nothing(convened):
    conn, ws, rules, cfg = convened.conn, convened.workspace, convened.rules, convened.cfg
    assert last_cycle(conn) == ON
    before = counts(conn)
    typo = d("2025-11-20")
    for run in (
        lambda: nightly_cycle(conn, ws, rules, cfg, typo),
        lambda: screen(conn, ws, rules, typo),
        lambda: daily_sweep(conn, rules, cfg, typo),
        lambda: dispatch(conn, cfg, ws, typo, force=True),
    ):
        with pytest.raises(DateRefused) as refused:
            run()
        assert "2025-11-20" in str(refused.value) and str(ON) in str(refused.value) and "\n" not in str(refused.value)
    assert counts(conn) == before


def test_the_same_day_again_and_later_days_still_run(convened):
    conn, ws, rules, cfg = convened.conn, convened.workspace, convened.rules, convened.cfg
    again = nightly_cycle(conn, ws, rules, cfg, ON)  # idempotent re-run
    assert again.convene.cases_opened == 0
    nightly_cycle(conn, ws, rules, cfg, d("2026-11-30"))
    daily_sweep(conn, rules, cfg, d("2026-11-30"))
    assert last_cycle(conn) == d("2026-11-30")
    with pytest.raises(DateRefused):
        daily_sweep(conn, rules, cfg, ON)


# --- entries before what they answer ---------------------------------------------------------------
def test_an_answer_before_its_request_is_refused_even_with_a_reason(convened):
    conn, ws, rules, cfg = convened.conn, convened.workspace, convened.rules, convened.cfg
    cid, mid = convened.cases[0], convened.meeting
    decide(conn, ws, rules, cfg, cid, mid, DAY, PLAN)  # the request is made on DAY (2026-12-07)
    before = counts(conn)
    for answer in (
        lambda dating: accept(conn, cfg, cid, d("2020-01-01"), "tester", dating=dating),
        lambda dating: decline(conn, rules, cfg, cid, "担当外", d("2020-01-01"), "tester", dating=dating),
    ):
        for dating in (Dating(), Dating(backdate_reason="電話連絡の記録漏れ")):
            with pytest.raises(
                DateRefused, match=r"--date 2020-01-01 is before the request to houkatsu_chuo .*2026-12-07"
            ):
                answer(dating)
    assert counts(conn) == before and status_of(conn, cid) == "lead_pending"


def test_done_before_the_meeting_that_agreed_the_action_is_refused(convened):
    conn, ws, rules, cfg = convened.conn, convened.workspace, convened.rules, convened.cfg
    cid = convened.cases[0]
    plan(conn, ws, rules, cfg, cid, convened.meeting, on=DAY)
    (action_id,) = actions(conn, cid)
    with pytest.raises(
        DateRefused, match=rf"--date 1999-01-01 is before the meeting {convened.meeting} .*{MEETING_DAY}"
    ):
        action_done(conn, cfg, action_id, d("1999-01-01"), "tester")
    assert conn.execute("SELECT status FROM case_actions WHERE action_id = ?", (action_id,)).fetchone()[0] == "open"


def test_contact_before_the_case_and_watch_before_the_checkpoint_are_refused(convened):
    conn, ws, rules, cfg = convened.conn, convened.workspace, convened.rules, convened.cfg
    cid = convened.cases[0]
    with pytest.raises(DateRefused, match=rf"before the opening of case {cid} \({ON}\)"):
        record_contact(conn, cfg, cid, "houkatsu_chuo", d("2026-01-01"), "tester")
    close(conn, ws, rules, cfg, cid, convened.meeting, DAY)
    with pytest.raises(DateRefused, match=rf"--date 2026-12-01 is before the case's closed state it answers \({DAY}\)"):
        answer_checkpoint(conn, rules, cfg, cid, "concern", d("2026-12-01"), "tester")
    assert status_of(conn, cid) == "closed"


# --- entries ahead of today ------------------------------------------------------------------------
def test_an_entry_typed_more_than_a_few_days_ahead_is_refused(convened):
    conn, cfg = convened.conn, convened.cfg
    cid = convened.cases[0]
    before = counts(conn)
    with pytest.raises(DateRefused, match=rf"--date 2037-03-29 is more than {FUTURE_DAYS} days after today \({ON}\)"):
        record_contact(conn, cfg, cid, "houkatsu_chuo", d("2037-03-29"), "tester", dating=typed(conn, ON))
    assert counts(conn) == before
    soon = date.fromordinal(ON.toordinal() + FUTURE_DAYS)
    record_contact(conn, cfg, cid, "houkatsu_chuo", soon, "tester", dating=typed(conn, ON))


def test_a_workspace_living_ahead_of_the_clock_counts_today_from_its_last_cycle(convened):
    conn, ws, rules, cfg = convened.conn, convened.workspace, convened.rules, convened.cfg
    assert workspace_today(conn) == ON
    nightly_cycle(conn, ws, rules, cfg, d("2027-03-27"))  # the demo's simulated end, the clock still on ON
    assert workspace_today(conn) == d("2027-03-27")  # the day of an answer given now (console, links)
    assert horizon(conn) == d("2027-03-30")


# --- late entries ----------------------------------------------------------------------------------
def test_a_late_entry_needs_a_reason_which_the_history_shows(convened):
    conn, ws, rules, cfg = convened.conn, convened.workspace, convened.rules, convened.cfg
    cid = convened.cases[0]
    decide(conn, ws, rules, cfg, cid, convened.meeting, DAY, PLAN)
    nightly_cycle(conn, ws, rules, cfg, d("2026-12-10"))  # the nights ran without the acceptance
    with pytest.raises(
        DateRefused, match=r"--date 2026-12-08 is before the last nightly cycle \(2026-12-10\).*--backdate-reason"
    ):
        accept(conn, cfg, cid, d("2026-12-08"), "koordinator", dating=typed(conn, d("2026-12-10")))
    with pytest.raises(DateRefused, match="personal data"):
        accept(
            conn, cfg, cid, d("2026-12-08"), "koordinator", dating=typed(conn, d("2026-12-10"), "試験太郎さんから電話")
        )
    late = typed(conn, d("2026-12-10"), "電話での受諾の記録漏れ")
    with clock.pinned(datetime.combine(d("2026-12-10"), time(9), clock.TOKYO)):
        assert accept(conn, cfg, cid, d("2026-12-08"), "koordinator", dating=late).status == "active"
    (entry,) = [e for e in history(conn, cid) if e.event == "backdated"]
    assert (entry.on_day, entry.actor) == ("2026-12-08", "koordinator")
    assert entry.detail["backdate_reason"] == "電話での受諾の記録漏れ" and entry.detail["recorded_on"] == "2026-12-10"
    shown = render_history(cid, history(conn, cid))
    assert re.search(r"2026-12-08 \[koordinator\] 遅れた記録.*2026-12-10 に記録.*電話での受諾の記録漏れ", shown)


# --- corrections -----------------------------------------------------------------------------------
def _contact_seq(conn, cid) -> int:
    return conn.execute("SELECT MAX(seq) FROM audit_log WHERE case_id = ? AND event = 'contact'", (cid,)).fetchone()[0]


def test_a_wrong_contact_is_re_dated_by_a_correction_that_the_90_day_watch_follows(convened):
    conn, ws, rules, cfg = convened.conn, convened.workspace, convened.rules, convened.cfg
    cid = convened.cases[0]
    close(conn, ws, rules, cfg, cid, convened.meeting, DAY)
    record_contact(conn, cfg, cid, "houkatsu_chuo", d("2037-03-29"), "tester")  # the typo, as once accepted
    seq = _contact_seq(conn, cid)
    assert daily_sweep(conn, rules, cfg, d("2027-03-08")).checkpoints_asked == 1  # the +3-month watch, answer due 03-15
    assert daily_sweep(conn, rules, cfg, d("2027-04-06")).reopened == 0  # the typo switched the 90-day watch off
    result = correct_entry(conn, cfg, cid, seq, "年の入力誤り", "koordinator", to=d("2027-01-05"))
    assert not result.withdrawn and result.day == "2027-01-05"
    kept = [e for e in history(conn, cid) if e.seq in (seq, result.seq)]
    assert [(e.event, e.on_day) for e in kept] == [("contact", "2037-03-29"), ("corrected", str(ON))]
    assert kept[1].detail["corrects"] == seq and kept[1].actor == "koordinator"
    assert f"記録番号 {seq}" in render_history(cid, history(conn, cid))
    # 90 days after the corrected contact the silent lead's case is reopened (もどし)
    assert daily_sweep(conn, rules, cfg, d("2027-04-06")).reopened == 1


def test_a_withdrawn_done_action_is_open_again_and_cannot_be_withdrawn_twice(convened):
    conn, ws, rules, cfg = convened.conn, convened.workspace, convened.rules, convened.cfg
    cid = convened.cases[0]
    plan(conn, ws, rules, cfg, cid, convened.meeting, on=DAY)
    (action_id,) = actions(conn, cid)
    action_done(conn, cfg, action_id, DAY, "tester")
    seq = conn.execute("SELECT MAX(seq) FROM audit_log WHERE event = 'action_done'").fetchone()[0]
    correct_entry(conn, cfg, cid, seq, "別の役割と取り違え", "koordinator")
    assert conn.execute("SELECT status, done_on FROM case_actions WHERE action_id = ?", (action_id,)).fetchone() == (
        "open",
        None,
    )
    assert not conn.execute("SELECT 1 FROM contacts WHERE case_id = ? AND via = 'action'", (cid,)).fetchone()
    with pytest.raises(CorrectionRefused, match="取り消し済み"):
        correct_entry(conn, cfg, cid, seq, "再度", "koordinator")


def test_a_correction_obeys_the_date_policy_and_refuses_decisions(convened):
    conn, cfg = convened.conn, convened.cfg
    cid = convened.cases[0]
    record_contact(conn, cfg, cid, "houkatsu_chuo", DAY, "tester")
    seq = _contact_seq(conn, cid)
    before = counts(conn)
    with pytest.raises(DateRefused, match=rf"before the opening of case {cid} \("):
        correct_entry(conn, cfg, cid, seq, "日付誤り", "koordinator", to=d("2020-01-01"))
    with pytest.raises(DateRefused, match="more than"):
        correct_entry(conn, cfg, cid, seq, "日付誤り", "koordinator", to=d("2037-01-01"), dating=typed(conn, ON))
    opened = conn.execute(
        "SELECT MIN(seq) FROM audit_log WHERE case_id = ? AND event = 'transition'", (cid,)
    ).fetchone()
    with pytest.raises(CorrectionRefused, match="次の会議の結果"):
        correct_entry(conn, cfg, cid, opened[0], "誤り", "koordinator")
    with pytest.raises(CorrectionRefused, match="記録番号 999999 はありません"):
        correct_entry(conn, cfg, cid, 999999, "誤り", "koordinator")
    assert counts(conn) == before


# --- actors ----------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "name", ["nightly", "Sweep", " dispatch ", "ｎｉｇｈｔｌｙ", "agency(sim)", "a\nb", "", "x" * 65]
)
def test_system_actor_names_and_unprintable_names_are_refused(name):
    with pytest.raises(ActorRefused) as refused:
        person_actor(name)
    assert "--by" in str(refused.value) and "\n" not in str(refused.value)


def test_every_actor_the_engine_writes_itself_is_reserved():
    written = set()
    for path in ENGINE.rglob("*.py"):
        written |= set(re.findall(r'Log\([^"\n]*?,\s*"([^"]+)"', path.read_text(encoding="utf-8")))
    assert written and written <= SYSTEM_ACTORS, written
    assert person_actor("山田（地域福祉課）") == "山田（地域福祉課）"
