"""The outcome file (outcome.yaml) is checked before anything is recorded: every problem names file,
line and field; the fields each decision needs; dates; a file that is not a mapping."""

from __future__ import annotations

import pytest

from engine.casework.outcome import OutcomeInvalid
from tests.helpers.casework import DAY, MEETING_DAY, ROLE, decide, open_cases

INVALID = {
    # name: (text, line, field, message fragment, suggestion fragment)
    "unknown-lead": (
        "decision: plan\nlead: houkatsu_chu\n" + ROLE,
        2,
        "lead",
        "unknown agency 'houkatsu_chu'",
        "did you mean 'houkatsu_chuo'",
    ),
    "unknown-role-agency": (
        "decision: plan\nlead: houkatsu_chuo\nroles:\n  - {agency: kodomo_centre, action: 見守り, due: 2026-12-20}\n",
        4,
        "roles.agency",
        "unknown agency 'kodomo_centre'",
        "did you mean 'kodomo_center'",
    ),
    "unknown-field": (
        "decision: plan\nlead: houkatsu_chuo\nresaon: 理由\n" + ROLE,
        3,
        "resaon",
        "unknown field 'resaon'",
        "did you mean 'reason'",
    ),
    "unknown-decision": ("decision: finish\n", 1, "decision", "finish", None),
    "bad-date-text": (
        "decision: plan\nlead: houkatsu_chuo\nroles:\n  - {agency: houkatsu_chuo, action: 調整, due: tomorrow}\n",
        4,
        "roles.due",
        "not a recognised date",
        None,
    ),
    "bad-date-quoted": (
        "decision: plan\nlead: houkatsu_chuo\n" + ROLE + 'next_evaluation: "2027-02-30"\n',
        5,
        "next_evaluation",
        "no such day",
        None,
    ),
    "due-before-meeting": (
        "decision: plan\nlead: houkatsu_chuo\nroles:\n  - {agency: houkatsu_chuo, action: 調整, due: 2026-12-01}\n",
        4,
        "roles.due",
        "before the meeting (2026-12-04)",
        None,
    ),
    "evaluation-not-after-meeting": (
        "decision: plan\nlead: houkatsu_chuo\n" + ROLE + "next_evaluation: 2026-12-04\n",
        5,
        "next_evaluation",
        "not after the meeting",
        None,
    ),
    "non-member-lead": (
        "decision: plan\nlead: soudan_jigyosho_hikari\n" + ROLE,
        2,
        "lead",
        "not a registered member of the 支援会議",
        "member agency",
    ),
    "name-in-reason": (
        "decision: suspend\nreview_on: 2027-02-01\nreason: 試験 太郎さんが入院\n",
        3,
        "reason",
        "personal data",
        "本人",
    ),
    "surname-in-reason": (
        "decision: suspend\nreview_on: 2027-02-01\nreason: 試験さんが入院\n",
        3,
        "reason",
        "personal data",
        None,
    ),
    "kana-in-reason": (
        "decision: suspend\nreview_on: 2027-02-01\nreason: シケン タロウ氏が入院\n",
        3,
        "reason",
        "personal data",
        None,
    ),
    "address-in-reason": ("decision: close\nreason: テスト町1-1から転居\n", 2, "reason", "personal data", None),
    "birth-in-reason": (
        "decision: close\nreason: 1944年4月1日生まれの本人が施設入所\n",
        2,
        "reason",
        "personal data",
        None,
    ),
    "wareki-birth-in-reason": ("decision: close\nreason: 昭和19年4月1日生の本人\n", 2, "reason", "personal data", None),
    "name-in-action": (
        "decision: plan\nlead: houkatsu_chuo\nroles:\n  - {agency: houkatsu_chuo, action: 試験太郎宅を訪問, due: 2026-12-20}\n",
        4,
        "roles.action",
        "personal data",
        None,
    ),
}


@pytest.mark.parametrize("name", list(INVALID))
def test_an_invalid_outcome_file_names_file_line_and_field_and_records_nothing(convened, name):
    text, line, field, message, suggestion = INVALID[name]
    before = convened.snapshot()
    with pytest.raises(OutcomeInvalid) as err:
        convened.outcome(text, on=DAY)
    problems = err.value.problems
    match = [p for p in problems if p.field == field and message in p.message]
    assert match, [str(p) for p in problems]
    p = match[0]
    assert p.file == str(convened.tmp / "outcome.yaml") and p.line == line
    if suggestion:
        assert suggestion in (p.suggestion or "")
    assert f"{p.file}:{line}" in str(p) and f"[{field}]" in str(p)
    assert convened.snapshot() == before


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("decision: plan\nlead: houkatsu_chuo\n", "roles"),
        ("decision: plan\n" + ROLE, "lead"),
        ("decision: suspend\nreason: 入院\n", "review_on"),
        ("decision: suspend\nreview_on: 2027-02-01\n", "reason"),
        ("decision: close\nreview_on: 2027-02-01\nreason: 入院\n", "review_on"),
    ],
    ids=[
        "plan-without-roles",
        "plan-without-lead",
        "suspend-without-review_on",
        "suspend-without-reason",
        "review_on-not-for-close",
    ],
)
def test_decision_dependent_fields_are_required_and_nothing_is_recorded(convened, text, key):
    before = convened.snapshot()
    with pytest.raises(OutcomeInvalid) as err:
        convened.outcome(text)
    (p,) = err.value.problems
    assert p.file == str(convened.tmp / "outcome.yaml") and p.line >= 1 and f"`{key}:`" in p.message
    assert convened.snapshot() == before


@pytest.mark.parametrize(
    ("text", "key"),
    [("decision: plan\nlead: houkatsu_chuo\n", "roles"), ("decision: suspend\nreason: 入院\n", "review_on")],
    ids=["plan-without-roles", "suspend-without-review_on"],
)
def test_decision_dependent_problems_name_their_field(convened, text, key):
    with pytest.raises(OutcomeInvalid) as err:
        convened.outcome(text)
    assert [p.field for p in err.value.problems] == [key]


def test_an_unquoted_impossible_date_is_reported_once_with_its_field(convened):
    before = convened.snapshot()
    with pytest.raises(OutcomeInvalid) as err:
        convened.outcome(
            "decision: plan\nlead: houkatsu_chuo\nroles:\n  - {agency: houkatsu_chuo, action: 調整, due: 2026-02-30}\n"
        )
    assert convened.snapshot() == before
    problems = err.value.problems
    assert all(p.field == "roles.due" and p.line == 4 for p in problems), [str(p) for p in problems]
    assert not any("got None" in p.message for p in problems)


@pytest.mark.regression("issue 4: the case lifecycle used from the CLI")
def test_an_outcome_file_that_is_a_list_says_how_to_fix_it(conn, workspace, rules, cfg):
    ((cid, mid),) = open_cases(conn, workspace, rules, cfg)
    with pytest.raises(OutcomeInvalid) as err:
        decide(conn, workspace, rules, cfg, cid, mid, MEETING_DAY, "- decision: plan\n  lead: houkatsu_chuo\n")
    text = "\n".join(str(p) for p in err.value.problems)
    assert "instance of Outcome" not in text and "decision:" in text, text
