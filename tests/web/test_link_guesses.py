"""A link's note guard (no personal data of the household in a note) must not answer guesses: a
place is told only 「50代の方」, and a guard asked again and again, through an answer that is always
refused, would confirm a guessed birth date, name or address. Found by a security review; the
place's reminder also offered 空き待ち again, which a waitlisted referral can never take, and
addressed the place by its configuration id."""

from __future__ import annotations

import re
from datetime import date, datetime

import pytest

from engine import links
from engine.casework.sweep import daily_sweep
from engine.links import answers
from engine.links.tokens import TOKEN_TEXT
from engine.support import clock
from engine.support.business_days import Calendar
from tests.helpers.casework import MEETING_DAY, accept, decide, open_cases, plan_text
from tests.helpers.mail import messages
from tests.links.conftest import send
from tests.participation.test_referral_loop import SON_TO_IBASHO, row

LINK = re.compile(r"/a/(" + TOKEN_TEXT + ")")
CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')
PROBLEM = re.compile(r'class="field-problem">(.*?)<')
NOTE_BARRED = answers.NOTES_BARRED


def _pin(day: date) -> None:
    clock.pin(datetime(day.year, day.month, day.day, 9, tzinfo=clock.TOKYO))


def _token(workspace, prefix: str) -> str:
    (msg,) = [m for name, m in messages(workspace / "outbox").items() if name.startswith(prefix)]
    return LINK.search(msg.get_body(("plain",)).get_content())[1]


def _post(client, token: str, choice: str, note: str):
    page = client.get(f"/a/{token}")
    csrf = CSRF.search(page.text)[1]
    r = client.post(f"/a/{token}", data={"choice": choice, "note": note, "csrf_token": csrf}, follow_redirects=False)
    found = PROBLEM.search(r.text)
    return r.status_code, found[1] if found else None


@pytest.fixture
def waitlisted(conn, workspace, rules, cfg, client):
    """The son of an 8050 household referred to ibasho_chuo, which answered 空き待ち from its link;
    when the wait ended the sweep asked it again. (its reminder's token, the son's birth date, the day)"""
    ((case_id, meeting_id),) = open_cases(conn, workspace, rules, cfg)
    result = decide(conn, workspace, rules, cfg, case_id, meeting_id, MEETING_DAY, plan_text(extra=SON_TO_IBASHO))
    accept(conn, cfg, case_id, MEETING_DAY, "tester")
    send(conn, cfg, workspace)
    son = result.referrals[0]
    _pin(date(2026, 12, 7))
    assert _post(client, _token(workspace, f"referral_{son}"), "waitlist_lt1m", "")[0] == 303
    day = Calendar.of(cfg.conference).add(date.fromisoformat(row(conn, son)["answer_due"]), 1)
    _pin(day)
    daily_sweep(conn, rules, cfg, day)
    send(conn, cfg, workspace, day)
    (birth,) = conn.execute(
        "SELECT p.birth_date FROM persons p JOIN cases c ON c.household_id = p.household_id "
        "WHERE c.case_id = ? AND p.relationship = '子'",
        (case_id,),
    ).fetchone()
    return _token(workspace, f"referral_reminder_{son}"), birth, day


def test_a_waitlisted_places_reminder_offers_only_answers_its_state_allows(waitlisted, client):
    token, _, _ = waitlisted
    offered = set(re.findall(r'name="choice" value="(\w+)"', client.get(f"/a/{token}").text))
    assert "accept" in offered and "decline_at_capacity" in offered
    assert not {c for c in offered if c.startswith("waitlist_")}


def test_an_answer_that_cannot_be_recorded_says_the_same_whatever_the_note(waitlisted, client, conn, cfg):
    token, birth, day = waitlisted
    wrong = _post(client, token, "waitlist_lt1m", "1960-01-01 1961-02-02")
    right = _post(client, token, "waitlist_lt1m", birth)
    assert wrong == right and wrong[0] == 400
    assert links.lookup(conn, cfg, token, day).state == "open"


def test_a_wrong_guess_in_a_recordable_answer_uses_the_link_up(waitlisted, client, conn, cfg):
    token, birth, day = waitlisted
    assert _post(client, token, "accept", "1960-01-01")[0] == 303  # a wrong guess: recorded, with its note
    assert links.lookup(conn, cfg, token, day).state == "answered"
    page = client.get(f"/a/{token}").text
    assert "csrf_token" not in page and "回答済み" in page  # no form: no second guess through this link


def test_the_note_guard_is_asked_only_of_an_answer_that_can_be_recorded(waitlisted, conn, cfg, rules, monkeypatch):
    """Whatever makes an offered answer fail (the case moved on meanwhile, an earlier checkpoint
    still open), a right and a wrong guess in its note get the same refusal, and nothing is kept."""
    from engine.links import answers
    from engine.support.errors import EngineError

    token, birth, day = waitlisted

    def fails(*args, **kwargs):
        raise EngineError("the state moved on")

    monkeypatch.setattr(answers, "_apply", fails)
    said = []
    for note in ("1960-01-01", birth):
        with pytest.raises(links.AnswerRefused) as refused:
            links.answer(conn, cfg, rules, token, "accept", note, day)
        said.append(str(refused.value))
    assert said[0] == said[1] and "状況が変わった" in said[0]
    assert links.lookup(conn, cfg, token, day).state == "open"


def test_a_places_answer_page_names_the_place_not_its_id(waitlisted, client, cfg):
    token, _, _ = waitlisted
    page = client.get(f"/a/{token}").text
    assert f"{cfg.participation.places['ibasho_chuo'].name} 御中" in page and "ibasho_chuo" not in page


def test_a_link_confirms_at_most_one_guess_at_the_households_data(waitlisted, client, conn, cfg):
    """Found by a second review: a refused note left the link open, so each right guess was
    confirmed in turn (birth date, then name…). After one refusal the link takes no note at all,
    and the refusal is in the case's audit log."""
    token, birth, day = waitlisted
    (name,) = conn.execute(
        "SELECT p.name FROM persons p JOIN referrals r ON r.person_id = p.person_id WHERE r.referral_id = 1"
    ).fetchone()
    first = _post(client, token, "accept", f"誕生日は{birth}です")
    assert first[0] == 400 and "個人情報" in first[1] and "以後メモを受け付けません" in first[1]
    for note in (f"{name}さんのこと", "1960-01-01", "空きが出ました"):  # right, wrong or harmless: one answer
        assert _post(client, token, "accept", note) == (400, NOTE_BARRED)
    assert links.lookup(conn, cfg, token, day).state == "open"
    (entries,) = conn.execute("SELECT COUNT(*) FROM audit_log WHERE event = 'link_note_refused'").fetchone()
    assert entries == 1
    assert _post(client, token, "accept", "") == (303, None)  # an answer without a note is still taken


def test_a_trial_that_lost_its_transaction_reports_the_real_error(waitlisted, conn, cfg, rules, monkeypatch):
    """SQLite rolls the whole transaction back on a full disk: the trial's savepoint is gone with it,
    and the error said must be the disk's, not 'no such savepoint' (found by a review)."""
    import sqlite3

    token, _, day = waitlisted

    def disk_full(conn, *args, **kwargs):
        conn.execute("ROLLBACK")  # what SQLite itself does on SQLITE_FULL
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(answers, "_apply", disk_full)
    with pytest.raises(sqlite3.OperationalError, match="disk is full"):
        links.answer(conn, cfg, rules, token, "accept", None, day)


def test_a_places_link_dies_with_the_dv_lock(waitlisted, conn, cfg):
    """Every e-mail to a place is withheld once the household is DV-locked; its link must not stay
    open either (found by a second review)."""
    from engine.outbox.keys import MessageKey
    from engine.participation.mail import stale_reason

    token, _, day = waitlisted
    (hid,) = conn.execute(
        "SELECT c.household_id FROM referrals r JOIN cases c ON c.case_id = r.case_id WHERE r.referral_id = 1"
    ).fetchone()
    assert links.lookup(conn, cfg, token, day).state == "open"
    conn.execute(
        "INSERT INTO flags (flag_id, household_id, rule_id, rule_version, severity, status, first_detected, "
        "last_confirmed, run_id, evidence) VALUES (9999, ?, 'dv', 1, 'high', 'open', ?, ?, 1, '{}')",
        (hid, day.isoformat(), day.isoformat()),
    )
    conn.commit()
    (due,) = conn.execute("SELECT answer_due FROM referrals WHERE referral_id = 1").fetchone()
    this_round = MessageKey.referral(1, reminder=True, round_on=date.fromisoformat(due))  # the waitlist's round
    assert "locked" in stale_reason(conn, cfg, this_round, day.isoformat())
    assert links.lookup(conn, cfg, token, day).state == "revoked"


def test_a_waitlisted_rounds_reminder_does_not_ask_for_waitlist_again(waitlisted, workspace):
    """The e-mail says what the link offers (found by a second review)."""
    (msg,) = [m for n, m in messages(workspace / "outbox").items() if n.startswith("referral_reminder_1_v")]
    text = msg.get_body(("plain",)).get_content()
    assert "受け入れる" in text and "空き待ち" not in text
