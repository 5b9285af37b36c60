"""The wording of notices (engine/papers/notices.py and the Notice(...) texts of the lifecycle):
addressed 御中 or 様, signed by the 事務局 of the case's conference type, dates in 和暦（曜日）, agencies by
name in the digest and the history. The golden files (test_notices_golden.py) show each notice whole."""

from __future__ import annotations

import json
import re
from datetime import date
from pathlib import Path

from engine.casework.audit import run_audit
from engine.casework.history import Entry, render_history, with_agency_names
from engine.casework.sweep import queue_digest
from engine.outbox.queue import queue
from engine.papers.notices import COORDINATOR, Notice, addressed, queue_notice, render_notice, sender_name

GOLDEN = Path(__file__).parent / "golden" / "notices"
ISO_DAY = re.compile(r"\b\d{4}-\d{2}-\d{2}\b")


def test_an_agency_is_addressed_onchuu_and_the_coordinator_sama(cfg):
    assert addressed(cfg, "houkatsu_kita") == f"{cfg.agencies['houkatsu_kita'].name} 御中"
    assert addressed(cfg, COORDINATOR).endswith(" 様")
    text = render_notice(cfg, Notice(key="notice:t", kind="t", recipient="houkatsu_kita", title="t", lines=["x"]))
    assert text["text"].startswith(f"{cfg.agencies['houkatsu_kita'].name} 御中\n") and "様向け" not in text["text"]


def test_the_sender_is_the_office_of_the_cases_conference_type(cfg):
    assert sender_name(cfg, "support") == cfg.name_of("support") + "事務局"
    assert sender_name(cfg, "multi") == cfg.name_of("multi") + "事務局"
    assert sender_name(cfg, None) == sender_name(cfg, "bogus") == cfg.name_of("support") + "事務局"
    notice = Notice(
        key="notice:m", kind="t", recipient="houkatsu_kita", title="t", lines=["x"], conference_type="multi"
    )
    text = render_notice(cfg, notice)["text"]
    assert f"{cfg.name_of('multi')}事務局" in text and f"\n{cfg.name_of('support')}事務局" not in text


def test_a_notice_of_a_case_is_signed_for_the_cases_type(cfg):
    """queue_notice reads the case's conference type (the golden scenario's cases: one of each type)."""
    multi = (GOLDEN / "lead_request.multi.txt").read_text(encoding="utf-8")
    support = (GOLDEN / "lead_request.txt").read_text(encoding="utf-8")
    assert f"\n{cfg.name_of('multi')}事務局\n" in multi and f"\n{cfg.name_of('support')}事務局" not in multi
    assert f"{cfg.name_of('support')}事務局" in support and cfg.name_of("multi") not in support


def test_dates_people_read_are_wareki_with_the_weekday():
    for path in sorted(GOLDEN.glob("*.txt")):
        text = path.read_text(encoding="utf-8")
        assert not ISO_DAY.search(text), f"{path.name}: a bare ISO date"
        assert re.search(r"令和\d+年\d+月\d+日（[月火水木金土日]）", text), path.name
    overdue = (GOLDEN / "reminder.overdue.txt").read_text(encoding="utf-8")
    assert "期日: 令和8年12月10日（木）" in overdue


def test_agency_ids_become_names_but_not_inside_keys_paths_or_addresses():
    names = {"houkatsu_kita": "北部地域包括支援センター", "kita": "別の機関"}
    assert with_agency_names("役割 3（houkatsu_kita）が未完了", names) == "役割 3（北部地域包括支援センター）が未完了"
    kept = "メール agenda:M-20261204-1000-S:houkatsu_kita:v2、/a/houkatsu_kita、houkatsu_kita@x.example"
    assert with_agency_names(kept, names) == kept
    assert with_agency_names("houkatsu_kita_2 と kita", names) == "houkatsu_kita_2 と 別の機関"
    assert with_agency_names("なにもなし", None) == "なにもなし"


def test_history_names_agencies_and_their_link_answers():
    entry = Entry(
        seq=1,
        on_day="2026-12-09",
        actor="houkatsu_kita (リンク)",
        event="action_done",
        label="役割の完了",
        reason="役割 57 完了（houkatsu_kita）",
    )
    names = {"houkatsu_kita": "北部地域包括支援センター"}
    text = render_history("C-2026-00001", [entry], names)
    assert "[北部地域包括支援センター（リンク）]" in text and "役割 57 完了（北部地域包括支援センター）" in text
    assert "houkatsu_kita" not in text
    assert "[houkatsu_kita (リンク)]" in render_history("C-2026-00001", [entry])  # without names: as stored


def test_the_digest_names_the_agency_of_a_failed_mail_and_of_each_escalation(conn, cfg):
    queue(conn, key="notice:f", kind="t", agency_id="houkatsu_kita", subject="s", parts={"text": "x"})
    conn.execute("UPDATE outbox SET status = 'failed', last_error = '550 mailbox unavailable'")
    conn.execute(
        "INSERT INTO escalations (subject_key, kind, raised_on, detail) VALUES ('x:1', 'lead_no_answer', '2026-11-27', ?)",
        ("事案 C-2026-00001: houkatsu_kita が回答していない（旧い記録）",),
    )
    conn.commit()
    day = date(2026, 11, 30)
    assert queue_digest(conn, cfg, day, run_audit(conn, cfg, day))
    text = json.loads(conn.execute("SELECT parts FROM outbox WHERE message_key = 'digest:2026-11-30'").fetchone()[0])[
        "text"
    ]
    name = cfg.agencies["houkatsu_kita"].name
    assert f"notice:f（{name}宛て）: 550 mailbox unavailable" in text
    assert f"事案 C-2026-00001: {name} が回答していない" in text
    assert "houkatsu_kita" not in text and "令和8年11月30日（月）時点の状況です" in text
    assert text.startswith("多機関協働事業 コーディネーター 様\n")


def test_a_notice_is_queued_once(conn, cfg):
    notice = Notice(key="notice:once", kind="t", recipient="houkatsu_kita", title="t", lines=["x"])
    assert queue_notice(conn, cfg, notice) and not queue_notice(conn, cfg, notice)
