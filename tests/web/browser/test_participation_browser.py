"""参加支援 in a real browser (headless chromium): the coordinator logs in, opens a case whose son was
introduced to a place and accepted there, records the lead's answer to the first follow-up given by
telephone — 「心配なことがある」 — and sees the case brought back: the timeline traces the referral to
the concern, and the case is booked into a coming conference."""

from __future__ import annotations

from datetime import datetime, time

from engine.participation.answers import answer_referral
from engine.support import clock
from engine.support.business_days import Calendar
from engine.support.vocabulary import FOLLOWUP_LEAD_LABELS, REFERRAL_STATE_LABELS
from tests.helpers.casework import DAY
from tests.web.browser.conftest import MONDAY, add_account, everything, log_in
from tests.web.test_console_participation import refer_son_and_father


def test_a_concern_recorded_at_follow_up_brings_the_case_back(conn, workspace, rules, cfg, web, browser):
    clock.pin(MONDAY)
    case, son, _ = refer_son_and_father(conn, workspace, rules, cfg)
    answer_referral(conn, rules, cfg, son, "accept", DAY, "tester")
    first = Calendar.of(cfg.conference).add(DAY, cfg.participation.settings.followup_business_days[0])
    (lead_followup,) = conn.execute(
        "SELECT followup_id FROM followups WHERE referral_id = ? AND side = 'lead' AND due_on = ?",
        (son, first.isoformat()),
    ).fetchone()
    add_account(workspace)
    clock.pin(datetime.combine(first, time(9), clock.TOKYO))  # the first follow-up's day

    # --- the coordinator opens the case: the referral, accepted, with its follow-up due today
    console = log_in(web.page(browser), web, path=f"/cases/{case}")
    assert console.url == web.url(f"/cases/{case}")
    card = console.locator(f"#referral-{son}")
    assert REFERRAL_STATE_LABELS["accepted"] in card.inner_text()
    assert cfg.participation.places["ibasho_chuo"].name in card.inner_text()
    form = console.locator(f"#followup-{lead_followup}")
    assert "主担当機関" in form.inner_text()

    # --- a refusal first: a day before the follow-up was due is refused on the page, nothing recorded
    before = everything(conn)
    console.select_option(f"#followup-{lead_followup}-result", label=FOLLOWUP_LEAD_LABELS["concern"])
    console.fill(f"#followup-{lead_followup}-on", DAY.isoformat())
    with console.expect_navigation() as navigation:
        form.get_by_role("button", name="確認の回答を記録する").click()
    assert navigation.value.status == 400
    alert = console.locator(f"#problem-followup-{lead_followup}")
    assert alert.inner_text().startswith("記録できませんでした") and "以降にしてください" in alert.inner_text()
    assert console.input_value(f"#followup-{lead_followup}-on") == DAY.isoformat()  # what was typed is kept
    assert everything(conn) == before

    # --- the lead's answer, given by telephone: 心配なことがある, recorded today
    console.fill(f"#followup-{lead_followup}-on", "")
    console.fill(f"#followup-{lead_followup}-note", "最近休みがち")
    with console.expect_navigation() as navigation:
        console.locator(f"#followup-{lead_followup}").get_by_role("button", name="確認の回答を記録する").click()
    assert navigation.value.status == 200 and navigation.value.request.redirected_from.method == "POST"
    assert console.url.startswith(web.url(f"/cases/{case}"))

    # --- the case is brought back: the timeline traces it, and a coming meeting has it
    timeline = console.locator("table").last.inner_text()
    for step in ("参加支援の紹介", "受入れを決定", "心配なことがある", "会議に付議"):
        assert step in timeline, step
    assert "山田" in timeline and "（コンソール）" in timeline  # recorded under the login
    meeting_id, held_on = conn.execute(
        "SELECT m.meeting_id, m.held_on FROM cases c JOIN meetings m ON m.meeting_id = c.meeting_id WHERE c.case_id = ?",
        (case,),
    ).fetchone()
    assert held_on >= first.isoformat()
    summary = console.locator("table").first.inner_text()
    assert meeting_id in summary
    assert FOLLOWUP_LEAD_LABELS["concern"] in console.locator(f"#referral-{son}").inner_text()
    assert console.locator(f"#followup-{lead_followup}").count() == 0  # answered: no form any more
    assert web.dialogs == [] and web.errors == []
