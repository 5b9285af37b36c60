"""What a review of issue 17 found, each pinned: a non-member assessor hears only of the persons
concerned who consented, and not at all once consent lapsed; a case a serving agency checks ends
when its flags resolve, and goes to a conference (its pathway with it) on a concern; the serving
agency's notice asks it to check by a date instead of saying no case was opened; a DV lock on such
a case ends its check-back."""

from __future__ import annotations

from datetime import date

from engine.casework.audit import run_audit
from engine.casework.sweep import daily_sweep
from engine.casework.watch import answer_checkpoint
from tests.helpers.conference import cycle, new_import, send_by_file
from tests.helpers.mail import body, emails
from tests.helpers.town import CONSENT, ON, add_household, person


def case(conn, hid):
    return conn.execute(
        "SELECT case_id, status, pathway, pathway_rule, routed_to FROM cases WHERE household_id = ? ORDER BY case_id DESC",
        (hid,),
    ).fetchone()


def check_backs(conn, case_id):
    return conn.execute(
        "SELECT due_on, status FROM checkpoints WHERE case_id = ? AND kind = 'check_back' ORDER BY checkpoint_id",
        (case_id,),
    ).fetchall()


def served(conn):
    """Someone of 30 with no work or income, already using a 困窮 service: already_served → 自立相談."""
    return add_household(conn, "HS", person(30, "世帯主", ("service_use", "困窮")), area="中央")


def test_a_non_member_assessor_hears_only_of_the_consenting_person(conn, workspace, rules, cfg):
    add_household(
        conn,
        "HH",
        person(30, "子", CONSENT, sex="M"),  # hikikomori, consented: the ひきこもり centre (no member) may assess
        person(60, "世帯主", ("earned_income", "3000000"), ("arrears", "kokuho:2")),  # not concerned, no consent
        area="中央",
    )
    cycle(conn, workspace, rules, cfg)
    case_id, status, _, rule, owner = case(conn, "HH")
    assert (status, rule, owner) == ("assessing", "withdrawal", "hikikomori_npo")
    daily_sweep(conn, rules, cfg, ON)
    send_by_file(conn, cfg, workspace)
    (mail,) = [m for m in emails(workspace) if "アセスメント" in m["subject"]]
    text = body(mail)
    assert "滞納" not in text and "世帯員2" not in text, text  # the mother's 困窮 facts are not the centre's to hear


def test_an_assessment_whose_consent_lapsed_goes_to_a_conference_unasked(conn, workspace, rules, cfg):
    ended = ("consent", "重層的支援会議", "2026-01-10", ON.isoformat())  # ends on the first night
    add_household(conn, "HH", person(30, "世帯主", ended, sex="M"), area="中央")
    cycle(conn, workspace, rules, cfg)
    case_id, status, _, rule, owner = case(conn, "HH")
    assert (status, owner) == ("assessing", "hikikomori_npo"), (status, rule, owner)
    daily_sweep(conn, rules, cfg, date(2026, 11, 30))  # the start day came; the consent has ended
    case_id, status, pathway, rule, _ = case(conn, "HH")
    assert status in ("convened", "detected") and (pathway, rule) == ("conference", "consent")
    assert not conn.execute("SELECT 1 FROM outbox WHERE message_key LIKE 'checkpoint:%'").fetchone()


def test_the_serving_agency_is_asked_to_check_by_a_date(conn, workspace, rules, cfg):
    served(conn)
    cycle(conn, workspace, rules, cfg)
    (mail,) = [m for m in emails(workspace) if "状況確認" in m["subject"]]
    text = body(mail)
    assert "まず貴機関に世帯の状況のご確認をお願いします" in text and "令和8年12月11日（金）に" in text
    assert "並行するケースは開始しません" not in text and "【自立相談支援機関】" not in mail["subject"]


def test_a_served_case_ends_when_its_flags_resolve(conn, workspace, rules, cfg, cal):
    served(conn)
    cycle(conn, workspace, rules, cfg)
    case_id = case(conn, "HS")[0]
    pid = conn.execute("SELECT person_id FROM persons WHERE household_id = 'HS'").fetchone()[0]
    day = cal.add(ON, 3)
    conn.execute(
        "INSERT INTO records VALUES ('inc', ?, 'test', 'earned_income', '3000000', ?, NULL)", (pid, day.isoformat())
    )
    conn.commit()
    new_import(conn, 5, "HS", day.isoformat())
    cycle(conn, workspace, rules, cfg, day)
    assert case(conn, "HS")[1] == "archived"
    assert [s for _, s in check_backs(conn, case_id)] == ["cancelled"]


def test_a_concern_from_the_serving_agency_sends_the_case_and_its_pathway_to_a_conference(conn, workspace, rules, cfg):
    served(conn)
    cycle(conn, workspace, rules, cfg)
    case_id = case(conn, "HS")[0]
    due = date.fromisoformat(check_backs(conn, case_id)[0][0])
    daily_sweep(conn, rules, cfg, due)
    answer_checkpoint(conn, rules, cfg, case_id, "stable", due, "tester")
    later = date.fromisoformat(check_backs(conn, case_id)[-1][0])  # three months on
    daily_sweep(conn, rules, cfg, later)
    answer_checkpoint(conn, rules, cfg, case_id, "concern", later, "tester")
    _, status, pathway, rule, _ = case(conn, "HS")
    assert status == "convened" and (pathway, rule) == ("conference", "check_back")
    kinds = {v.kind for v in run_audit(conn, cfg, later).violations}
    assert "conference_too_far" not in kinds  # measured from the concern, not from the first night
