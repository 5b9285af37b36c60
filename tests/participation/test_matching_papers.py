"""「参加支援の候補」 on the papers: on the agenda of the case's proposed lead and on the coordinator's
copy only; never on another agency's agenda, never for a DV-locked case."""

from __future__ import annotations

from engine.papers.agenda import meeting_papers, render_agenda, render_coordinator
from engine.papers.environment import environment
from engine.participation.matching import propose
from tests.helpers.conference import case_of, cycle
from tests.helpers.matching import config_with, place
from tests.helpers.town import ON

HEAD = "参加支援の候補"


def test_the_lead_alone_gets_the_proposals_and_the_coordinator_too(town, workspace, rules, cfg, tmp_path):
    cycle(town, workspace, rules, cfg)
    case = case_of(town, "H8050")
    _, mine = config_with(tmp_path, rules, [place("ib_a"), place("ib_b", available=0), place("sa_a", "salon")])
    papers = meeting_papers(town, rules, mine, case["meeting"], ON)
    by_agency = {a.agency_id: a for a in papers.agendas}
    lead = by_agency[case["lead"]]
    (item,) = [c for c in lead.cases if c.case_id == case["case_id"]]
    assert [(c.member, c.category) for c in item.participation] == [
        ("世帯員1（80代・世帯主）", "サロン・通いの場"),
        ("世帯員2（50代・子）", "居場所"),
    ]
    assert item.participation[1].places == [
        "場所ib_a — 中央、毎週火曜 13:00〜16:00、空き2人",
        "場所ib_b — 中央、毎週火曜 13:00〜16:00、空きなし（空き待ちの可能性）",
    ]
    assert item.participation[1].reason == "家の外に安心して過ごせる場所をつくるため"
    text = render_agenda(environment(mine), lead)["text"]
    assert f"  {HEAD}（" in text and "      1. 場所ib_a — 中央、毎週火曜 13:00〜16:00、空き2人" in text
    others = [a for a_id, a in by_agency.items() if a_id != case["lead"]]
    assert others, "the case has other agencies"
    for a in others:
        assert all(not c.participation for c in a.cases)
        assert HEAD not in render_agenda(environment(mine), a)["text"]
    (mine_case,) = [c for c in papers.coordinator["cases"] if c["case_id"] == case["case_id"]]
    assert [c["category"] for c in mine_case["participation"]] == ["サロン・通いの場", "居場所"]
    assert "場所ib_a" in render_coordinator(environment(mine), papers)


def test_top_three_places_only(town, workspace, rules, cfg, tmp_path):
    cycle(town, workspace, rules, cfg)
    case = case_of(town, "H8050")
    _, mine = config_with(tmp_path, rules, [place(f"ib_{i}") for i in range(5)])
    papers = meeting_papers(town, rules, mine, case["meeting"], ON)
    (lead,) = [a for a in papers.agendas if a.agency_id == case["lead"]]
    (item,) = [c for c in lead.cases if c.case_id == case["case_id"]]
    assert [p.split(" — ")[0] for p in item.participation[-1].places] == ["場所ib_0", "場所ib_1", "場所ib_2"]


def test_never_for_a_dv_locked_case(town, workspace, rules, cfg, tmp_path):
    cycle(town, workspace, rules, cfg)
    dv = case_of(town, "HDV")
    # a place for everyone, so that a rule firing for the DV household would have something to show
    match_rules = {
        "match_rules": [
            {"id": "anyone", "when": {"flags": list(rules.flags)}, "categories": ["ibasho"], "reason": "テスト"}
        ]
    }
    _, mine = config_with(tmp_path, rules, [place("ib_a", area="全域")], match_rules)
    papers = meeting_papers(town, rules, mine, dv["meeting"], ON)
    (coordinator_case,) = [c for c in papers.coordinator["cases"] if c["case_id"] == dv["case_id"]]
    assert coordinator_case["locked"] and coordinator_case["participation"] == []
    for a in papers.agendas:
        assert all(c.case_id != dv["case_id"] for c in a.cases)
    # the matching itself does propose the place for the case: only the papers leave it out
    found = propose(town, mine, dv["case_id"], ON, rules=rules)
    assert any(c.places for m in found for c in m.categories)


def test_the_papers_propose_the_same_places_as_the_explanation_without_its_lines(town, workspace, rules, cfg, tmp_path):
    """The papers show one line a place, so they propose without the criteria's lines (and each
    place's state is worked out once per night): the same members, categories, places, order and
    one-line summaries as `engine match` explains."""
    from engine.participation.place_day import PlaceDays

    cycle(town, workspace, rules, cfg)
    case = case_of(town, "H8050")
    _, mine = config_with(tmp_path, rules, [place("ib_a"), place("ib_b", available=0), place("sa_a", "salon")])
    full = propose(town, mine, case["case_id"], ON, rules=rules)
    days = PlaceDays(town, mine)
    for _ in range(2):  # the second run reads the places' state from `days`
        light = propose(town, mine, case["case_id"], ON, rules=rules, days=days, explain=False)

        def shape(proposals):
            return [
                (mp.member.person_id, c.category, [(p.place_id, p.one_line(), p.suitable) for p in c.places])
                for mp in proposals
                for c in mp.categories
            ]

        assert shape(light) == shape(full) and any(places for *_, places in shape(full))
        assert all(p.criteria for mp in full for c in mp.categories for p in c.places)
        assert not any(p.criteria for mp in light for c in mp.categories for p in c.places)


def test_the_papers_light_proposals_with_the_household_given_match_the_full_ones(town, workspace, rules, cfg, tmp_path):
    """The papers give the household they loaded for the meeting's day and evaluate only the
    indicators that can decide a proposal: the same proposals as the full explanation; a member's
    indicators are then only those; a household of another case is refused."""
    import pytest

    from engine.participation.matching import deciding_indicators, members_concerned
    from engine.rules.facts import load_households

    cycle(town, workspace, rules, cfg)
    case = case_of(town, "H8050")
    # ib_0 is for withdrawn adults: an indicator no matching rule names, which must still be evaluated
    only_for = place("ib_0", indicators=("withdrawn_adult",))
    _, mine = config_with(
        tmp_path, rules, [only_for, place("ib_a"), place("ib_b", available=0), place("sa_a", "salon")]
    )
    (hh,) = load_households(town, ["H8050"], ON)
    full = propose(town, mine, case["case_id"], ON, rules=rules)
    light = propose(town, mine, case["case_id"], ON, rules=rules, explain=False, household=hh)

    def shape(proposals):
        return [
            (
                mp.member.label,
                c.category,
                [r.rule_id for r in c.rules],
                [(p.place_id, p.one_line(), p.suitable) for p in c.places],
            )
            for mp in proposals
            for c in mp.categories
        ]

    assert shape(light) == shape(full) and shape(full)
    assert ("ib_0", True) in [(p.place_id, p.suitable) for mp in light for c in mp.categories for p in c.places]
    # `top`: the same ranking, only its first places proposed
    for n in (1, 2):
        first = propose(town, mine, case["case_id"], ON, rules=rules, explain=False, household=hh, top=n)
        assert [(m, c, r, places[:n]) for m, c, r, places in shape(full)] == shape(first)
    deciding = deciding_indicators(mine)
    assert all(set(mp.member.indicators) <= deciding for mp in light)
    assert any(set(mp.member.indicators) - deciding for mp in full)  # the explanation shows every indicator
    assert [set(m.indicators) & deciding for m in (mp.member for mp in full)] == [
        set(mp.member.indicators) for mp in light
    ]
    (other,) = load_households(
        town, [h for (h,) in town.execute("SELECT household_id FROM households") if h != "H8050"][:1], ON
    )
    with pytest.raises(ValueError, match="given for case"):
        members_concerned(town, case["case_id"], ON, rules=rules, household=other)


def test_a_places_state_is_worked_out_per_day_where_it_depends_on_the_day(town, workspace, rules, cfg, tmp_path):
    """PlaceDays counts a place's free places and record once, and its next opening and freshness
    for each day: what it gives equals a new PlaceDays for every day."""
    from datetime import timedelta

    from engine.participation.place_day import PlaceDays

    cycle(town, workspace, rules, cfg)
    _, mine = config_with(tmp_path, rules, [place("ib_a"), place("ib_b", available=0)])
    days = PlaceDays(town, mine)
    seen = set()
    for p in mine.participation.places.values():
        for offset in range(0, 400, 3):
            day = ON + timedelta(days=offset)
            got = days.of(p, day)
            assert got == PlaceDays(town, mine).of(p, day)
            seen.add((got.next_open, got.fresh))
    assert len({n for n, _ in seen}) > 10 and {f for _, f in seen} == {True, False}


def test_the_papers_propose_as_of_the_day_of_the_meeting(town, workspace, rules, cfg, tmp_path):
    """The proposals are for the day of the meeting: the son's earned income starting after the
    night but before the meeting ends his 6 months without work, so the papers propose him no
    居場所 (asked for the night's day, the same proposal would still list one)."""
    from datetime import date, timedelta

    cycle(town, workspace, rules, cfg)
    case = case_of(town, "H8050")
    _, mine = config_with(tmp_path, rules, [place("ib_a"), place("sa_a", "salon")])
    (held_on,) = town.execute("SELECT held_on FROM meetings WHERE meeting_id = ?", (case["meeting"],)).fetchone()
    start = date.fromisoformat(held_on) - timedelta(days=1)
    assert start > ON
    (son,) = town.execute(
        "SELECT person_id FROM persons WHERE household_id = 'H8050' AND relationship = '子'"
    ).fetchone()
    town.execute(
        "INSERT INTO records VALUES (?,?,?,?,?,?,?)",
        (f"{son}|t|income", son, "t", "earned_income", "120000", start.isoformat(), None),
    )
    town.commit()
    asked_today = propose(town, mine, case["case_id"], ON, rules=rules, explain=False)
    assert any(c.category == "ibasho" for mp in asked_today for c in mp.categories if mp.member.person_id == son)
    papers = meeting_papers(town, rules, mine, case["meeting"], ON)
    (item,) = [
        c for a in papers.agendas if a.agency_id == case["lead"] for c in a.cases if c.case_id == case["case_id"]
    ]
    assert [(c.member, c.category) for c in item.participation] == [("世帯員1（80代・世帯主）", "サロン・通いの場")]
