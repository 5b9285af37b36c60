"""参加支援 e-mails and the DV lock (found by a security review): where and when a DV-locked person
goes is never e-mailed, and a place never learns from the introducer's name that the person is
referred by the DV centre."""

from __future__ import annotations

from tests.helpers.casework import DAY, MEETING_DAY, decide, morning, open_cases, plan_text
from tests.helpers.conference import send_by_file
from tests.helpers.mail import DV_WORDS, messages, part


def _lock(conn, case_id: str) -> None:
    """The head of the case's household gets a DV support measure (住民票等の閲覧制限): the household is locked."""
    (pid,) = conn.execute(
        "SELECT person_id FROM persons p JOIN cases c ON c.household_id = p.household_id "
        "WHERE c.case_id = ? AND p.relationship = '世帯主'",
        (case_id,),
    ).fetchone()
    conn.execute(
        "INSERT INTO records VALUES (?,?,?,?,?,?,?)",
        (f"{pid}|t|dv", pid, "t", "dv_support_measure", "住民票等の閲覧制限", MEETING_DAY.isoformat(), None),
    )
    conn.commit()


def test_a_dv_locked_referral_to_its_introducer_carries_no_place_or_member(conn, workspace, rules, cfg):
    from engine.casework.handshake import accept

    ((case_id, meeting_id),) = open_cases(conn, workspace, rules, cfg)
    _lock(conn, case_id)
    extra = "participation:\n  - {member: 世帯員2, need: social_contact, place: ibasho_chuo, consent: true}\n"
    result = decide(conn, workspace, rules, cfg, case_id, meeting_id, MEETING_DAY, plan_text(extra=extra))
    (rid,) = result.referrals
    assert conn.execute("SELECT channel FROM referrals WHERE referral_id = ?", (rid,)).fetchone() == ("in_person",)
    accept(conn, cfg, case_id, MEETING_DAY, "tester")
    send_by_file(conn, cfg, workspace, now=morning(DAY.isoformat()))
    place = cfg.participation.places["ibasho_chuo"]
    sent = {name: part(msg, "plain") for name, msg in messages(workspace / "outbox").items()}
    (request,) = [text for name, text in sent.items() if name.startswith(f"referral_{rid}")]
    assert f"紹介番号: {rid}" in request and "コーディネーターから直接お伝えします" in request
    for text in sent.values():
        assert place.name not in text and place.address not in text and place.schedule.text() not in text
        assert "世帯員2" not in text or "参加支援" not in text


def test_a_worded_referral_queued_before_the_lock_is_withheld(conn, workspace, rules, cfg):
    from engine.casework.handshake import accept

    ((case_id, meeting_id),) = open_cases(conn, workspace, rules, cfg)
    # a drop-in salon, without the person's consent: the introducer goes with them (in_person)
    extra = "participation:\n  - {member: 世帯員2, need: social_contact, place: salon_chuo, consent: false}\n"
    result = decide(conn, workspace, rules, cfg, case_id, meeting_id, MEETING_DAY, plan_text(extra=extra))
    (rid,) = result.referrals
    assert conn.execute("SELECT channel FROM referrals WHERE referral_id = ?", (rid,)).fetchone() == ("in_person",)
    accept(conn, cfg, case_id, MEETING_DAY, "tester")
    (parts,) = conn.execute("SELECT parts FROM outbox WHERE message_key = ?", (f"referral:{rid}",)).fetchone()
    place = cfg.participation.places["salon_chuo"]
    assert place.name in parts  # queued while the household was not locked: it names the place
    _lock(conn, case_id)  # a DV support measure imported before the morning's dispatch
    send_by_file(conn, cfg, workspace, now=morning(DAY.isoformat()))
    status, error = conn.execute(
        "SELECT status, last_error FROM outbox WHERE message_key = ?", (f"referral:{rid}",)
    ).fetchone()
    assert status == "superseded" and "where the person goes" in (error or ""), (status, error)
    assert not [n for n in messages(workspace / "outbox") if n.startswith(f"referral_{rid}")]


def test_a_place_never_reads_that_the_dv_centre_introduces_the_person(conn, workspace, rules, cfg):
    from engine.casework.handshake import accept

    ((case_id, meeting_id),) = open_cases(conn, workspace, rules, cfg)
    extra = (
        "participation:\n"
        "  - {member: 世帯員2, need: social_contact, place: ibasho_chuo, consent: true, introduced_by: dv_center}\n"
    )
    decide(conn, workspace, rules, cfg, case_id, meeting_id, MEETING_DAY, plan_text(extra=extra))
    accept(conn, cfg, case_id, MEETING_DAY, "tester")
    send_by_file(conn, cfg, workspace, now=morning(DAY.isoformat()))
    place = cfg.participation.places["ibasho_chuo"]
    to_place = [m for m in messages(workspace / "outbox").values() if m["To"] == place.email]
    assert to_place, "the place was not e-mailed"
    body = part(to_place[0], "plain").split("――――")[0]
    assert "紹介元: 多機関協働事業 参加支援 担当" in body
    assert not [w for w in DV_WORDS if w in body], body


def test_a_worded_referral_is_withheld_under_the_lock_even_after_its_place_was_renamed_or_removed(
    conn, workspace, rules, cfg, monkeypatch
):
    """The withholding does not look for the place's current name (found by a third review): only a
    message with the fixed wording goes to an agency under the lock."""
    from engine.casework.handshake import accept
    from engine.outbox.keys import MessageKey
    from engine.participation.mail import stale_reason

    ((case_id, meeting_id),) = open_cases(conn, workspace, rules, cfg)
    extra = "participation:\n  - {member: 世帯員2, need: social_contact, place: salon_chuo, consent: false}\n"
    (rid,) = decide(conn, workspace, rules, cfg, case_id, meeting_id, MEETING_DAY, plan_text(extra=extra)).referrals
    accept(conn, cfg, case_id, MEETING_DAY, "tester")
    _lock(conn, case_id)
    old = cfg.participation.places["salon_chuo"]
    monkeypatch.setitem(cfg.participation.places, "salon_chuo", old.model_copy(update={"name": old.name + "（新館）"}))
    assert "where the person goes" in stale_reason(conn, cfg, MessageKey.referral(rid), DAY.isoformat())
    monkeypatch.delitem(cfg.participation.places, "salon_chuo")
    assert "where the person goes" in stale_reason(conn, cfg, MessageKey.referral(rid), DAY.isoformat())
