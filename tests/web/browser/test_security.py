"""Issue 13's protections where a real browser matters: what a hostile name or note would do if
it were rendered as markup (no dialog fires, no element appears), forms posted from another site
(refused although chromium sends the cookies and tokens it has), a stale tab posting a link already
used, a tampered or expired link, the brute-force lock-out, and a console page without a session.
The TestClient tests in tests/web/ cover each rule on the wire; these show it in chromium."""

from __future__ import annotations

from datetime import datetime

import pytest

from engine.support import clock
from engine.web.console.login import FAILED
from tests.helpers.casework import plan_text, status_of
from tests.helpers.console import NAME, PASSWORD
from tests.web.browser.conftest import (
    HOSTILE,
    MONDAY,
    add_account,
    everything,
    link_in_outbox,
    log_in,
    nightly_and_dispatch,
    submit,
)

OTHER = "jiritsu_soudan"  # the lead asked for the second case
HOSTILE_NAME = "<img src=x onerror=alert(1)>"
EVIL = "http://evil.example"


@pytest.fixture
def asked(convened, web):
    """Monday after the meeting: case 1 asks houkatsu_chuo to lead, case 2 jiritsu_soudan; `engine run`
    sends both requests (file transport). Returns case id -> the link's path on the served app."""
    clock.pin(MONDAY)
    convened.outcome(plan_text())
    convened.outcome(
        plan_text(lead=OTHER, roles=((OTHER, "就労準備支援の調整", "2027-01-29"),)), case=convened.cases[1]
    )
    nightly_and_dispatch(convened.workspace, MONDAY.date())
    return {
        c: "/a/" + link_in_outbox(convened.workspace, "lead_request:", c).rsplit("/a/", 1)[1]
        for c in convened.cases[:2]
    }


def nothing_injected(page) -> None:
    """No element made from text (an <img>, a <script>) and the text shown as typed."""
    assert page.locator("script").count() == 0
    assert page.locator("img").count() == 0
    assert page.locator("[onerror]").count() == 0


def test_hostile_names_and_notes_are_shown_as_text(convened, web, browser, asked):
    case = convened.case
    # an agency declines with a hostile reason, through its link
    agency = web.page(browser)
    agency.goto(web.url(asked[case]))
    agency.check("input[name=choice][value=decline]")
    agency.fill("#note", HOSTILE)
    assert submit(agency, "回答を送信する").status == 200
    assert status_of(convened.conn, case) == "lead_pending"  # declined: the next candidate is asked
    nothing_injected(agency)
    # a coordinator whose account name is markup logs in, reads the case, leaves a hostile note
    add_account(convened.workspace, HOSTILE_NAME)
    console = log_in(web.page(browser), web, name=HOSTILE_NAME)
    assert console.locator(".who").inner_text() == HOSTILE_NAME
    console.goto(web.url(f"/cases/{case}"))
    assert HOSTILE in console.locator("main").inner_text()  # the decline's reason, as text
    nothing_injected(console)
    with console.expect_navigation():
        console.get_by_role("link", name="訂正・メモ").first.click()
    console.fill("#text", HOSTILE)
    assert submit(console, "メモを残す").status == 200
    console.goto(web.url(f"/cases/{case}"))
    text = console.locator("main").inner_text()
    assert text.count(HOSTILE) >= 2 and HOSTILE_NAME in text  # the note, under the account's name
    nothing_injected(console)
    assert web.dialogs == [] and web.errors == []


def page_of(html: str):
    """A route handler answering with `html` (the attacker's page, served under another origin)."""

    def fulfill(route, request) -> None:
        route.fulfill(body=html, content_type="text/html; charset=utf-8")

    return fulfill


def test_forms_posted_from_another_site_are_refused(convened, web, browser, asked):
    """An attacker's page at another origin, with the right tokens copied in: chromium sends no
    session cookie (SameSite=Strict) and says Sec-Fetch-Site: cross-site; nothing is recorded."""
    case = convened.case
    console = log_in(web.page(browser), web)
    console.goto(web.url(f"/meetings/{convened.meeting}/cases/{case}/outcome"))
    session_csrf = console.input_value("input[name=csrf]")
    console.goto(web.url(asked[case]))
    link_csrf = console.input_value("input[name=csrf_token]")
    forms = {
        "outcome": (
            f"/meetings/{convened.meeting}/cases/{convened.cases[2]}/outcome",
            {"csrf": session_csrf, "decision": "close"},
        ),
        "answer": (asked[case], {"csrf_token": link_csrf, "choice": "accept"}),
    }
    before = everything(convened.conn)
    for name, (path, fields) in forms.items():
        hidden = "".join(f'<input type="hidden" name="{k}" value="{v}">' for k, v in fields.items())
        html = f'<form method="post" action="{web.url(path)}">{hidden}<button>{name}</button></form>'
        console.context.route(f"{EVIL}/{name}", page_of(html))
        console.goto(f"{EVIL}/{name}")
        response = submit(console, name)
        if name == "outcome":  # no session cookie came along: the login page, not the form
            assert "/login" in console.url
        else:
            assert (
                response.status == 403
                and "別のサイトからの送信は受け付けません" in console.locator("main").inner_text()
            )
    assert everything(convened.conn) == before


def test_a_stale_tab_a_tampered_and_an_expired_link(convened, web, browser, asked):
    case = convened.case
    first = web.page(browser)
    second = first.context.new_page()  # the same link open in two tabs
    for tab in (first, second):
        tab.goto(web.url(asked[case]))
    first.check("input[name=choice][value=accept]")
    assert submit(first, "回答を送信する").status == 200
    before = everything(convened.conn)
    second.check("input[name=choice][value=decline]")
    second.fill("#note", "担当地区外のため")
    replay = submit(second, "回答を送信する")
    assert replay.status == 409 and "回答済み" in second.locator("h2.done").inner_text()
    assert everything(convened.conn) == before and status_of(convened.conn, case) == "active"
    # another agency's link is about its own case only
    other = web.page(browser)
    other.goto(web.url(asked[convened.cases[1]]))
    shown = other.locator("main").inner_text()
    assert f"{convened.cfg.agencies[OTHER].name} 御中" in shown and convened.cases[1] in shown and case not in shown
    # a tampered token: the one plain page, nothing about any case
    token = asked[convened.cases[1]]
    tampered = other.goto(web.url(token[:-1] + ("A" if token[-1] != "A" else "B")))
    assert tampered.status == 404 and "C-2026" not in other.locator("main").inner_text()
    # the same link after its due date and grace: says so, offers no form
    clock.pin(datetime(2027, 2, 1, 9, 0, tzinfo=clock.TOKYO))
    expired = other.goto(web.url(token))
    assert expired.status == 200 and "回答期限を過ぎています" in other.locator("main").inner_text()
    assert other.locator("input[name=choice]").count() == 0
    assert everything(convened.conn) == before


def test_a_console_page_without_a_session_and_the_lock_out(convened, web, browser):
    clock.pin(MONDAY)
    add_account(convened.workspace)
    page = web.page(browser)
    page.goto(web.url(f"/cases/{convened.case}"))
    assert page.url == web.url(f"/login?next=/cases/{convened.case}") or "next=%2Fcases" in page.url
    for _ in range(5):
        page.fill("#name", NAME)
        page.fill("#password", "wrong password, guessed")
        assert submit(page, "ログイン").status == 401
    page.fill("#name", NAME)
    page.fill("#password", PASSWORD)  # the right one, after five failures: still refused
    assert submit(page, "ログイン").status == 401
    assert page.locator("[role=alert]").inner_text() == FAILED and "/login" in page.url
    events = [e for (e,) in convened.conn.execute("SELECT event FROM audit_log WHERE event LIKE 'login%' ORDER BY seq")]
    assert events == ["login_failed"] * 4 + ["login_locked"] * 2  # locked at the fifth, the right one refused
    clock.pin(datetime(2026, 12, 7, 9, 16, tzinfo=clock.TOKYO))  # the lock lasts 15 minutes
    log_in(page, web, path=f"/cases/{convened.case}")
    assert page.url == web.url(f"/cases/{convened.case}")  # back on the page first asked for
