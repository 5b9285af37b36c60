"""参加支援 on the console's case page (TestClient): the needs, referrals with their follow-ups and the
proposals shown by label, never by code; the forms that record an answer given by telephone, a
follow-up's result and a new referral, each under the logged-in coordinator and CSRF-protected;
a refusal (the referral's states, the date policy, personal data in a note) shown on the page."""

from __future__ import annotations

import html
import re

import pytest

from engine.participation.answers import answer_referral
from engine.support import clock
from engine.support.business_days import Calendar
from engine.support.vocabulary import REFERRAL_STATE_LABELS
from tests.helpers.casework import DAY, MEETING_DAY, accept, decide, morning, open_cases, plan_text, snapshot
from tests.helpers.console import form_token, login

PLAN = (
    "participation:\n"
    "  - {member: 世帯員2, need: social_contact, place: ibasho_chuo, consent: true}\n"
    "  - {member: 1, need: daily_activity, place: salon_chuo, consent: false}\n"
    "  - {member: 1, need: meals, reason: 当面は自宅で過ごすことを希望}\n"
    "  - {member: 2, need: learning}\n"
)


def refer_son_and_father(conn, workspace, rules, cfg) -> tuple[str, int, int]:
    """An 8050 case whose plan refers the son (consent) to ibasho_chuo and the father (no consent) to
    salon_chuo, records a need settled with a reason and one open; the lead accepted it on MEETING_DAY.
    (case id, the son's referral, the father's)."""
    ((case_id, meeting_id),) = open_cases(conn, workspace, rules, cfg)
    result = decide(conn, workspace, rules, cfg, case_id, meeting_id, MEETING_DAY, plan_text(extra=PLAN))
    accept(conn, cfg, case_id, MEETING_DAY, "tester")
    son, father = result.referrals
    return case_id, son, father


@pytest.fixture
def referred(conn, workspace, rules, cfg, client, coordinator):
    """refer_son_and_father, on the morning of DAY, the coordinator logged in (`console`)."""
    clock.pin(morning(DAY.isoformat()))  # the autouse pinned_clock puts it back
    case = refer_son_and_father(conn, workspace, rules, cfg)
    assert login(client).status_code == 303
    return case


@pytest.fixture
def console(client, referred):
    return client


def text_of(page: str) -> str:
    """What a reader sees: the page without its tags (values of options and fields are not read)."""
    return html.unescape(re.sub(r"<[^>]+>", " ", page))


def section(page: str) -> str:
    return text_of(page.split('<h2 id="participation">', 1)[1].split("<h2>", 1)[0])


def card(page: str, referral_id: int) -> str:
    """One referral's card in the section."""
    return text_of(page.split(f'id="referral-{referral_id}"', 1)[1].split('<div class="card"', 1)[0])


def refusal(page: str) -> str:
    found = re.search(r'<p class="problem" role="alert" id="problem-[a-z0-9-]+">([^<]+)</p>', page)
    assert found, page[:300]
    return html.unescape(found[1])


def test_the_case_page_shows_needs_referrals_and_proposals_by_label(referred, console, cfg):
    case_id, son, father = referred
    page = console.get(f"/cases/{case_id}")
    assert page.status_code == 200
    seen = section(page.text)
    assert "世帯員2（50代・子）" in seen and "世帯員1（80代・世帯主）" in seen
    for words in (
        "人とのつながり・居場所",
        "紹介中",
        "理由あり（当面は自宅で過ごすことを希望）",
        "学習の支え",
        "未紹介",
        cfg.participation.places["ibasho_chuo"].name,
        cfg.participation.places["ibasho_chuo"].category_label,
        REFERRAL_STATE_LABELS["requested"],
        "中央地域包括支援センター",  # the introducer, by name
        "同行して紹介",  # the father's: no consent, the place is not told
        "令和8年",  # the answer due, in 和暦
        "受け入れる",  # the answers offered, by label
    ):
        assert words in seen, words
    for code in ("social_contact", "ibasho_chuo", "requested", "houkatsu_chuo", "accept", "waitlist_"):
        assert code not in seen, code
    proposals = seen.split("提案", 1)[1].split("紹介する", 1)[0]
    assert "世帯員2（50代・子）" in proposals and "✔" in proposals  # a member's proposals, explained
    timeline = text_of(page.text.split("<h2>経過", 1)[1])
    assert "参加支援の紹介" in timeline and "参加支援のニーズ" in timeline  # history's labels for the new events


def test_an_answer_given_by_telephone_is_recorded_under_the_coordinator(referred, console, conn):
    case_id, son, _ = referred
    page = console.get(f"/cases/{case_id}").text
    r = console.post(
        f"/cases/{case_id}/referrals/{son}/answer",
        data={"csrf": form_token(page), "choice": "accept", "note": "電話で受入れの連絡"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == f"/cases/{case_id}#participation"
    assert conn.execute("SELECT status FROM referrals WHERE referral_id = ?", (son,)).fetchone()[0] == "accepted"
    actor, detail = conn.execute(
        "SELECT actor, detail FROM audit_log WHERE case_id = ? AND event = 'referral_moved' ORDER BY seq DESC",
        (case_id,),
    ).fetchone()
    assert actor == "山田" and '"via": "console"' in detail
    seen = card(console.get(f"/cases/{case_id}").text, son)
    assert REFERRAL_STATE_LABELS["accepted"] in seen and "定着の確認" in seen and "予定" in seen
    assert "参加終了（" in seen and "受け入れる" not in seen  # only the answers its new state allows


def test_a_refused_answer_is_shown_on_the_page_and_records_nothing(referred, console, conn):
    case_id, son, _ = referred
    token = form_token(console.get(f"/cases/{case_id}").text)
    before = snapshot(conn)
    url = f"/cases/{case_id}/referrals/{son}/answer"
    r = console.post(url, data={"csrf": token, "choice": "end_moved"})
    assert r.status_code == 400 and "移れません" in refusal(r.text) and "何も記録されていません" in refusal(r.text)
    r = console.post(url, data={"csrf": token, "choice": "accept", "on": "2026-12-01"})  # before it was asked
    assert r.status_code == 400
    assert refusal(r.text).endswith(f"記録日は 紹介 {son} の依頼日（{MEETING_DAY}）以降にしてください。")
    assert 'value="2026-12-01"' in r.text  # what was typed is kept
    r = console.post(url, data={"csrf": token, "choice": "accept", "note": "試験 太郎さんから電話"})
    assert r.status_code == 400 and "個人情報" in refusal(r.text)
    r = console.post(url, data={"csrf": token, "choice": ""})
    assert r.status_code == 400 and "回答を選んでください" in refusal(r.text)
    assert snapshot(conn) == before


def test_every_participation_form_needs_the_csrf_token(referred, console, conn):
    case_id, son, _ = referred
    before = snapshot(conn)
    for url, data in (
        (f"/cases/{case_id}/referrals/{son}/answer", {"choice": "accept"}),
        (f"/cases/{case_id}/followups/1/answer", {"result": "concern"}),
        (f"/cases/{case_id}/referrals", {"member": "1", "place": "shokudo_chuo", "consent": "yes"}),
    ):
        assert console.post(url, data=data).status_code == 403, url
        assert console.post(url, data=data | {"csrf": "0" * 64}).status_code == 403, url
    assert snapshot(conn) == before


def test_a_referral_or_follow_up_of_another_case_is_not_found(referred, console):
    case_id, son, _ = referred
    token = form_token(console.get(f"/cases/{case_id}").text)
    assert console.post(f"/cases/C-0000-0/referrals/{son}/answer", data={"csrf": token}).status_code == 404
    assert console.post(f"/cases/{case_id}/followups/999/answer", data={"csrf": token}).status_code == 404


def test_a_referral_made_from_the_form(referred, console, conn, cfg):
    case_id, _, _ = referred
    token = form_token(console.get(f"/cases/{case_id}").text)
    form = {"csrf": token, "member": "1", "place": "shokudo_chuo", "need": "meals"}
    r = console.post(f"/cases/{case_id}/referrals", data=form)
    assert r.status_code == 400 and "本人の同意を選んでください" in refusal(r.text)
    assert "selected>" + cfg.participation.places["shokudo_chuo"].name in r.text  # the place chosen is kept
    r = console.post(f"/cases/{case_id}/referrals", data=form | {"consent": "no"}, follow_redirects=False)
    assert r.status_code == 303
    place, channel, status, need, actor = conn.execute(
        "SELECT r.place_id, r.channel, r.status, n.need, a.actor FROM referrals r "
        "JOIN participation_needs n ON n.need_id = r.need_id "
        "JOIN audit_log a ON a.case_id = r.case_id AND a.event = 'referral_requested' "
        "WHERE r.case_id = ? ORDER BY r.referral_id DESC, a.seq DESC",
        (case_id,),
    ).fetchone()
    assert (place, channel, status, need, actor) == ("shokudo_chuo", "in_person", "requested", "meals", "山田")
    assert cfg.participation.places["shokudo_chuo"].name in section(console.get(f"/cases/{case_id}").text)
    r = console.post(f"/cases/{case_id}/referrals", data=form | {"consent": "no"})  # the same place again
    assert r.status_code == 400 and "既に" in refusal(r.text)
    r = console.post(f"/cases/{case_id}/referrals", data=form | {"consent": "no", "member": "9"})
    assert r.status_code == 400 and "世帯に「9」はいません" in refusal(r.text)


def test_a_concern_at_follow_up_brings_the_case_back(referred, console, conn, cfg, rules):
    case_id, son, _ = referred
    answer_referral(conn, rules, cfg, son, "accept", DAY, "tester")
    first = Calendar.of(cfg.conference).add(DAY, cfg.participation.settings.followup_business_days[0])
    page = console.get(f"/cases/{case_id}").text
    assert "確認の回答を記録する" not in page  # no follow-up is due yet
    with clock.pinned(morning(first.isoformat())):
        assert login(console).status_code == 303  # two weeks on: a new session
        page = console.get(f"/cases/{case_id}").text
        (lead,) = re.findall(r'action="/cases/[^/]+/followups/(\d+)/answer"', page)[:1]
        assert "定着の確認 " + lead + "（主担当機関" in section(page)
        assert "心配なことがある" in section(page)  # the lead's answers, by label
        url = f"/cases/{case_id}/followups/{lead}/answer"
        r = console.post(url, data={"csrf": form_token(page), "result": "attending"})  # a place's answer
        assert r.status_code == 400 and "選んでください" in refusal(r.text)
        r = console.post(url, data={"csrf": form_token(page), "result": "concern", "note": "最近休みがち"})
        assert r.status_code == 200  # redirected to the case page
        timeline = text_of(r.text.split("<h2>経過", 1)[1])
        assert "心配なことがある" in timeline and "会議に付議" in timeline
        meeting = conn.execute("SELECT meeting_id FROM cases WHERE case_id = ?", (case_id,)).fetchone()[0]
        assert meeting and f'href="/meetings/{meeting}"' in r.text
        r = console.post(url, data={"csrf": form_token(page), "result": "concern"})  # answered already
        assert r.status_code == 400 and "回答を待っていません" in refusal(r.text)
