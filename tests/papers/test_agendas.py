"""Agendas (engine/papers/): one per meeting and agency, minimised to that agency's silo and to the
members who consented, with the 106条の6 notice, the shared lead reason and the points to discuss;
local templates; a new version only when the content changed, a void version (and a cancelled
calendar invitation) for an agency left without cases."""

from __future__ import annotations

from datetime import date

import pytest

from engine.casework.listing import agenda
from engine.config import load_config
from engine.papers.agenda import meeting_papers
from engine.support.vocabulary import CODES
from engine.workflows.cycle import nightly_cycle
from tests.helpers.conference import case_of, cycle, send_by_file, sent_keys
from tests.helpers.paths import ROOT
from tests.helpers.town import ON, add_household, elder_and_son, person


# --- what an agency's agenda holds -------------------------------------------------------------------
def test_each_agency_sees_only_its_own_silos_facts(town, workspace, rules, cfg):
    cycle(town, workspace, rules, cfg)
    seen_titles = set()
    for (mid,) in town.execute("SELECT meeting_id FROM meetings").fetchall():
        for a in meeting_papers(town, rules, cfg, mid, ON).agendas:
            silo = cfg.agencies[a.agency_id].silo
            for item in a.cases:
                for fact in item.facts:
                    code = next(c for c in CODES.values() if c.title == fact.title)
                    assert code.silo == silo or (code.silo_from_value and fact.value == silo), (a.agency_id, fact)
                    seen_titles.add((a.agency_id, fact.title))
    assert ("houkatsu_chuo", "要介護・要支援認定") in seen_titles
    case = case_of(town, "H8050")
    text = agenda(town, workspace, case["meeting"], "jiritsu_soudan")
    assert case["case_id"] in text and "要介護・要支援認定" not in text


def test_agenda_has_the_106_notice_lead_reason_and_discussion_points(town, workspace, rules, cfg):
    cycle(town, workspace, rules, cfg)
    case = case_of(town, "H8050")
    text = agenda(town, workspace, case["meeting"], "houkatsu_chuo")
    assert "社会福祉法第106条の6" in text and "主担当機関（案）: 中央地域包括支援センター" in text
    shared = town.execute("SELECT lead_reason_shared FROM cases WHERE case_id = ?", (case["case_id"],)).fetchone()[0]
    assert shared in text and "主担当機関の決定" in text and "本人同意の取得方針" in text
    # the full reason (load, "already serves a member") stays with the coordinator
    assert "現在の主担当" in case["reason"] and "現在の主担当" not in text
    multi = case_of(town, "HAGREED")
    text = agenda(town, workspace, multi["meeting"], "houkatsu_kita")
    assert "106条の6" not in text and "支援プラン（案）の確認" in text and "本人同意の取得方針" not in text
    ics = next((workspace / "agendas" / case["meeting"]).glob("houkatsu_chuo.v1.ics")).read_text(encoding="utf-8")
    assert "DTSTART;TZID=Asia/Tokyo:" in ics and f"UID:{case['meeting']}@engine" in ics


def test_templates_can_be_overridden_from_the_config_folder(town, workspace, rules, tmp_path):
    import shutil

    conf = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", conf)
    (conf / "templates").mkdir(exist_ok=True)
    (conf / "templates" / "agenda.txt.j2").write_text(
        "町独自の様式 {{ a.meeting_id }} {{ a.cases | length }}件\n", encoding="utf-8"
    )
    local = load_config(conf, rules)
    cycle(town, workspace, rules, local)
    case = case_of(town, "H8050")
    assert agenda(town, workspace, case["meeting"], "houkatsu_chuo").startswith(f"町独自の様式 {case['meeting']}")


@pytest.mark.regression("review of the conference slice")
def test_multi_meeting_agenda_holds_no_facts_of_a_member_who_did_not_consent(conn, workspace, rules, cfg):
    elder, son = elder_and_son(consent=True)
    daughter = person(
        50, "子", ("earned_income", "3000000"), ("arrears", "kokuho:2")
    )  # no consent, not concerned by any flag
    add_household(conn, "HTHIRD", elder, son, daughter, area="北部")
    cycle(conn, workspace, rules, cfg)
    case = case_of(conn, "HTHIRD")
    assert case["type"] == "multi"
    papers = meeting_papers(conn, rules, cfg, case["meeting"], ON)
    npo = next(a for a in papers.agendas if a.agency_id == "hikikomori_npo")  # non-member, invited on consent
    facts = [f for c in npo.cases if c.case_id == case["case_id"] for f in c.facts]
    assert not any(f.title == "滞納" for f in facts), facts


# --- versions ----------------------------------------------------------------------------------------
def test_a_case_added_later_sends_a_new_agenda_version(town, workspace, rules, cfg):
    cycle(town, workspace, rules, cfg)
    case = case_of(town, "H8050")
    add_household(town, "H8050B", *elder_and_son(), area="港", changed_seq=1)
    town.execute("INSERT INTO imports VALUES (1, '2026-11-27T00:00:00', 'x', 'utf-8', '{}')")
    town.commit()
    cycle(town, workspace, rules, cfg)
    second = case_of(town, "H8050B")
    assert second["meeting"] == case["meeting"]
    versions = [
        k
        for (k,) in town.execute(
            "SELECT message_key FROM outbox WHERE message_key LIKE ? ORDER BY message_key",
            (f"agenda:{case['meeting']}:houkatsu_chuo:%",),
        )
    ]
    assert versions == [f"agenda:{case['meeting']}:houkatsu_chuo:v1", f"agenda:{case['meeting']}:houkatsu_chuo:v2"]
    assert "第2版" in agenda(town, workspace, case["meeting"], "houkatsu_chuo")


def test_agency_left_without_cases_is_told_its_agenda_is_void(conn, workspace, rules, cfg):
    add_household(conn, "HAGREED", *elder_and_son(consent=True), area="北部")
    cycle(conn, workspace, rules, cfg)
    before = case_of(conn, "HAGREED")
    assert (
        conn.execute("SELECT COUNT(*) FROM outbox WHERE agency_id = 'hikikomori_npo' AND status = 'sent'").fetchone()[0]
        == 1
    )
    conn.execute("UPDATE records SET end_date = '2026-11-28' WHERE code = 'consent'")
    conn.commit()
    cycle(conn, workspace, rules, cfg, date(2026, 11, 30))
    text = agenda(conn, workspace, before["meeting"], "hikikomori_npo")
    assert "第2版" in text and "事案はなくなりました" in text and before["case_id"] not in text
    # the NPO is not a member: it gets nothing about the 支援会議 the case moved to
    after = case_of(conn, "HAGREED")
    assert (
        conn.execute(
            "SELECT COUNT(*) FROM outbox WHERE agency_id = 'hikikomori_npo' AND message_key LIKE ?",
            (f"agenda:{after['meeting']}:%",),
        ).fetchone()[0]
        == 0
    )


@pytest.mark.regression("review of the conference slice")
def test_void_agenda_cancels_the_calendar_invitation(conn, workspace, rules, cfg):
    add_household(conn, "HAGREED", *elder_and_son(consent=True), area="北部")
    cycle(conn, workspace, rules, cfg)
    meeting = case_of(conn, "HAGREED")["meeting"]
    conn.execute("UPDATE records SET end_date = '2026-11-28' WHERE code = 'consent'")
    conn.commit()
    cycle(conn, workspace, rules, cfg, date(2026, 11, 30))
    ics = (workspace / "agendas" / meeting / "hikikomori_npo.v2.ics").read_text(encoding="utf-8")
    assert "この会議で貴機関が協議する事案はなくなりました" in (
        workspace / "agendas" / meeting / "hikikomori_npo.v2.txt"
    ).read_text(encoding="utf-8")
    assert "METHOD:CANCEL" in ics and "STATUS:CANCELLED" in ics, ics


@pytest.mark.regression("second review of the conference slice")
def test_an_unchanged_case_sends_no_new_agenda_version_when_a_member_has_a_birthday(conn, workspace, rules, cfg):
    elder = person(79, "世帯主", ("care_level", "要介護2"), sex="M", birth="1946-11-28")  # 80 on Saturday
    add_household(conn, "HBDAY", elder, person(52, "子", sex="M"), area="中央")
    cycle(conn, workspace, rules, cfg)
    meeting = case_of(conn, "HBDAY")["meeting"]
    again = nightly_cycle(conn, workspace, rules, cfg, date(2026, 11, 28))  # same data, next night
    queued = [k for (k,) in conn.execute("SELECT message_key FROM outbox WHERE status = 'pending'")]
    # 第2版 to every agency of the meeting, only "70代" → "80代" (ages are taken on the night, not the meeting day)
    assert again.papers.agendas == 0 and queued == [], (meeting, queued)


@pytest.mark.regression("second review of the conference slice")
def test_an_agency_never_sent_an_agenda_gets_no_cancellation(conn, workspace, rules, cfg):
    add_household(conn, "HAGREED", *elder_and_son(consent=True), area="北部")
    nightly_cycle(conn, workspace, rules, cfg, ON)  # Friday night's v1 would go out on Monday 08:00…
    meeting = case_of(conn, "HAGREED")["meeting"]
    conn.execute("UPDATE records SET end_date = '2026-11-28' WHERE code = 'consent'")  # …but consent ends on Saturday
    conn.commit()
    nightly_cycle(conn, workspace, rules, cfg, date(2026, 11, 29))  # v1 superseded by a void v2
    send_by_file(conn, cfg, workspace)  # Monday
    cancels = [k for k in sent_keys(conn) if k.startswith(f"agenda:{meeting}:")]
    # the NPO and 自立相談 each get "事案はなくなりました" + METHOD:CANCEL for a meeting they were never invited to
    assert cancels == [], cancels
