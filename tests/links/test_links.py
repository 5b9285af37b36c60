"""Answer links (engine/links): a lead request, an action, a checkpoint and a meeting's attendance
answered from the link in the e-mail; the token is bound to one agency and one question, used
once, expires and is revoked; only its hash is stored, the raw token is only in the sent .eml."""

from __future__ import annotations

import email
import email.policy
import re
from datetime import timedelta

import pytest

from engine import links
from engine.casework.handshake import accept
from engine.casework.steps import withdraw_requests
from engine.config import load_config
from engine.links.tokens import TOKEN_TEXT, retire_earlier_links
from engine.outbox.keys import MessageKey
from engine.papers.notices import ANSWER_LINK
from engine.store.db import write_transaction
from engine.store.lifecycle import ActorRefused, Log, person_actor
from tests.helpers.casework import DAY, LEAD, MEETING_DAY, decide, open_cases, plan_text, status_of, text_of
from tests.helpers.configs import configs, line_of, name, only_problem
from tests.links.conftest import LINK, send, token_in

OTHER = "jiritsu_soudan"  # the next candidate when LEAD declines an 8050 case


def audit(conn) -> list[tuple]:
    return conn.execute("SELECT actor, event, detail FROM audit_log ORDER BY seq").fetchall()


def dump(conn) -> list[str]:
    return list(conn.iterdump())


def test_a_link_accepts_once_and_moves_the_case_like_engine_accept(asked, conn, cfg, rules):
    case_id, _, request_id, token = asked
    assert ANSWER_LINK in text_of(conn, f"lead_request:{request_id}")  # the queued copy keeps the mark
    q = links.lookup(conn, cfg, token, DAY)
    assert (q.kind, q.agency_id, q.case_id, q.state) == ("lead_request", LEAD, case_id, "open")
    assert [c.value for c in q.choices] == ["accept", "decline"] and q.scope.startswith("link:")
    done = links.answer(conn, cfg, rules, token, "accept", None, DAY)
    assert (done.state, done.answer_label) == ("answered", "受諾")
    assert status_of(conn, case_id) == "active"
    assert conn.execute("SELECT lead_agency_id FROM cases WHERE case_id = ?", (case_id,)).fetchone()[0] == LEAD
    entries = [(a, e) for a, e, _ in audit(conn) if a == f"{LEAD} (リンク)"]
    assert ("houkatsu_chuo (リンク)", "lead_accepted") in entries and entries[-1][1] == "answered_via_link"
    assert all('"via": "link"' in d for a, _, d in audit(conn) if a.endswith("(リンク)"))
    before = audit(conn)
    with pytest.raises(links.LinkUsed) as used:
        links.answer(conn, cfg, rules, token, "accept", None, DAY)
    assert used.value.answered_at == DAY.isoformat() and "回答済み" in str(used.value)
    assert audit(conn) == before  # the second use records nothing


def test_a_link_answered_by_telephone_is_answered(asked, conn, cfg, rules):
    case_id, _, _, token = asked
    accept(conn, cfg, case_id, DAY, "tester")  # the coordinator records the agency's call
    assert links.lookup(conn, cfg, token, DAY).state == "answered"
    with pytest.raises(links.LinkUsed):
        links.answer(conn, cfg, rules, token, "decline", "理由", DAY)


def test_lookup_changes_nothing(asked, conn, cfg):
    before = dump(conn)
    for _ in range(3):
        links.lookup(conn, cfg, asked[3], DAY)
    assert dump(conn) == before


def test_a_tampered_or_unknown_token_is_not_found(asked, conn, cfg, rules):
    token = asked[3]
    flipped = token[:-1] + ("A" if token[-1] != "A" else "B")
    for bad in (flipped, token[:-1], token + "A", "", "../" + token[3:], "あ" * 64, token.upper()):
        if bad == token:
            continue
        with pytest.raises(links.LinkNotFound):
            links.lookup(conn, cfg, bad, DAY)
        with pytest.raises(links.LinkNotFound):
            links.answer(conn, cfg, rules, bad, "accept", None, DAY)
    assert status_of(conn, asked[0]) == "lead_pending"


def test_a_link_expires_after_the_due_date_and_the_grace(asked, conn, cfg, rules, cal):
    case_id, _, request_id, token = asked
    (due,) = conn.execute("SELECT due_on FROM lead_requests WHERE request_id = ?", (request_id,)).fetchone()
    last = cal.add(DAY.fromisoformat(due), cfg.web.link_grace_days)
    assert links.lookup(conn, cfg, token, last).state == "open"
    later = last + timedelta(days=1)
    assert links.lookup(conn, cfg, token, later).state == "expired"
    with pytest.raises(links.LinkExpired):
        links.answer(conn, cfg, rules, token, "accept", None, later)
    assert status_of(conn, case_id) == "lead_pending"


def test_a_token_answers_only_for_its_own_agency(asked, conn, workspace, cfg, rules):
    """LEAD declines through its link; the next candidate is asked. LEAD's token never answers the
    new request, and the other agency's own link does."""
    case_id, _, request_id, token = asked
    links.answer(conn, cfg, rules, token, "decline", "担当件数が上限に達しているため", DAY)
    (other_request,) = conn.execute(
        "SELECT request_id FROM lead_requests WHERE case_id = ? AND status = 'pending'", (case_id,)
    ).fetchone()
    assert (
        conn.execute("SELECT agency_id FROM lead_requests WHERE request_id = ?", (other_request,)).fetchone()[0]
        == OTHER
    )
    before = audit(conn)
    for choice in ("accept", "decline"):
        with pytest.raises(links.LinkUsed):
            links.answer(conn, cfg, rules, token, choice, "理由", DAY)
    assert audit(conn) == before and status_of(conn, case_id) == "lead_pending"
    send(conn, cfg, workspace, DAY + timedelta(days=1))
    theirs = token_in(workspace, f"lead_request:{other_request}")
    assert theirs != token and links.lookup(conn, cfg, token, DAY).agency_id == LEAD
    q = links.lookup(conn, cfg, theirs, DAY + timedelta(days=1))
    assert (q.agency_id, q.state) == (OTHER, "open")
    links.answer(conn, cfg, rules, theirs, "accept", None, DAY + timedelta(days=1))
    assert conn.execute("SELECT lead_agency_id FROM cases WHERE case_id = ?", (case_id,)).fetchone()[0] == OTHER


def test_a_link_is_revoked_when_its_request_is_withdrawn(asked, conn, workspace, cfg, rules):
    """LEAD declines; the next candidate's request goes out; the coordinator then withdraws it."""
    case_id, _, _, token = asked
    links.answer(conn, cfg, rules, token, "decline", "担当件数が上限に達しているため", DAY)
    (other_request,) = conn.execute(
        "SELECT request_id FROM lead_requests WHERE case_id = ? AND status = 'pending'", (case_id,)
    ).fetchone()
    nextday = DAY + timedelta(days=1)
    send(conn, cfg, workspace, nextday)
    theirs = token_in(workspace, f"lead_request:{other_request}")
    with write_transaction(conn):
        withdraw_requests(Log(conn, nextday, "tester"), cfg, case_id, "会議で主担当機関を決め直す")
    assert links.lookup(conn, cfg, theirs, nextday).state == "revoked"
    before = audit(conn)
    with pytest.raises(links.LinkRevoked):
        links.answer(conn, cfg, rules, theirs, "accept", None, nextday)
    assert audit(conn) == before


def test_a_new_email_about_the_same_question_revokes_the_link_before(asked, conn, cfg):
    """Each e-mail that carries a question mints its own link; the one before stops working once
    the new one is delivered."""
    _, _, request_id, token = asked
    parts = {"text": f"x {ANSWER_LINK}", "html": f"<pre>{ANSWER_LINK}</pre>"}
    again = links.fill_links(conn, cfg, MessageKey.notice(f"again-{request_id}"), LEAD, parts)
    assert again["text"] == "x （この e-mail からは回答できません。コーディネーターにご連絡ください）"  # not a question
    filled = links.fill_links(conn, cfg, MessageKey.lead_request(request_id), LEAD, parts)
    (fresh,) = LINK.findall(filled["text"])
    assert f'<a href="http://127.0.0.1:8300/a/{fresh}">' in filled["html"]
    assert links.lookup(conn, cfg, fresh, DAY).state == "open"
    assert links.lookup(conn, cfg, token, DAY).state == "open"  # until the new e-mail is delivered
    with conn:  # the dispatch, on marking it sent
        retire_earlier_links(conn, MessageKey.lead_request(request_id), LEAD, asks=True)
    assert links.lookup(conn, cfg, fresh, DAY).state == "open"
    assert links.lookup(conn, cfg, token, DAY).state == "revoked"


def test_the_raw_token_is_in_the_sent_eml_and_nowhere_in_the_database(asked, conn, workspace):
    token = asked[3]
    sent = (workspace / "outbox" / f"lead_request_{asked[2]}.eml").read_bytes()
    msg = email.message_from_bytes(sent, policy=email.policy.default)
    assert f"http://127.0.0.1:8300/a/{token}" in msg.get_body(("plain",)).get_content()
    assert f"/a/{token}" in msg.get_body(("html",)).get_content()
    for (table,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'").fetchall():
        for row in conn.execute(f'SELECT * FROM "{table}"'):
            assert not any(token in str(v) for v in row), table
    assert not any(token in line for line in dump(conn))
    assert token not in (workspace / "engine.db").read_bytes().decode("latin-1")


def test_a_dv_locked_household_shows_only_the_case_id(asked, conn, cfg):
    case_id, _, _, token = asked
    assert len(links.lookup(conn, cfg, token, DAY).facts) > 1
    (pid,) = conn.execute(
        "SELECT p.person_id FROM persons p JOIN cases c ON c.household_id = p.household_id WHERE c.case_id = ? LIMIT 1",
        (case_id,),
    ).fetchone()
    conn.execute(
        "INSERT INTO records VALUES (?,?,?,?,?,?,?)",
        (f"{pid}|t|dv", pid, "t", "dv_support_measure", "住民票等の閲覧制限", "2026-10-01", None),
    )
    conn.commit()
    assert links.lookup(conn, cfg, token, DAY).facts == [f"事案番号: {case_id}"]


def test_a_reason_with_personal_data_is_refused(asked, conn, cfg, rules):
    case_id, _, _, token = asked
    (name_,) = conn.execute(
        "SELECT p.name FROM persons p JOIN cases c ON c.household_id = p.household_id WHERE c.case_id = ? LIMIT 1",
        (case_id,),
    ).fetchone()
    before = audit(conn)
    with pytest.raises(links.AnswerRefused, match="個人情報"):
        links.answer(conn, cfg, rules, token, "decline", f"{name_}さんとは面識があるため", DAY)
    with pytest.raises(links.AnswerRefused, match="理由"):
        links.answer(conn, cfg, rules, token, "decline", "  ", DAY)
    with pytest.raises(links.AnswerRefused):
        links.answer(conn, cfg, rules, token, "done", None, DAY)  # not a choice of this question
    # nothing of the answer is kept; the refusal of a personal note is written down (it bars the link's notes)
    after = audit(conn)
    assert after[: len(before)] == before and [e[1] for e in after[len(before) :]] == ["link_note_refused"]
    assert links.lookup(conn, cfg, token, DAY).state == "open"


def test_an_action_and_a_checkpoint_are_answered_from_their_reminders(conn, workspace, rules, cfg):
    from engine.casework.sweep import daily_sweep

    ((case_id, meeting_id),) = open_cases(conn, workspace, rules, cfg)
    decide(
        conn, workspace, rules, cfg, case_id, meeting_id, MEETING_DAY, plan_text(roles=((LEAD, "訪問", "2026-12-10"),))
    )
    accept(conn, cfg, case_id, DAY, "tester")
    (action_id,) = conn.execute("SELECT action_id FROM case_actions WHERE case_id = ?", (case_id,)).fetchone()
    assert daily_sweep(conn, rules, cfg, DAY).reminders == 1
    send(conn, cfg, workspace)
    token = token_in(workspace, f"reminder:{action_id}:due")
    q = links.lookup(conn, cfg, token, DAY)
    assert (q.kind, q.action_id, [c.value for c in q.choices]) == ("action", action_id, ["done"])
    assert any("訪問" in f for f in q.facts)
    links.answer(conn, cfg, rules, token, "done", "訪問して状況を確認した", DAY)
    assert conn.execute("SELECT status FROM case_actions WHERE action_id = ?", (action_id,)).fetchone()[0] == "done"
    (note,) = conn.execute("SELECT note FROM answer_links WHERE used_at IS NOT NULL").fetchone()
    assert note == "訪問して状況を確認した"


def test_attendance_is_answered_from_the_agenda(conn, workspace, rules, cfg):
    from tests.helpers.town import ON

    ((case_id, meeting_id),) = open_cases(conn, workspace, rules, cfg)
    send(conn, cfg, workspace, ON)
    token = token_in(workspace, f"agenda:{meeting_id}:{LEAD}:v1")
    q = links.lookup(conn, cfg, token, ON)
    assert (q.kind, q.meeting_id, q.case_id, [c.value for c in q.choices]) == (
        "attendance",
        meeting_id,
        None,
        ["attend", "absent"],
    )
    assert links.answer(conn, cfg, rules, token, "attend", None, ON).answer_label == "出席"
    assert conn.execute("SELECT agency_id, answer FROM attendance").fetchall() == [(LEAD, "attend")]
    assert links.lookup(conn, cfg, token, MEETING_DAY + timedelta(days=1)).state == "answered"
    stored = (workspace / "agendas" / meeting_id / f"{LEAD}.v1.txt").read_text(encoding="utf-8")
    assert ANSWER_LINK in stored and not re.search(r"/a/" + TOKEN_TEXT, stored)


def test_the_link_actor_is_reserved(rules):
    for name_ in ("houkatsu_chuo (リンク)", "houkatsu_chuo（リンク）", "x(リンク)"):
        with pytest.raises(ActorRefused):
            person_actor(name_)


def test_a_plain_http_base_url_to_another_machine_is_refused(tmp_path, rules):
    d = configs(tmp_path)
    (d / "web.yaml").write_text("link_grace_days: 5\nbase_url: http://soudan.city.example.lg.jp\n", encoding="utf-8")
    p = only_problem(d, rules)
    assert (name(p), p.line, p.field) == ("web.yaml", line_of(d / "web.yaml", "base_url"), "base_url")
    assert "https://" in p.message
    for ok in ("https://soudan.city.example.lg.jp/engine/", "http://localhost:8300", "http://127.0.0.1:9000"):
        (d / "web.yaml").write_text(f"base_url: {ok}\n", encoding="utf-8")
        assert load_config(d, rules).web.base_url == ok.rstrip("/")
    (d / "web.yaml").unlink()
    assert load_config(d, rules).web.base_url == "http://127.0.0.1:8300"
