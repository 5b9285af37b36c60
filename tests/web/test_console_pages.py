"""The console's pages (TestClient): Today, the case list with its filters and search, and a case
with its flags explained, lead, roles, questions out and timeline — hostile values escaped."""

from __future__ import annotations

import re
import shutil

import pytest
from fastapi.testclient import TestClient

from engine.store.lifecycle import Log
from engine.support import clock
from engine.web.app import create_app
from tests.helpers.console import add_coordinator, login
from tests.helpers.paths import ROOT

HOSTILE = '<script>alert(1)</script>"><img src=x onerror=alert(2)>'


def no_markup_from_data(html: str) -> None:
    assert "<script" not in html and "<img" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html


def test_today_shows_the_digest(console, convened):
    conn = convened.conn
    case = convened.cases[0]
    Log(conn, clock.today(), "sweep").escalate(
        "lead:99", "lead", f"受諾依頼 99 の回答期限を過ぎた（事案 {case}）", case_id=case
    )
    conn.execute("UPDATE cases SET meeting_id = NULL, status = 'detected' WHERE case_id = ?", (convened.cases[1],))
    conn.execute(
        "UPDATE outbox SET status = 'failed', attempts = 3, last_error = '550 mailbox unavailable' "
        "WHERE message_key = (SELECT MIN(message_key) FROM outbox WHERE agency_id = 'houkatsu_chuo')"
    )
    conn.commit()
    html = console.get("/").text
    assert "受諾依頼 99 の回答期限を過ぎた" in html and f'href="/cases/{case}"' in html
    assert "0営業日 記録なし" in html  # raised today, nobody has acted on it yet (its age, issue 18)
    assert "会議の空き待ちの事案（1 件）" in html and convened.cases[1] in html
    assert "送信に失敗したメール（1 件）" in html and "550 mailbox unavailable" in html
    assert "中央地域包括支援センター" in html  # the agency by name
    assert "監査の指摘" in html


def test_cases_filters_and_search(console, convened):
    conn = convened.conn
    a, b, c = convened.cases
    conn.execute("UPDATE cases SET lead_agency_id = 'kodomo_center' WHERE case_id = ?", (b,))
    conn.execute("UPDATE cases SET conference_type = 'multi' WHERE case_id = ?", (c,))
    conn.commit()

    def listed(**query) -> set[str]:
        html = console.get("/cases", params=query).text
        return set(re.findall(r'href="/cases/(C-[0-9-]+)"', html))

    assert listed() == {a, b, c}
    assert listed(lead="kodomo_center") == {b}
    assert listed(conference="multi") == {c}
    assert listed(state="convened") == {a, b, c} and listed(state="active") == set()
    assert listed(overdue="true") == set()
    assert listed(q=a[-3:]) == {a}
    assert listed(state="<script>", lead="nope") == {a, b, c}  # an unknown filter value filters nothing
    r = console.get("/cases", params={"q": a.lower()}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/cases/{a}"


def test_overdue_filter_names_cases_past_their_next_step(client, coordinator, convened):
    from datetime import datetime, time, timedelta

    from tests.helpers.casework import MEETING_DAY

    clock.pin(datetime.combine(MEETING_DAY + timedelta(days=3), time(9), clock.TOKYO))
    login(client)
    html = client.get("/cases", params={"overdue": "true"}).text
    assert set(re.findall(r'href="/cases/(C-[0-9-]+)"', html)) == set(convened.cases)  # outcomes owed


def test_a_case_page(console, convened):
    conn = convened.conn
    case = convened.cases[0]
    conn.execute(
        "INSERT INTO lead_requests (case_id, agency_id, requested_on, due_on, then_status, status) "
        "VALUES (?, 'houkatsu_chuo', '2026-12-04', '2026-12-11', 'active', 'pending')",
        (case,),
    )
    conn.execute(
        "INSERT INTO case_actions (case_id, meeting_id, agency_id, action, due_on, status) "
        "VALUES (?, ?, 'jiritsu_soudan', '家計の相談につなぐ', '2026-12-18', 'open')",
        (case, convened.meeting),
    )
    conn.execute(
        "INSERT INTO checkpoints (case_id, kind, due_on, status) VALUES (?, 'evaluation', '2027-03-04', 'pending')",
        (case,),
    )
    conn.commit()
    html = console.get(f"/cases/{case}").text
    for text in (
        "会議に付議",  # state
        "令和8年12月4日（金） 会議",  # next dated step
        "中央地域包括支援センター（受諾前）",  # lead, by name
        "自立相談支援機関（くらし相談窓口）（参加機関）",  # roles
        "主担当機関の受諾",
        "回答待ち",
        "家計の相談につなぐ",
        "プランの評価",  # questions out
        "8050世帯",
        "✔ 75歳以上 — 82歳",  # the flag explained
        "事案開始",
        "自動（夜間処理）",  # timeline
    ):
        assert text in html, text
    assert console.get("/cases/C-9999-99999").status_code == 404


def test_console_changes_carry_via_console_and_the_page_says_so(console, convened):
    from engine.web.session import User, acting

    conn, case = convened.conn, convened.cases[0]
    with acting(User(name="山田", role="coordinator", session_scope="s")) as actor:
        Log(conn, clock.today(), actor).event("note", case_id=case, reason="電話で確認")
    Log(conn, clock.today(), "山田").event("note", case_id=case, reason="CLI から")  # the same name on the CLI
    conn.commit()
    vias = [
        r[0]
        for r in conn.execute(
            "SELECT json_extract(detail, '$.via') FROM audit_log WHERE event = 'note' ORDER BY seq"
        ).fetchall()
    ]
    assert vias == ["console", None]
    html = console.get(f"/cases/{case}").text
    assert html.count("（コンソール）") == 1


def test_hostile_values_are_escaped(console, convened):
    conn, case = convened.conn, convened.cases[0]
    conn.execute("UPDATE cases SET lead_reason = ?, conference_basis = ? WHERE case_id = ?", (HOSTILE, HOSTILE, case))
    Log(conn, clock.today(), "山田").event("note", case_id=case, reason=HOSTILE)
    Log(conn, clock.today(), "sweep").escalate("x:1", "lead", HOSTILE, case_id=case)
    conn.commit()
    for path in ("/", f"/cases/{case}"):
        no_markup_from_data(console.get(path).text)
    html = console.get("/cases", params={"q": HOSTILE}).text
    assert "<script" not in html and "&lt;script&gt;" in html


def test_a_hostile_rule_title_is_escaped(workspace, conn, convened, tmp_path):
    rules = tmp_path / "rules"
    shutil.copytree(ROOT / "configs" / "rules", rules)
    flags = rules / "flags.yaml"
    text = flags.read_text(encoding="utf-8")
    flags.write_text(
        text.replace(
            "title: 8050世帯（要介護の高齢者と無業の中高年が同居）", "title: '8050 <script>alert(1)</script>'", 1
        ),
        encoding="utf-8",
    )
    add_coordinator(conn)
    with TestClient(create_app(workspace, rules, ROOT / "configs"), base_url="http://127.0.0.1:8300") as c:
        assert login(c).status_code == 303
        html = c.get(f"/cases/{convened.cases[0]}").text
    assert "<script" not in html and "8050 &lt;script&gt;alert(1)&lt;/script&gt;" in html


@pytest.mark.parametrize("path", ["/", "/cases", "/cases/C-2026-00001"])
def test_console_pages_need_no_script_and_carry_the_logout_form(console, convened, path):
    html = console.get(path).text
    assert not re.search(r"<script|\son\w+=|style=", html, re.I)
    assert 'action="/logout"' in html
