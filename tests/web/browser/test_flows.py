"""Issue 13's flows in a real browser (headless chromium): the coordinator logs in with the account
made by `engine users add`, records the conference's outcome through the form (first refused, each
problem beside its field), the engine's own nightly cycle and dispatch send the lead request
through the file transport, the agency opens the link from the .eml as its mail program would —
opening changes nothing — accepts, and the coordinator sees the case become active."""

from __future__ import annotations

from engine.store.lifecycle import STATE_LABELS
from engine.support import clock
from tests.helpers.casework import DAY, LEAD, status_of
from tests.web.browser.conftest import (
    MONDAY,
    add_account,
    everything,
    link_in_outbox,
    log_in,
    nightly_and_dispatch,
    submit,
)


def fill_plan(page, *, lead: str, due: str, review_on: str = ""):
    page.select_option("#decision", "plan")
    page.select_option("#lead", lead)
    page.select_option("select[name=role_agency] >> nth=0", LEAD)
    page.fill("input[name=role_action] >> nth=0", "介護サービスの利用調整")
    page.fill("input[name=role_due] >> nth=0", due)
    page.fill("#review_on", review_on)
    return submit(page, "結果を記録する")


def test_log_in_record_an_outcome_and_the_agency_accepts_from_its_email(convened, web, browser):
    clock.pin(MONDAY)
    case, conn = convened.case, convened.conn
    add_account(convened.workspace)

    # --- the coordinator logs in and lands on 今日 (Today)
    console = log_in(web.page(browser), web)
    assert console.url == web.url("/") and console.locator("h1").first.inner_text() == "令和8年12月7日（月） の状況"
    assert console.locator(".who").inner_text() == "山田"

    # --- the outcome form: refused, each problem beside its field, nothing recorded
    console.goto(web.url(f"/meetings/{convened.meeting}/cases/{case}/outcome"))
    before = convened.snapshot()
    assert fill_plan(console, lead="", due="2027-01-29", review_on="2027-01-10").status == 400
    assert console.locator("[role=alert]").inner_text().startswith("記録できませんでした")
    lead_problem = console.locator("#lead + p.field-problem")  # the line right after the field
    assert "主担当機関を選んでください" in lead_problem.inner_text()
    assert "中断のときだけ" in console.locator("#review_on + p.field-problem").inner_text()
    assert console.input_value("input[name=role_due] >> nth=0") == "2027-01-29"  # what was typed is kept
    assert convened.snapshot() == before

    # --- corrected and recorded: the case page, waiting for the lead's acceptance
    assert fill_plan(console, lead=LEAD, due="2027-01-29").status == 200
    assert console.url == web.url(f"/cases/{case}")
    assert STATE_LABELS["lead_pending"] in console.locator("table").first.inner_text()
    assert status_of(conn, case) == "lead_pending"

    # --- the engine's own nightly cycle and dispatch: the lead request goes out as an .eml
    nightly_and_dispatch(convened.workspace, DAY)
    link = link_in_outbox(convened.workspace, "lead_request:", case)
    assert link.startswith("http://127.0.0.1:8300/a/")  # configs: base_url is the loopback default
    token_path = link.split("://", 1)[1].split("/", 1)[1]

    # --- the agency opens it (another browser, no account): a GET alone changes nothing
    agency = web.page(browser)
    before = everything(conn)
    for _ in range(2):  # a mail scanner's visit, then the person's
        response = agency.goto(web.url("/" + token_path))
        assert response.status == 200
    assert everything(conn) == before
    assert agency.locator("h1").inner_text() == "主担当機関の受諾のお願い"
    assert case in agency.locator("main").inner_text()

    # --- accept: the answer page says 回答済み, and the case moves
    agency.check("input[name=choice][value=accept]")
    answered = submit(agency, "回答を送信する")
    assert answered.status == 200 and answered.request.redirected_from.method == "POST"  # POST/redirect/GET
    assert agency.url == web.url("/" + token_path)
    assert agency.locator("h2.done").inner_text() == "回答済み（令和8年12月7日（月）9時00分）"
    assert agency.locator("input[name=choice]").count() == 0
    assert status_of(conn, case) == "active"

    # --- the coordinator sees it on the case page
    console.goto(web.url(f"/cases/{case}"))
    summary = console.locator("table").first.inner_text()
    assert STATE_LABELS["active"] in summary and "令和8年12月7日（月） 受諾" in summary
    assert "機関がメールのリンクから回答" in console.locator("main").inner_text()
    assert web.dialogs == [] and web.errors == []
