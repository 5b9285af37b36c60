"""What a new version of an agenda says changed since the version the agency last received, the
letterhead (document numbers, end time, per-type sender and notices) and the sentences that
replaced codes and ids."""

from __future__ import annotations

from datetime import date

import pytest

from engine.config import ConfigInvalid, load_config
from engine.papers import changes, letterhead
from engine.papers.agenda import Agenda, CaseItem, fact_text, for_agencies
from engine.papers.casebrief import preparation
from engine.store.db import connect
from engine.support.vocabulary import ARREARS_KINDS, ARREARS_LABELS
from tests.helpers.paths import ROOT


def agenda(cases=(("C-1", "甲"),), locked=0, **update) -> Agenda:
    base = dict(
        meeting_id="M-20261204-1000-S",
        conference_type="support",
        conference_name="支援会議",
        agency_id="a",
        agency_name="甲",
        silo="介護",
        held_on="2026-12-04",
        held_on_wareki="令和8年12月4日（金）",
        start_time="10:00",
        start_ics="20261204T100000",
        end_time="11:30",
        end_ics="20261204T113000",
        place="会議室",
        notice="n",
        handling=[],
        issuer="i",
        contact={},
        cases=[
            CaseItem(
                case_id=c,
                role="参加機関",
                urgent=False,
                flag_titles=[],
                facts=[],
                lead_name=lead,
                lead_reason="",
                discussion=[],
            )
            for c, lead in cases
        ],
        locked_count=locked,
        sender="s@example.jp",
        sender_name="支援会議事務局",
    )
    return Agenda(**(base | update))


def test_each_change_is_said_once_in_a_sentence():
    before = agenda(cases=(("C-1", "甲"), ("C-2", "乙"))).model_dump()
    after = agenda(cases=(("C-1", "丙"), ("C-3", "乙")), place="別室", start_time="15:00")
    said = changes.summary(before, after)
    assert said == [
        "日時を変更しました（変更前: 令和8年12月4日（金） 10:00〜11:30）。",
        "場所を変更しました（変更前: 会議室）。",
        "事案 C-3 を追加しました。",
        "前の版に記載した事案のうち1件は、この会議では協議しないことになりました。",
        "事案 C-1 の主担当機関の案を、甲から丙に変更しました。",
    ]
    assert changes.summary(after.model_dump(), after) == [
        "記載内容（貴機関の分野の情報、協議事項など）を更新しました。"
    ]


def test_a_case_that_becomes_locked_is_not_named_when_it_leaves():
    before = agenda(cases=(("C-1", "甲"), ("C-2", "乙"))).model_dump()
    said = changes.summary(before, agenda(cases=(("C-1", "甲"),), locked=1))
    assert not any("C-2" in s for s in said) and not any("件から" in s for s in said)


def test_the_hash_ignores_what_is_set_per_version():
    a = agenda()
    b = a.model_copy(update=dict(document_number="8福支第9号", issued_on="2026-11-30", changes=["x"], version=3))
    assert a.content_hash() == b.content_hash()
    assert a.content_hash() != agenda(end_time="12:00").content_hash()


def test_issuing_a_version_leaves_its_hash_as_it_was(conn, cfg, workspace):
    """write_papers records the hash it compared before `issue` numbered and dated the version."""
    from engine.papers.write import issue

    a = agenda()
    issued = issue(conn, workspace, cfg, a.model_copy(update={"version": 2}), date(2026, 11, 27))
    assert issued.document_number and issued.issued_on
    assert issued.content_hash() == a.content_hash()


def test_document_numbers_run_per_fiscal_year_and_are_never_reused(conn, cfg):
    taken = [letterhead.take_number(conn, cfg, date(2027, 3, 31)) for _ in range(2)]
    conn.commit()
    taken.append(letterhead.take_number(conn, cfg, date(2027, 4, 1)))
    assert taken == ["8福支第1号", "8福支第2号", "9福支第1号"]
    conn.rollback()  # a run killed before it commits: its number is given again
    assert letterhead.take_number(conn, cfg, date(2027, 4, 1)) == "9福支第1号"
    assert letterhead.take_number(conn, cfg, date(2027, 3, 31)) == "8福支第3号"


def test_words_replace_codes():
    assert set(ARREARS_LABELS) == set(ARREARS_KINDS)
    assert fact_text("arrears", "resident_tax:11") == "住民税 11か月の滞納"
    assert fact_text("arrears", "kokuho:12") == "国民健康保険料 12か月の滞納"
    assert fact_text("public_assistance", "") == "生活保護受給"
    assert (
        for_agencies("前回の主担当（規則 elder_care）。2026-12-04に受諾") == "前回の主担当。令和8年12月4日（金）に受諾"
    )


def test_a_lead_without_records_in_its_silo_is_told_why_it_is_asked():
    said = preparation("lead", [], ["主担当機関の決定"], "ひきこもり地域支援センター", None)
    assert said[0].startswith("主担当機関をお引き受けいただけるか") and "把握している状況" in said[1]


def write(tmp_path, text: str):
    import shutil

    conf = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", conf)
    (conf / "letterhead.yaml").write_text(text, encoding="utf-8")
    return conf


def test_the_letterhead_sets_issuer_number_contact_and_end_time(tmp_path, rules):
    conf = write(
        tmp_path,
        "issuer: 架空市福祉部長\ndocument_number: '{year}地福第{seq}号'\nend_time: '17:00'\n"
        "contact: {person: 山田, phone: 000-111-2222, email: tanto@city.example.lg.jp}\n"
        "secretariat: {multi: 多機関協働事務局}\n",
    )
    cfg = load_config(conf, rules)
    assert letterhead.issuer(cfg, "multi") == "架空市福祉部長"
    assert letterhead.secretariat(cfg, "multi") == "多機関協働事務局"
    assert letterhead.secretariat(cfg, "support") == "支援会議事務局"
    assert letterhead.end_time(cfg, "14:00") == "17:00"
    assert letterhead.take_number(connect(tmp_path / "ws"), cfg, date(2026, 11, 27)) == "8地福第1号"
    assert "重層的支援会議" in letterhead.notice(cfg, "multi") and "同意" in letterhead.notice(cfg, "multi")


@pytest.mark.parametrize(
    ("text", "field", "words"),
    [
        ("document_number: '第{n}号'\n", "document_number", "{seq}"),
        ("document_number: '{seq.__class__}'\n", "document_number", "{seq}"),
        ("end_time: '09:00'\n", "end_time", "not after the start"),
        ("duration_minutes: 5\n", "duration_minutes", "15"),
        ("contact: {email: nope}\n", "contact.email", "e-mail"),
        ('municipality: "a\\nb"\n', "municipality", "one line"),
    ],
)
def test_config_check_names_the_letterheads_line_and_field(tmp_path, rules, text, field, words):
    conf = write(tmp_path, "issuer: 架空市長\n" + text)
    with pytest.raises(ConfigInvalid) as err:
        load_config(conf, rules)
    (problem,) = err.value.problems
    assert problem.file.endswith("letterhead.yaml") and problem.line == 2 and problem.field == field
    assert words in problem.message, problem.message


@pytest.mark.regression("issue 14: the invited list named the DV centre to other agencies (hypothesis found it)")
def test_the_dv_centre_is_named_in_the_invited_list_to_itself_only(cfg):
    from engine.papers.agenda import invited
    from engine.policy.dv import DV_CENTRE_SILO

    dv = next(a for a in cfg.agencies.values() if a.silo == DV_CENTRE_SILO)
    other = next(a for a in cfg.agencies.values() if a.silo != DV_CENTRE_SILO)
    detailed = {dv.id, other.id}
    assert dv.name not in invited(cfg, detailed, other.id) and other.name in invited(cfg, detailed, other.id)
    assert dv.name in invited(cfg, detailed, dv.id)
    assert other.name not in invited(cfg, {dv.id}, dv.id)  # only agencies with a case detailed by e-mail
