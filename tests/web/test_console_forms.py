"""The console's record forms: the outcome form (the outcome file's own checks, each problem beside its
field), corrections and notes appended to a case's history, CSRF on every POST, hostile text escaped."""

from __future__ import annotations

import re

import pytest

from engine.casework.handshake import record_contact
from engine.support import clock
from engine.web.session import User, require_coordinator
from tests.helpers.casework import DAY, morning

COORDINATOR = User(name="tanaka", role="coordinator", session_scope="session:test")
HOSTILE = '<script>alert("x")</script>'


@pytest.fixture
def console(app, client):
    app.dependency_overrides[require_coordinator] = lambda: COORDINATOR
    with clock.pinned(morning(DAY.isoformat())):  # the Monday after the meeting of 2026-12-04
        yield client
    app.dependency_overrides.clear()


def csrf(console) -> str:
    return re.search(r'name="csrf" value="([0-9a-f]+)"', console.get("/meetings").text)[1]


def plan_form(console, **changes) -> dict:
    form = {
        "csrf": csrf(console),
        "decision": "plan",
        "lead": "houkatsu_chuo",
        "consent": "pending",
        "role_agency": ["houkatsu_chuo", "", ""],
        "role_action": ["介護サービスの利用調整", "", ""],
        "role_due": ["2026-12-20", "", ""],
    }
    return form | changes


def test_an_outcome_recorded_through_the_form_changes_the_case_as_the_file_would(convened, console):
    url = f"/meetings/{convened.meeting}/cases/{convened.case}/outcome"
    page = console.get(url)
    assert page.status_code == 200 and "会議の結果の記録" in page.text
    r = console.post(url, data=plan_form(console), follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == f"/cases/{convened.case}"
    conn = convened.conn
    assert conn.execute("SELECT status FROM cases WHERE case_id = ?", (convened.case,)).fetchone()[0] == "lead_pending"
    assert conn.execute("SELECT action, due_on FROM case_actions WHERE case_id = ?", (convened.case,)).fetchall() == [
        ("介護サービスの利用調整", "2026-12-20")
    ]
    # the same outcome as a file, for the second case: the same state, actions and outbox
    file = convened.outcome(
        "decision: plan\nlead: houkatsu_chuo\nconsent: pending\nroles:\n"
        "  - {agency: houkatsu_chuo, action: 介護サービスの利用調整, due: 2026-12-20}\n",
        case=convened.cases[1],
    )
    assert file.status == "lead_pending"
    body = lambda c: conn.execute("SELECT body FROM outcomes WHERE case_id = ?", (c,)).fetchone()[0]  # noqa: E731
    assert body(convened.case) == body(convened.cases[1])
    who = conn.execute(
        "SELECT actor, detail FROM audit_log WHERE case_id = ? AND event = 'outcome'", (convened.case,)
    ).fetchone()
    assert who[0] == "tanaka" and '"via": "console"' in who[1]
    assert "記録済み" in console.get(url).text  # recorded once: the form is not offered again


def test_a_refused_outcome_shows_each_problem_beside_its_field_and_writes_nothing(convened, console):
    before = convened.snapshot()
    url = f"/meetings/{convened.meeting}/cases/{convened.case}/outcome"
    form = plan_form(
        console,
        lead="",
        role_agency=["", "houkatsu_chuo", ""],
        role_action=["", "本人の" + _name(convened) + "さんに連絡", ""],
        role_due=["", "2026-12-01", ""],
        review_on="2027-01-10",
    )
    r = console.post(url, data=form)
    assert r.status_code == 400 and "何も記録されていません" in r.text
    problems = dict(re.findall(r'<p class="field-problem" id="problem-([a-z_0-9]+)">([^<]+)</p>', r.text))
    assert "主担当機関を選んでください" in problems["lead"]
    assert "中断のときだけ" in problems["review_on"]
    # decision problems first (the file's order): fix them, and the checks against the meeting follow
    r = console.post(url, data=form | {"lead": "houkatsu_chuo", "review_on": ""})
    problems = dict(re.findall(r'<p class="field-problem" id="problem-([a-z_0-9]+)">([^<]+)</p>', r.text))
    assert "会議の日（2026-12-04）より前" in problems["role_due_1"]  # beside row 2, where it was typed
    assert "個人情報" in problems["role_action_1"]  # the personal-data guard of the outcome file
    assert 'value="2026-12-01"' in r.text  # what was typed is kept
    assert convened.snapshot() == before


def test_the_date_guards_apply_and_a_late_outcome_needs_its_reason(convened, console):
    url = f"/meetings/{convened.meeting}/cases/{convened.case}/outcome"
    r = console.post(url, data=plan_form(console, on="2026-12-01"))
    assert r.status_code == 400 and "結果はその日以降に記録してください" in r.text
    r = console.post(url, data=plan_form(console, on="2027-12-07"))
    assert r.status_code == 400 and "先の日付すぎます" in r.text
    r = console.post(url, data=plan_form(console, on="R8.13.40"))
    assert r.status_code == 400 and "日付として読めません" in r.text


def test_a_post_without_the_csrf_token_is_refused(convened, console):
    url = f"/meetings/{convened.meeting}/cases/{convened.case}/outcome"
    before = convened.snapshot()
    assert console.post(url, data=plan_form(console, csrf="")).status_code == 403
    assert console.post(url, data=plan_form(console, csrf="0" * 64)).status_code == 403
    assert convened.snapshot() == before


def test_hostile_text_typed_in_the_form_is_rendered_escaped(convened, console):
    url = f"/meetings/{convened.meeting}/cases/{convened.case}/outcome"
    r = console.post(url, data=plan_form(console, lead="", reason=HOSTILE, role_action=[HOSTILE, "", ""]))
    assert r.status_code == 400 and HOSTILE not in r.text and "&lt;script&gt;" in r.text


def _name(town) -> str:
    (household,) = town.conn.execute("SELECT household_id FROM cases WHERE case_id = ?", (town.case,)).fetchone()
    return (
        town.conn.execute("SELECT name FROM persons WHERE household_id = ? LIMIT 1", (household,))
        .fetchone()[0]
        .split()[0]
    )


def _contact(town) -> int:
    record_contact(town.conn, town.cfg, town.case, "houkatsu_chuo", DAY, "tester")
    return town.conn.execute(
        "SELECT MAX(seq) FROM audit_log WHERE case_id = ? AND event = 'contact'", (town.case,)
    ).fetchone()[0]


def test_a_correction_appends_and_the_history_shows_both(convened, console):
    seq = _contact(convened)
    page = console.get(f"/cases/{convened.case}/entries/{seq}")
    assert page.status_code == 200 and "日付を訂正する" in page.text
    r = console.post(
        f"/cases/{convened.case}/entries/{seq}/correct",
        data={"csrf": csrf(console), "how": "redate", "on": "2026-12-05", "reason": "日付の入力誤り"},
        follow_redirects=False,
    )
    assert r.status_code == 303
    kept = convened.conn.execute(
        "SELECT event, on_day, actor, detail FROM audit_log WHERE case_id = ? AND seq >= ? ORDER BY seq",
        (convened.case, seq),
    ).fetchall()
    assert [(e, d) for e, d, _, _ in kept] == [("contact", "2026-12-07"), ("corrected", "2026-12-07")]
    assert kept[1][2] == "tanaka" and '"via": "console"' in kept[1][3]
    page = console.get(f"/cases/{convened.case}/entries/{seq}").text
    assert "接触の記録" in page and "記録の訂正" in page and "2026-12-07 から 2026-12-05 に訂正" in page
    case_page = console.get(f"/cases/{convened.case}").text
    assert "日付の入力誤り" in case_page and f'href="/cases/{convened.case}/entries/{seq}"' in case_page


def test_a_decision_is_not_corrected_and_the_page_says_why(convened, console):
    opened = convened.conn.execute("SELECT MIN(seq) FROM audit_log WHERE case_id = ?", (convened.case,)).fetchone()[0]
    page = console.get(f"/cases/{convened.case}/entries/{opened}").text
    assert "訂正できません" in page and "次の会議の結果で改めてください" in page and 'value="redate"' not in page
    before = convened.snapshot()
    r = console.post(
        f"/cases/{convened.case}/entries/{opened}/correct",
        data={"csrf": csrf(console), "how": "withdraw", "reason": "誤り"},
    )
    assert r.status_code == 400 and convened.snapshot() == before


def test_a_note_is_kept_on_the_entry_and_one_with_personal_data_is_refused(convened, console):
    seq = _contact(convened)
    before = convened.snapshot()
    url = f"/cases/{convened.case}/entries/{seq}/note"
    r = console.post(url, data={"csrf": csrf(console), "text": _name(convened) + "さん宅を訪問"})
    assert r.status_code == 400 and "個人情報" in r.text and convened.snapshot() == before
    r = console.post(url, data={"csrf": csrf(console), "text": "本人と面談、落ち着いている"}, follow_redirects=False)
    assert r.status_code == 303
    note = convened.conn.execute(
        "SELECT actor, detail FROM audit_log WHERE case_id = ? AND event = 'note'", (convened.case,)
    ).fetchone()
    assert note[0] == "tanaka" and f'"about": {seq}' in note[1]
    page = console.get(f"/cases/{convened.case}/entries/{seq}").text
    assert "接触の記録" in page and "本人と面談、落ち着いている" in page


def test_notes_and_corrections_need_the_csrf_token_and_escape_what_they_show(convened, console):
    seq = _contact(convened)
    before = convened.snapshot()
    assert console.post(f"/cases/{convened.case}/entries/{seq}/note", data={"text": "メモ"}).status_code == 403
    r = console.post(
        f"/cases/{convened.case}/entries/{seq}/correct", data={"how": "withdraw", "reason": "誤り", "csrf": "x"}
    )
    assert r.status_code == 403 and convened.snapshot() == before
    r = console.post(
        f"/cases/{convened.case}/entries/{seq}/note",
        data={"csrf": csrf(console), "text": HOSTILE},
        follow_redirects=False,
    )
    assert r.status_code == 303
    page = console.get(f"/cases/{convened.case}/entries/{seq}").text
    assert HOSTILE not in page and "&lt;script&gt;" in page
    assert console.get(f"/cases/{convened.case}/entries/999999").status_code == 404


def test_participation_rows_of_the_outcome_form_refer_as_the_file_would_and_problems_sit_beside_their_cell(
    convened, console
):
    """参加支援 in the form: a need and a place per member (the file's `participation:`), checked by
    the same functions; a problem is shown beside the cell it is about, in Japanese."""
    url = f"/meetings/{convened.meeting}/cases/{convened.case}/outcome"
    page = console.get(url)
    assert "参加支援" in page.text and "世帯員2（50代・子）" in page.text and "人とのつながり・居場所" in page.text
    rows = dict(
        part_member=["2", "1", ""],
        part_need=["social_contact", "daily_activity", ""],
        part_place=["ibasho_chuo", "", ""],
        part_consent=["no", "", ""],
        part_introduced_by=["", "", ""],
        part_reason=["", "", ""],
    )
    before = convened.snapshot()
    r = console.post(url, data=plan_form(console, **rows))
    assert r.status_code == 400
    problems = dict(re.findall(r'<p class="field-problem" id="problem-([a-z_0-9]+)">([^<]+)</p>', r.text))
    assert "本人の同意があって初めて受け入れます" in problems["part_consent_0"]
    assert convened.snapshot() == before
    fixed = rows | {"part_consent": ["yes", "", ""], "part_reason": ["", "本人が当面は自宅で過ごすことを希望", ""]}
    r = console.post(url, data=plan_form(console, **fixed), follow_redirects=False)
    assert r.status_code == 303
    conn = convened.conn
    assert conn.execute(
        "SELECT place_id, consent, channel, status FROM referrals WHERE case_id = ?", (convened.case,)
    ).fetchall() == [("ibasho_chuo", 1, "place", "requested")]
    assert conn.execute(
        "SELECT need, status, reason FROM participation_needs WHERE case_id = ? ORDER BY need_id", (convened.case,)
    ).fetchall() == [
        ("social_contact", "referred", None),
        ("daily_activity", "settled", "本人が当面は自宅で過ごすことを希望"),
    ]
