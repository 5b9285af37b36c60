"""An agency answers its assessment through the link in its e-mail (engine/links/answers.py →
engine/triage/assessment.py): resolved closes the case with the assessor as lead; needs_conference
wants a note without personal data and convenes the case; could_not_reach asks again after
retry_business_days and, after assessment_attempts, tells the coordinator and convenes the case.
A link answers once; the coordinator's telephone path checks the agency."""

from __future__ import annotations

import json
from datetime import date

import pytest

from engine import links
from engine.casework.sweep import daily_sweep
from engine.triage.assessment import AssessmentError, answer_assessment
from engine.workflows.cycle import nightly_cycle
from tests.helpers.mail import messages
from tests.helpers.town import ON, add_household, person
from tests.links.conftest import send, token_in

ASSESSOR = "houkatsu_chuo"  # the 地域包括 of 中央
DAY = date(2026, 12, 1)  # a Tuesday: the agency has visited


def d(text: str) -> date:
    return date.fromisoformat(text)


@pytest.fixture
def asked(conn, workspace, rules, cfg):
    """An elder living alone in 中央, assessed by 中央地域包括: (case id, checkpoint id, token), the
    request sent by the sweep and the 08:00 dispatch of ON."""
    add_household(conn, "HELDER", person(80, "世帯主", ("care_level", "要介護1")), area="中央")
    nightly_cycle(conn, workspace, rules, cfg, ON)
    return ask(conn, workspace, rules, cfg, ON)


def ask(conn, workspace, rules, cfg, on: date) -> tuple[str, int, str]:
    """The sweep of `on` asks the pending assessment, the dispatch sends it: (case, checkpoint, token)."""
    assert daily_sweep(conn, rules, cfg, on).checkpoints_asked == 1, f"{on} にアセスメントを依頼する"
    send(conn, cfg, workspace, on)
    case_id, checkpoint_id = conn.execute(
        "SELECT case_id, checkpoint_id FROM checkpoints WHERE kind = 'assessment' AND status = 'asked'"
    ).fetchone()
    return case_id, checkpoint_id, token_in(workspace, f"checkpoint:{checkpoint_id}")


def state(conn, case_id: str) -> dict:
    row = conn.execute(
        "SELECT status, pathway, pathway_rule, lead_agency_id, lead_rule_id, routed_to, meeting_id FROM cases WHERE case_id = ?",
        (case_id,),
    ).fetchone()
    return dict(zip(("status", "pathway", "rule", "lead", "lead_rule", "owner", "meeting"), row))


def answered(conn, case_id: str) -> list[dict]:
    return [
        json.loads(detail)
        for (detail,) in conn.execute(
            "SELECT detail FROM audit_log WHERE case_id = ? AND event = 'assessment_answered' ORDER BY seq", (case_id,)
        )
    ]


def checkpoint(conn, checkpoint_id: int) -> tuple:
    return conn.execute("SELECT status, result FROM checkpoints WHERE checkpoint_id = ?", (checkpoint_id,)).fetchone()


def test_the_link_offers_the_three_assessment_results(asked, conn, cfg):
    _, _, token = asked
    q = links.lookup(conn, cfg, token, DAY)
    assert (q.kind, q.agency_id, q.state) == ("checkpoint", ASSESSOR, "open")
    assert [c.value for c in q.choices] == ["resolved", "needs_conference", "could_not_reach"]


def test_resolved_closes_the_case_with_the_assessor_as_lead_and_watch(asked, conn, rules, cfg):
    case_id, checkpoint_id, token = asked
    links.answer(conn, cfg, rules, token, "resolved", None, DAY)
    s = state(conn, case_id)
    assert (s["status"], s["lead"], s["lead_rule"], s["owner"]) == ("closed", ASSESSOR, "assessment", None)
    assert checkpoint(conn, checkpoint_id) == ("done", "resolved")
    watch = conn.execute("SELECT status FROM checkpoints WHERE case_id = ? AND kind = 'watch'", (case_id,)).fetchall()
    assert watch and all(w == ("pending",) for w in watch), "終結後の見守りが予定される"
    ((detail,),) = [answered(conn, case_id)]
    assert (detail["result"], detail["attempt"], detail["agency"]) == ("resolved", 1, ASSESSOR)
    role = conn.execute(
        "SELECT role FROM case_agencies WHERE case_id = ? AND agency_id = ?", (case_id, ASSESSOR)
    ).fetchone()
    assert role == ("lead",)


def test_the_link_cannot_be_used_twice(asked, conn, rules, cfg):
    _, _, token = asked
    links.answer(conn, cfg, rules, token, "could_not_reach", None, DAY)
    assert links.lookup(conn, cfg, token, DAY).state == "answered"
    with pytest.raises(links.LinkUsed):
        links.answer(conn, cfg, rules, token, "resolved", None, DAY)


def test_needs_conference_without_a_note_is_refused(asked, conn, rules, cfg):
    case_id, checkpoint_id, token = asked
    with pytest.raises(links.AnswerRefused, match="理由をメモに"):
        links.answer(conn, cfg, rules, token, "needs_conference", "  ", DAY)
    assert checkpoint(conn, checkpoint_id) == ("asked", None) and state(conn, case_id)["status"] == "assessing"
    assert links.lookup(conn, cfg, token, DAY).state == "open", "拒否された回答ではリンクは使用済みにならない"


def test_needs_conference_with_a_members_name_in_the_note_is_refused(asked, conn, rules, cfg):
    case_id, checkpoint_id, token = asked
    (name,) = conn.execute("SELECT name FROM persons WHERE household_id = 'HELDER'").fetchone()
    with pytest.raises(links.AnswerRefused):
        links.answer(conn, cfg, rules, token, "needs_conference", f"{name}さんは訪問を拒否", DAY)
    assert checkpoint(conn, checkpoint_id) == ("asked", None) and answered(conn, case_id) == []
    assert links.lookup(conn, cfg, token, DAY).state == "open"


def test_needs_conference_with_a_clean_note_convenes_the_case(asked, conn, rules, cfg):
    case_id, checkpoint_id, token = asked
    note = "本人は訪問に応じたが、金銭管理に不安があり複数分野での検討が必要"
    links.answer(conn, cfg, rules, token, "needs_conference", note, DAY)
    s = state(conn, case_id)
    assert (s["status"], s["pathway"], s["rule"]) == ("convened", "conference", "assessment")
    assert s["meeting"] and s["lead"], "会議と主担当候補が決まる"
    assert checkpoint(conn, checkpoint_id) == ("done", "needs_conference")
    pathways = conn.execute(
        "SELECT json_extract(detail, '$.pathway'), rule_id, reason FROM audit_log WHERE case_id = ? AND event = 'pathway_chosen' ORDER BY seq",
        (case_id,),
    ).fetchall()
    assert [(p, r) for p, r, _ in pathways] == [("assessment", "elder_alone"), ("conference", "assessment")]
    assert note in pathways[-1][2], "会議に付議した理由に見立てを残す"
    (on_day,) = conn.execute("SELECT pathway_on FROM cases WHERE case_id = ?", (case_id,)).fetchone()
    assert on_day == DAY.isoformat(), "会議への振り分けの日は回答の日"


def test_could_not_reach_asks_again_and_then_convenes_with_an_escalation(asked, conn, workspace, rules, cfg, cal):
    case_id, first, token = asked
    day = DAY
    for attempt in (1, 2):
        links.answer(conn, cfg, rules, token, "could_not_reach", None, day)
        again = cal.add(day, cfg.triage.settings.retry_business_days)
        pending = conn.execute(
            "SELECT due_on FROM checkpoints WHERE case_id = ? AND kind = 'assessment' AND status = 'pending'",
            (case_id,),
        ).fetchall()
        assert pending == [(again.isoformat(),)], f"{attempt}回目: {again} に再依頼する"
        assert state(conn, case_id)["status"] == "assessing"
        assert conn.execute("SELECT COUNT(*) FROM escalations WHERE case_id = ?", (case_id,)).fetchone()[0] == 0
        _, checkpoint_id, token = ask(conn, workspace, rules, cfg, again)
        assert f"checkpoint_{checkpoint_id}.eml" in messages(workspace / "outbox"), "再依頼のメールが送られる"
        day = again
    assert [a["attempt"] for a in answered(conn, case_id)] == [1, 2]
    links.answer(conn, cfg, rules, token, "could_not_reach", None, day)
    (kind, detail) = conn.execute(
        "SELECT kind, detail FROM escalations WHERE subject_key = ?", (f"assessment:{case_id}",)
    ).fetchone()
    assert kind == "assessment_unreachable" and "3回" in detail
    s = state(conn, case_id)
    assert (s["status"], s["pathway"], s["rule"]) == ("convened", "conference", "assessment")
    assert [a["result"] for a in answered(conn, case_id)] == ["could_not_reach"] * 3
    assert checkpoint(conn, first) == ("done", "could_not_reach")


def test_the_second_request_says_how_often_the_household_was_not_reached(asked, conn, workspace, rules, cfg, cal):
    case_id, _, token = asked
    links.answer(conn, cfg, rules, token, "could_not_reach", None, DAY)
    again = cal.add(DAY, cfg.triage.settings.retry_business_days)
    _, checkpoint_id, _ = ask(conn, workspace, rules, cfg, again)
    text = messages(workspace / "outbox")[f"checkpoint_{checkpoint_id}.eml"].get_body(("plain",)).get_content()
    assert "これまで1回、接触できていません（2回目のお願いです）" in text, text


def test_the_telephone_answer_checks_the_agency(asked, conn, rules, cfg):
    case_id, checkpoint_id, _ = asked
    with pytest.raises(AssessmentError, match="依頼したのは 中央地域包括支援センター"):
        answer_assessment(conn, rules, cfg, case_id, "resolved", DAY, "koordinator", agency_id="kodomo_center")
    assert checkpoint(conn, checkpoint_id) == ("asked", None) and state(conn, case_id)["status"] == "assessing"
    done = answer_assessment(conn, rules, cfg, case_id, "resolved", DAY, "koordinator", agency_id=ASSESSOR)
    assert (done.checkpoint_id, done.status) == (checkpoint_id, "closed")


def test_the_telephone_answer_refuses_an_unknown_result_and_a_case_not_assessing(asked, conn, rules, cfg):
    case_id, _, _ = asked
    with pytest.raises(AssessmentError, match="--result"):
        answer_assessment(conn, rules, cfg, case_id, "fine", DAY, "koordinator")
    answer_assessment(conn, rules, cfg, case_id, "resolved", DAY, "koordinator")
    with pytest.raises(AssessmentError, match="回答を待つアセスメントはありません"):
        answer_assessment(conn, rules, cfg, case_id, "resolved", DAY, "koordinator")


def test_an_answer_that_moves_the_question_to_another_agency_is_recorded_and_shown_answered(
    asked, conn, rules, cfg, monkeypatch
):
    """needs_conference sends the case to a conference whose proposed lead can be another agency
    than the assessor: the question is then no longer the assessor's. The answer was rolled back
    with 「このリンクは無効です」 (found by the lifecycle benchmark); it is recorded, and the page (after
    the answer's redirect, and whenever the e-mail is opened again) says it was answered."""
    from engine.links import answers

    case_id, checkpoint_id, token = asked
    apply = answers._apply

    def and_another_lead(conn, *args):
        apply(conn, *args)
        conn.execute("UPDATE cases SET lead_agency_id = 'jiritsu_soudan' WHERE case_id = ?", (case_id,))

    monkeypatch.setattr(answers, "_apply", and_another_lead)
    shown = links.answer(conn, cfg, rules, token, "needs_conference", "複数分野での検討が必要と判断", DAY)
    assert shown.state == "answered" and shown.answer_label
    again = links.lookup(conn, cfg, token, DAY)  # the page the agency is sent to, and sees when it reopens the e-mail
    assert again.state == "answered" and again.answer_label == shown.answer_label and not again.choices
    assert checkpoint(conn, checkpoint_id) == ("done", "needs_conference")
    assert state(conn, case_id)["status"] == "convened" and answered(conn, case_id)[-1]["result"] == "needs_conference"
