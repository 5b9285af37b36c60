"""Review of the case lifecycle (outcome, hand-shake, sweep, watch, audit, mail).

Tests marked xfail(strict=True) show a bug; the others confirm behaviour that was checked.
The town: 8050 households in 中央 (lead houkatsu_chuo) screened on ON = 2026-11-27 (Fri),
booked into the 支援会議 of 2026-12-04 (Fri); one 要対協-registered household in 東部 (routed).
"""

from __future__ import annotations

import json
from datetime import timedelta

import pytest

from engine.casework.handshake import HandshakeError, accept, action_done, decline, record_contact
from engine.casework.outcome import OutcomeInvalid, OutcomeRefused
from engine.casework.sweep import daily_sweep
from engine.casework.watch import WatchError, answer_checkpoint
from engine.outbox.mail import FileTransport, send_pending
from engine.store.lifecycle import InvalidTransition
from engine.workflows.cycle import nightly_cycle
from tests.casework import LEAD, MEETING_DAY, add_arrears, case, checkpoints, d, decide, held_on, open_cases
from tests.town import ON, add_household, person


# --- helpers (after tests/test_sweep_audit.py) -------------------------------------------------
def plan_text(lead=LEAD, roles=((LEAD, "介護サービスの利用調整", "2027-01-29"),), extra=""):
    lines = "".join(f"  - {{agency: {a}, action: {act}, due: {due}}}\n" for a, act, due in roles)
    return f"decision: plan\nlead: {lead}\nroles:\n{lines}{extra}"


def outbox_text(conn, key):
    return json.loads(conn.execute("SELECT parts FROM outbox WHERE message_key = ?", (key,)).fetchone()[0])["text"]


def add_yotaikyo(conn, hid="HYOTAI"):
    return add_household(
        conn,
        hid,
        person(30, "世帯主", ("earned_income", "2000000")),
        person(1, "子", ("health_check_missed", "連絡なし"), ("yotaikyo_registered", "要支援児童")),
        area="東部",
    )


# --- H1: a routed case brought to a conference keeps its check-back --------------------------


def test_a_routed_case_brought_to_a_conference_drops_its_check_back(conn, workspace, rules, cfg):
    add_yotaikyo(conn)
    nightly_cycle(conn, workspace, rules, cfg, ON)
    cid = conn.execute("SELECT case_id FROM cases WHERE household_id = 'HYOTAI'").fetchone()[0]
    assert case(conn, cid)["status"] == "routed"
    (cb,) = checkpoints(conn, cid, "check_back")
    add_arrears(conn, "HYOTAI", 1, "2026-12-01", rel="世帯主")
    nightly_cycle(conn, workspace, rules, cfg, d("2026-12-01"))
    assert case(conn, cid)["status"] == "convened"
    daily_sweep(conn, rules, cfg, d(cb["due_on"]))
    asked = conn.execute("SELECT message_key, agency_id FROM outbox WHERE kind = 'checkpoint'").fetchall()
    assert asked == [], f"a 要対協 check-back question went to {asked} for a case that is no longer routed"
    assert [c["status"] for c in checkpoints(conn, cid, "check_back")] == ["cancelled"]


def test_a_stale_check_back_on_an_active_case_does_not_trap_the_lead(conn, workspace, rules, cfg):
    add_yotaikyo(conn)
    nightly_cycle(conn, workspace, rules, cfg, ON)
    cid = conn.execute("SELECT case_id FROM cases WHERE household_id = 'HYOTAI'").fetchone()[0]
    (cb,) = checkpoints(conn, cid, "check_back")
    add_arrears(conn, "HYOTAI", 1, "2026-12-01", rel="世帯主")
    nightly_cycle(conn, workspace, rules, cfg, d("2026-12-01"))
    row = case(conn, cid)
    lead, mid = row["lead_agency_id"], row["meeting_id"]
    decide(
        conn,
        workspace,
        rules,
        cfg,
        cid,
        mid,
        held_on(conn, mid),
        plan_text(lead=lead, roles=((lead, "状況の確認", "2027-03-31"),)),
    )
    accept(conn, cfg, cid, held_on(conn, mid), "tester")
    daily_sweep(conn, rules, cfg, d(cb["due_on"]))
    # the check-back ended when the case left 要対協: nobody is asked, and nothing waits for an answer
    assert conn.execute("SELECT COUNT(*) FROM outbox WHERE kind = 'checkpoint'").fetchone()[0] == 0
    assert [c["status"] for c in checkpoints(conn, cid, "check_back")] == ["cancelled"]
    with pytest.raises(WatchError):
        answer_checkpoint(conn, rules, cfg, cid, "concern", d(cb["due_on"]), "tester")
    assert case(conn, cid)["status"] == "active"


# --- H2: a case closed (or suspended) while booked into an upcoming meeting ---------------------


def test_a_new_problem_during_the_closing_hand_off_can_still_be_planned(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    decide(
        conn,
        workspace,
        rules,
        cfg,
        cid,
        mid,
        MEETING_DAY,
        f"decision: close\nlead: {LEAD}\nreason: 介護サービスにつながったため\n",
    )
    add_arrears(conn, "H1", 1, "2026-12-07")  # the son falls into arrears while the lead is being asked
    nightly_cycle(conn, workspace, rules, cfg, d("2026-12-07"))
    m2 = case(conn, cid)["meeting_id"]
    assert m2 != mid and held_on(conn, m2) > d("2026-12-08")  # the new problem is on a conference's agenda
    accept(conn, cfg, cid, d("2026-12-08"), "tester")
    # the conference meets about the arrears and decides a plan
    decide(
        conn,
        workspace,
        rules,
        cfg,
        cid,
        m2,
        held_on(conn, m2),
        plan_text(roles=((LEAD, "家計の相談につなぐ", "2027-01-29"),)),
    )
    assert case(conn, cid)["status"] in ("lead_pending", "active")


def test_a_case_suspended_while_booked_into_a_later_meeting_can_be_planned_there(conn, workspace, rules, cfg):
    ((cid, m1),) = open_cases(conn, workspace, rules, cfg)
    add_arrears(conn, "H1", 1, "2026-12-07")
    nightly_cycle(conn, workspace, rules, cfg, d("2026-12-07"))  # rebooked before M1's outcome is written down
    m2 = case(conn, cid)["meeting_id"]
    decide(
        conn,
        workspace,
        rules,
        cfg,
        cid,
        m1,
        d("2026-12-08"),
        "decision: suspend\nreview_on: 2027-03-01\nreason: 本人が支援を希望しないため\n",
    )
    assert case(conn, cid)["meeting_id"] == m2  # still on M2's agenda
    decide(
        conn,
        workspace,
        rules,
        cfg,
        cid,
        m2,
        held_on(conn, m2),
        plan_text(roles=((LEAD, "家計の相談につなぐ", "2027-01-29"),)),
    )


# --- H3: an outcome of an earlier meeting recorded after a later one --------------------------


@pytest.mark.parametrize("late", ["continue", "suspend", "plan"])
def test_a_late_outcome_of_an_earlier_meeting_does_not_undo_the_later_decision(conn, workspace, rules, cfg, late):
    ((cid, m1),) = open_cases(conn, workspace, rules, cfg)
    add_arrears(conn, "H1", 1, "2026-12-07")
    nightly_cycle(conn, workspace, rules, cfg, d("2026-12-07"))  # M1 held without outcome; the case moves to M2
    m2 = case(conn, cid)["meeting_id"]
    h2 = held_on(conn, m2)
    decide(conn, workspace, rules, cfg, cid, m2, h2, plan_text(roles=((LEAD, "家計と介護の調整", "2027-01-29"),)))
    accept(conn, cfg, cid, h2, "tester")
    before = case(conn, cid)
    newer = conn.execute("SELECT action_id FROM case_actions WHERE meeting_id = ?", (m2,)).fetchall()
    # the digest keeps reporting M1 without outcome: the coordinator writes down what M1 decided
    text = {
        "continue": "decision: continue\n",
        "suspend": "decision: suspend\nreview_on: 2027-03-01\nreason: 検討の途中\n",
        "plan": plan_text(roles=((LEAD, "当初の役割", "2027-01-10"),)),
    }[late]
    try:
        decide(conn, workspace, rules, cfg, cid, m1, h2 + timedelta(days=1), text)
    except (OutcomeRefused, InvalidTransition):
        pass  # refusing is acceptable; applying it over the newer decision is not
    after = case(conn, cid)
    assert (after["status"], after["meeting_id"]) == (before["status"], before["meeting_id"])
    assert {s for (s,) in conn.execute("SELECT status FROM case_actions WHERE meeting_id = ?", (m2,))} == {
        "open"
    } and newer


# --- H4: no early もどし on a lead's report ----------------------------------------------------


def test_a_lead_reporting_a_crisis_between_checkpoints_can_bring_the_case_back(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    decide(
        conn,
        workspace,
        rules,
        cfg,
        cid,
        mid,
        MEETING_DAY,
        f"decision: close\nlead: {LEAD}\nreason: 介護サービスにつながったため\n",
    )
    accept(conn, cfg, cid, d("2026-12-07"), "tester")
    # five weeks later the lead calls: the son has lost his job and the father fell
    result = answer_checkpoint(conn, rules, cfg, cid, "concern", d("2027-01-12"), "tester", LEAD)
    assert result.status in ("convened", "detected")


# --- H5/H6: decline ------------------------------------------------------------------------


def test_a_decline_recorded_twice_does_not_decline_for_the_next_candidate(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    decide(conn, workspace, rules, cfg, cid, mid, MEETING_DAY, plan_text())
    first = decline(conn, rules, cfg, cid, "担当件数が上限のため", d("2026-12-07"), "tester")
    assert first.next_agency and first.next_agency != LEAD
    try:
        decline(conn, rules, cfg, cid, "担当件数が上限のため", d("2026-12-07"), "tester")  # the same command again
    except HandshakeError:
        pass
    pending = conn.execute(
        "SELECT agency_id FROM lead_requests WHERE case_id = ? AND status = 'pending'", (cid,)
    ).fetchall()
    assert pending == [(first.next_agency,)], conn.execute(
        "SELECT agency_id, status, answered_on FROM lead_requests"
    ).fetchall()


def test_a_decline_reason_naming_the_household_is_refused(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    decide(conn, workspace, rules, cfg, cid, mid, MEETING_DAY, plan_text())
    name = conn.execute("SELECT name FROM persons WHERE household_id = 'H1' LIMIT 1").fetchone()[0]
    try:
        decline(conn, rules, cfg, cid, f"{name}さん宅は担当地区外のため", d("2026-12-07"), "tester")
    except HandshakeError:
        pass
    leaked = conn.execute(
        "SELECT event FROM audit_log WHERE reason LIKE ? OR detail LIKE ?", (f"%{name}%", f"%{name}%")
    ).fetchall()
    assert leaked == []


# --- H7: the personal-data check of free text ------------------------------------------------


@pytest.mark.parametrize(
    "text",
    ["楓さんの登校状況を確認", "港4丁目16-7の自宅を訪問", "かえでさんと面談"],
    ids=["one_kanji_given_name", "street_address", "hiragana_kana"],
)
def test_free_text_with_a_member_name_or_the_street_address_is_refused(conn, workspace, rules, cfg, text):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    conn.execute(
        "UPDATE persons SET name = '池田 楓', kana = 'イケダ カエデ' WHERE household_id = 'H1' AND relationship = '子'"
    )
    conn.execute("UPDATE households SET address = 'みどり市港4丁目16-7' WHERE household_id = 'H1'")
    conn.commit()
    with pytest.raises(OutcomeInvalid):
        decide(conn, workspace, rules, cfg, cid, mid, MEETING_DAY, plan_text(roles=((LEAD, text, "2027-01-29"),)))


# --- H8: reminders queued earlier and sent later ------------------------------------------------
TOKYO_MORNING = "T08:00:00+09:00"


def morning(day: str):
    from datetime import datetime

    return datetime.fromisoformat(day + TOKYO_MORNING)


def sent_texts(workspace) -> dict[str, str]:
    import email
    import email.policy

    out = {}
    for p in sorted((workspace / "outbox").glob("*.eml")):
        msg = email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        out[msg["X-Engine-Key"]] = msg.get_body(("plain",)).get_content()
    return out


def test_a_reminder_queued_before_a_dv_lock_does_not_go_out_with_its_wording(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    action = "長男の就労相談と家計の見直し"
    decide(conn, workspace, rules, cfg, cid, mid, MEETING_DAY, plan_text(roles=((LEAD, action, "2027-01-29"),)))
    accept(conn, cfg, cid, MEETING_DAY, "tester")
    (aid,) = [a for (a,) in conn.execute("SELECT action_id FROM case_actions WHERE case_id = ?", (cid,))]
    transport = FileTransport(workspace / "outbox")
    daily_sweep(conn, rules, cfg, d("2027-01-26"))
    send_pending(conn, cfg, workspace, transport=transport, now=morning("2027-01-26"))
    daily_sweep(conn, rules, cfg, d("2027-01-30"))  # Saturday: the overdue reminder is queued, sent on Monday
    # Sunday night's import: a DV support measure (住民票の閲覧制限) for the son
    pid = conn.execute("SELECT person_id FROM persons WHERE household_id = 'H1' AND relationship = '子'").fetchone()[0]
    conn.execute(
        "INSERT INTO records VALUES (?,?,?,?,?,?,?)",
        (f"{pid}|t|dv", pid, "t", "dv_support_measure", "", "2027-01-31", None),
    )
    conn.commit()
    daily_sweep(conn, rules, cfg, d("2027-02-01"))
    send_pending(conn, cfg, workspace, transport=transport, now=morning("2027-02-01"))
    overdue = sent_texts(workspace).get(f"reminder:{aid}:overdue", "")
    assert action not in overdue, "the action's wording of a DV-locked household went out by e-mail"


def test_a_due_soon_reminder_is_not_sent_once_the_action_is_overdue(conn, workspace, rules, cfg):
    from engine.outbox.mail import ServerUnavailable

    class Down:
        def send(self, *a):
            raise ServerUnavailable("cannot connect")

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
    accept(conn, cfg, cid, MEETING_DAY, "tester")
    (aid,) = [a for (a,) in conn.execute("SELECT action_id FROM case_actions WHERE case_id = ?", (cid,))]
    daily_sweep(conn, rules, cfg, d("2026-12-07"))
    send_pending(conn, cfg, workspace, transport=Down(), now=morning("2026-12-07"))  # the mail server is down for days
    daily_sweep(conn, rules, cfg, d("2026-12-11"))
    send_pending(conn, cfg, workspace, transport=FileTransport(workspace / "outbox"), now=morning("2026-12-11"))
    sent = sent_texts(workspace)
    assert f"reminder:{aid}:overdue" in sent
    assert f"reminder:{aid}:due" not in sent, "「期日が近づいています」 arrived a day after the due date"


def test_a_reminder_of_a_support_conference_case_is_not_sent_to_a_non_member(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    assert case(conn, cid)["conference_type"] == "support"
    partner = "jiritsu_soudan"
    assert cfg.agencies[partner].member
    decide(
        conn,
        workspace,
        rules,
        cfg,
        cid,
        mid,
        MEETING_DAY,
        plan_text(roles=((LEAD, "介護サービスの利用調整", "2027-02-26"), (partner, "就労に向けた相談", "2027-01-29"))),
    )
    accept(conn, cfg, cid, MEETING_DAY, "tester")
    # agencies.yaml is updated: the agency leaves the 支援会議 (no longer bound by 106条の6)
    left = cfg.model_copy(
        update={"agencies": {**cfg.agencies, partner: cfg.agencies[partner].model_copy(update={"member": False})}}
    )
    daily_sweep(conn, rules, left, d("2027-01-26"))
    send_pending(conn, left, workspace, transport=FileTransport(workspace / "outbox"), now=morning("2027-01-26"))
    to_partner = conn.execute(
        "SELECT message_key FROM outbox WHERE agency_id = ? AND status = 'sent'", (partner,)
    ).fetchall()
    assert to_partner == []


def test_after_consent_lapses_a_non_member_lead_gets_no_reminder(conn, workspace, rules, cfg):
    consent = ("consent", "重層的支援会議", "2026-01-10", "2027-01-15")  # withdrawn in mid-January
    add_household(
        conn,
        "HC",
        person(82, "世帯主", ("care_level", "要介護2"), consent, sex="M"),
        person(52, "子", consent, sex="M"),
        area="中央",
    )
    nightly_cycle(conn, workspace, rules, cfg, ON)
    cid, mid, kind = conn.execute(
        "SELECT case_id, meeting_id, conference_type FROM cases WHERE household_id = 'HC'"
    ).fetchone()
    assert kind == "multi"
    npo = "hikikomori_npo"
    assert not cfg.agencies[npo].member
    decide(
        conn,
        workspace,
        rules,
        cfg,
        cid,
        mid,
        held_on(conn, mid),
        plan_text(lead=npo, roles=((npo, "居場所への参加支援", "2027-01-29"),)),
    )
    accept(conn, cfg, cid, held_on(conn, mid), "tester")
    for day in ("2027-01-26", "2027-02-01"):
        daily_sweep(conn, rules, cfg, d(day))
        send_pending(conn, cfg, workspace, transport=FileTransport(workspace / "outbox"), now=morning(day))
    sent = conn.execute("SELECT message_key FROM outbox WHERE agency_id = ? AND status = 'sent'", (npo,)).fetchall()
    assert sent == [], f"consent ended 2027-01-15, yet {sent} went to a non-member"


# --- H9: withdrawn lead requests ---------------------------------------------------------------


def test_a_withdrawn_lead_request_is_in_the_history_and_the_agency_is_told(conn, workspace, rules, cfg):
    ((cid, m1),) = open_cases(conn, workspace, rules, cfg)
    add_arrears(conn, "H1", 1, "2026-12-07")
    decide(conn, workspace, rules, cfg, cid, m1, MEETING_DAY, plan_text())  # asks houkatsu_chuo (e-mailed)
    (first,) = conn.execute("SELECT request_id FROM lead_requests WHERE case_id = ?", (cid,)).fetchone()
    send_pending(conn, cfg, workspace, transport=FileTransport(workspace / "outbox"), now=morning("2026-12-04"))
    nightly_cycle(conn, workspace, rules, cfg, d("2026-12-07"))  # the new problem books the case into a later meeting
    m2 = case(conn, cid)["meeting_id"]
    decide(
        conn,
        workspace,
        rules,
        cfg,
        cid,
        m2,
        held_on(conn, m2),
        "decision: suspend\nreview_on: 2027-03-01\nreason: 本人が支援を希望しないため\n",
    )
    assert conn.execute("SELECT status FROM lead_requests WHERE request_id = ?", (first,)).fetchone()[0] == "cancelled"
    told = conn.execute(
        "SELECT COUNT(*) FROM outbox WHERE agency_id = ? AND message_key != ? AND kind != 'agenda'",
        (LEAD, f"lead_request:{first}"),
    ).fetchone()[0]
    logged = [
        r
        for (r,) in conn.execute("SELECT detail FROM audit_log WHERE case_id = ? AND event != 'lead_requested'", (cid,))
        if r and f'"request_id": {first}' in r
    ]
    assert logged and told


# --- H10: registry changes while something is pending -----------------------------------------


def test_answering_a_request_of_an_agency_removed_from_the_registry_is_a_clear_refusal(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    decide(conn, workspace, rules, cfg, cid, mid, MEETING_DAY, plan_text())
    merged = cfg.model_copy(update={"agencies": {k: v for k, v in cfg.agencies.items() if k != LEAD}})
    with pytest.raises((HandshakeError, InvalidTransition)):
        accept(conn, merged, cid, d("2026-12-07"), "tester")


def test_a_watch_answer_by_an_unknown_agency_is_refused(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    decide(
        conn,
        workspace,
        rules,
        cfg,
        cid,
        mid,
        MEETING_DAY,
        f"decision: close\nlead: {LEAD}\nreason: 介護サービスにつながったため\n",
    )
    accept(conn, cfg, cid, d("2026-12-07"), "tester")
    with pytest.raises(WatchError):
        answer_checkpoint(conn, rules, cfg, cid, "stable", d("2027-03-08"), "tester", "houkatu_chuo")


# === checks that pass: behaviour confirmed ======================================================
def snapshot(conn) -> dict:
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


def test_the_same_outcome_recorded_twice_is_refused_and_changes_nothing(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    decide(conn, workspace, rules, cfg, cid, mid, MEETING_DAY, plan_text())
    before = snapshot(conn)
    with pytest.raises(OutcomeRefused, match="記録済み"):
        decide(conn, workspace, rules, cfg, cid, mid, MEETING_DAY, plan_text())
    assert snapshot(conn) == before


def test_accept_twice_is_refused_and_changes_nothing(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    decide(conn, workspace, rules, cfg, cid, mid, MEETING_DAY, plan_text())
    accept(conn, cfg, cid, d("2026-12-07"), "tester")
    before = snapshot(conn)
    with pytest.raises(HandshakeError, match="回答待ちの受諾依頼はありません"):
        accept(conn, cfg, cid, d("2026-12-07"), "tester")
    assert snapshot(conn) == before
    assert len(checkpoints(conn, cid, "evaluation")) == 1


def test_decline_naming_the_agency_cannot_be_applied_twice(conn, workspace, rules, cfg):
    # the safe form of the command: with --agency a re-run is refused
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    decide(conn, workspace, rules, cfg, cid, mid, MEETING_DAY, plan_text())
    nxt = decline(conn, rules, cfg, cid, "担当件数が上限のため", d("2026-12-07"), "tester", LEAD).next_agency
    before = snapshot(conn)
    with pytest.raises(HandshakeError, match=nxt):
        decline(conn, rules, cfg, cid, "担当件数が上限のため", d("2026-12-07"), "tester", LEAD)
    assert snapshot(conn) == before


def closed_while_booked_later(conn, workspace, rules, cfg) -> tuple[str, str]:
    """The conference closes the case; arrears flagged during the hand-off book it into a later
    meeting M2; the lead accepts, so the case is closed while still on M2. (case, M2)"""
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    decide(
        conn,
        workspace,
        rules,
        cfg,
        cid,
        mid,
        MEETING_DAY,
        f"decision: close\nlead: {LEAD}\nreason: 介護サービスにつながったため\n",
    )
    add_arrears(conn, "H1", 1, "2026-12-07")
    nightly_cycle(conn, workspace, rules, cfg, d("2026-12-07"))
    m2 = case(conn, cid)["meeting_id"]
    accept(conn, cfg, cid, d("2026-12-08"), "tester")
    return cid, m2


def test_a_refused_outcome_inside_the_transaction_records_nothing(conn, workspace, rules, cfg, monkeypatch):
    # the continue of a closed case reopens it, then fails deep inside convene_case: everything is rolled back
    from engine.conference.convene import Convener

    cid, m2 = closed_while_booked_later(conn, workspace, rules, cfg)
    before = snapshot(conn)

    def broken(self, *args, **kwargs):
        raise InvalidTransition("simulated failure after the reopen")

    monkeypatch.setattr(Convener, "convene_case", broken)
    with pytest.raises(InvalidTransition):
        decide(conn, workspace, rules, cfg, cid, m2, held_on(conn, m2), "decision: continue\n")
    assert snapshot(conn) == before


def test_a_closed_case_on_a_later_meeting_is_reopened_by_its_decision(conn, workspace, rules, cfg):
    cid, m2 = closed_while_booked_later(conn, workspace, rules, cfg)
    assert case(conn, cid)["status"] == "closed"
    result = decide(conn, workspace, rules, cfg, cid, m2, held_on(conn, m2), "decision: continue\n")
    assert result.status in ("convened", "detected") and case(conn, cid)["reopen_count"] == 1
    assert [c["status"] for c in checkpoints(conn, cid, "watch")] == ["cancelled"] * 3


def test_a_sweep_run_twice_a_day_does_nothing_twice(conn, workspace, rules, cfg):
    (a, ma), (b, mb), (c, mc) = open_cases(conn, workspace, rules, cfg, "HA", "HB", "HC")
    decide(
        conn,
        workspace,
        rules,
        cfg,
        a,
        ma,
        MEETING_DAY,
        plan_text(roles=((LEAD, "介護サービスの利用調整", "2026-12-10"),)),
    )
    accept(conn, cfg, a, MEETING_DAY, "tester")
    decide(conn, workspace, rules, cfg, b, mb, MEETING_DAY, plan_text())  # never answered
    decide(
        conn,
        workspace,
        rules,
        cfg,
        c,
        mc,
        MEETING_DAY,
        "decision: suspend\nreview_on: 2026-12-14\nreason: 本人が支援を希望しないため\n",
    )
    for day in ("2026-12-07", "2026-12-14"):
        first = daily_sweep(conn, rules, cfg, d(day))
        before = snapshot(conn)
        again = daily_sweep(conn, rules, cfg, d(day))
        assert (
            again.reminders,
            again.escalations,
            again.reopened,
            again.checkpoints_asked,
            again.evaluations_booked,
            again.digest,
        ) == (0, 0, 0, 0, 0, False)
        after = snapshot(conn)
        assert {k: v for k, v in after.items() if k != "audit_log"} == {
            k: v for k, v in before.items() if k != "audit_log"
        }
        assert after["audit_log"] == before["audit_log"], "a second sweep wrote to the audit log"
    assert first.reopened == 1 and case(conn, c)["status"] in ("convened", "detected")


def test_stale_lifecycle_messages_are_withheld(conn, workspace, rules, cfg):
    (a, ma), (b, mb) = open_cases(conn, workspace, rules, cfg, "HA", "HB")
    # a lead request answered before the 08:00 dispatch
    decide(
        conn,
        workspace,
        rules,
        cfg,
        a,
        ma,
        MEETING_DAY,
        plan_text(roles=((LEAD, "介護サービスの利用調整", "2026-12-10"),)),
    )
    (req,) = conn.execute("SELECT request_id FROM lead_requests WHERE case_id = ?", (a,)).fetchone()
    accept(conn, cfg, a, MEETING_DAY, "tester")
    # a reminder for an action done before the dispatch
    daily_sweep(conn, rules, cfg, d("2026-12-07"))
    (aid,) = conn.execute("SELECT action_id FROM case_actions WHERE case_id = ?", (a,)).fetchone()
    action_done(conn, cfg, aid, d("2026-12-07"), "tester")
    # a checkpoint question of a case reopened by a new flag before the dispatch
    decide(
        conn,
        workspace,
        rules,
        cfg,
        b,
        mb,
        MEETING_DAY,
        f"decision: close\nlead: {LEAD}\nreason: 介護サービスにつながったため\n",
    )
    accept(conn, cfg, b, MEETING_DAY, "tester")
    record_contact(conn, cfg, b, LEAD, d("2027-02-20"), "tester")
    daily_sweep(conn, rules, cfg, d("2027-03-04"))
    (cp,) = [c["checkpoint_id"] for c in checkpoints(conn, b, "watch") if c["status"] == "asked"]
    add_arrears(conn, "HB", 1, "2027-03-04")
    nightly_cycle(conn, workspace, rules, cfg, d("2027-03-04"))
    assert case(conn, b)["status"] in ("convened", "detected")
    send_pending(conn, cfg, workspace, transport=FileTransport(workspace / "outbox"), now=morning("2027-03-04"))
    status = dict(conn.execute("SELECT message_key, status FROM outbox"))
    assert status[f"lead_request:{req}"] == "superseded"
    assert status[f"reminder:{aid}:due"] == "superseded"
    assert status[f"checkpoint:{cp}"] == "superseded"
    assert not (workspace / "outbox" / f"checkpoint_{cp}.eml").exists()


def test_sent_and_failed_lifecycle_mail_is_in_the_case_history(conn, workspace, rules, cfg):
    from engine.outbox.mail import PermanentFailure

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


def test_no_personal_data_in_lifecycle_mail_or_audit_text(conn, workspace, rules, cfg):
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
    accept(conn, cfg, cid, MEETING_DAY, "tester")
    for day in ("2026-12-07", "2026-12-11", "2026-12-14"):
        daily_sweep(conn, rules, cfg, d(day))
    m2 = case(conn, cid)["meeting_id"]
    send_pending(conn, cfg, workspace, transport=FileTransport(workspace / "outbox"), now=morning("2026-12-14"))
    personal = set()
    for name, kana, birth in conn.execute("SELECT name, kana, birth_date FROM persons WHERE household_id = 'H1'"):
        personal |= {name, kana, birth, *name.split(), *kana.split()}
    personal.add(conn.execute("SELECT address FROM households WHERE household_id = 'H1'").fetchone()[0])
    texts = [r for (r,) in conn.execute("SELECT parts FROM outbox WHERE kind != 'agenda'")]
    texts += [f"{r} {dt}" for r, dt in conn.execute("SELECT reason, detail FROM audit_log")]
    texts += [t for (t,) in conn.execute("SELECT detail FROM escalations")]
    texts += list(sent_texts(workspace).values())
    leaks = [(t[:60], p) for t in texts for p in personal if p and p in (t or "")]
    assert leaks == []
    assert m2 is not None


def test_every_state_change_of_a_long_run_is_in_the_audit_log(conn, workspace, rules, cfg):
    # replaying the audit's transitions gives each case's current state, after a mixed story
    (a, ma), (b, mb), (c, mc) = open_cases(conn, workspace, rules, cfg, "HA", "HB", "HC")
    decide(
        conn,
        workspace,
        rules,
        cfg,
        a,
        ma,
        MEETING_DAY,
        f"decision: close\nlead: {LEAD}\nreason: 介護サービスにつながったため\n",
    )
    accept(conn, cfg, a, MEETING_DAY, "tester")
    decide(conn, workspace, rules, cfg, b, mb, MEETING_DAY, plan_text())
    decline(conn, rules, cfg, b, "担当件数が上限のため", d("2026-12-07"), "tester", LEAD)
    decide(
        conn,
        workspace,
        rules,
        cfg,
        c,
        mc,
        MEETING_DAY,
        "decision: suspend\nreview_on: 2027-01-12\nreason: 本人が支援を希望しないため\n",
    )
    day = d("2026-12-05")
    while day <= d("2027-04-30"):
        nightly_cycle(conn, workspace, rules, cfg, day, screen_first=False)
        daily_sweep(conn, rules, cfg, day)
        day += timedelta(days=1)
    for case_id, status in conn.execute("SELECT case_id, status FROM cases"):
        moves = conn.execute(
            "SELECT from_status, to_status FROM audit_log WHERE case_id = ? AND event = 'transition' ORDER BY seq",
            (case_id,),
        ).fetchall()
        state = "detected"
        for src, dst in moves:
            assert src == state, (case_id, moves)
            state = dst
        assert state == status, (case_id, moves)


def test_engine_meetings_lists_a_case_under_a_held_meeting_it_still_owes_an_outcome_for(conn, workspace, rules, cfg):
    from engine.casework.listing import meetings

    ((cid, m1),) = open_cases(conn, workspace, rules, cfg)
    add_arrears(conn, "H1", 1, "2026-12-07")
    nightly_cycle(conn, workspace, rules, cfg, d("2026-12-07"))  # M1 held without outcome; the case moves to M2
    m2 = case(conn, cid)["meeting_id"]
    listed = {
        m.meeting_id: {c.case_id: c.outcome_recorded for c in m.cases}
        for m in meetings(conn, cfg, d("2026-12-07"), include_past=True)
    }
    assert listed[m1] == {cid: False} and listed[m2] == {cid: False}
    decide(conn, workspace, rules, cfg, cid, m1, d("2026-12-07"), plan_text())
    listed = {
        m.meeting_id: {c.case_id: c.outcome_recorded for c in m.cases}
        for m in meetings(conn, cfg, d("2026-12-07"), include_past=True)
    }
    assert listed[m1] == {cid: True}
