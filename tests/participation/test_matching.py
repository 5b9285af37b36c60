"""参加支援's proposals against a hand-made 8050 household in 中央 (a father of 82 in need of care,
a son of 52 without work or income: hikikomori) and a small directory written for each test."""

from __future__ import annotations

from datetime import timedelta

import pytest

from engine.participation.matching import (
    UnknownCase,
    members_concerned,
    next_place,
    propose,
    recorded_needs,
)
from engine.participation.place_day import capacity_now
from tests.helpers.casework import open_cases
from tests.helpers.matching import FRESH, STALE, config_with, place
from tests.helpers.town import CONSENT, ON


@pytest.fixture
def case(conn, workspace, rules, cfg):
    (case_id, _), *_ = open_cases(conn, workspace, rules, cfg)
    return case_id


def son_of(conn, case_id):
    return conn.execute(
        "SELECT p.person_id FROM persons p JOIN cases c ON c.household_id = p.household_id "
        "WHERE c.case_id = ? AND p.relationship = '子'",
        (case_id,),
    ).fetchone()[0]


def places_for(found, label_start: str, category: str):
    (mp,) = [m for m in found if m.member.label.startswith(label_start)]
    (cat,) = [c for c in mp.categories if c.category == category]
    return cat.places


def son_ibasho(conn, cfg, case_id, rules, on=ON, **kw):
    return {p.place_id: p for p in places_for(propose(conn, cfg, case_id, on, rules=rules, **kw), "世帯員2", "ibasho")}


def criterion(p, start: str):
    (c,) = [c for c in p.criteria if c.text.startswith(start)]
    return c


def test_members_concerned_are_labelled_with_their_indicators_and_the_flags(conn, case, rules):
    members = members_concerned(conn, case, ON, rules=rules)
    assert [m.label for m in members] == ["世帯員1（80代・世帯主）", "世帯員2（50代・子）"]
    father, son = members
    assert (father.age, son.age) == (82, 52)
    assert "elder_needing_care" in father.indicators and "hikikomori" not in father.indicators
    assert {"hikikomori", "withdrawn_adult"} <= set(son.indicators)
    assert father.flags == son.flags and "8050" in son.flags
    assert not father.consent and not son.consent


def test_an_unknown_case_is_refused_in_japanese(conn, case, rules, cfg):
    with pytest.raises(UnknownCase, match="事案 C-NONE はありません"):
        propose(conn, cfg, "C-NONE", ON, rules=rules)


def test_rules_fire_by_indicator_flag_and_need_with_their_ages_and_reason(conn, case, rules, tmp_path):
    _, cfg = config_with(tmp_path, rules, [place("ib1"), place("sa1", "salon"), place("vo1", "volunteer")])
    found = propose(conn, cfg, case, ON, rules=rules)
    father, son = found
    assert [c.category for c in father.categories] == ["salon"]  # the 8050 flag, 65 and over
    assert "世帯の課題「8050世帯" in father.categories[0].rules[0].because[0]
    assert father.categories[0].places[0].reasons == ["通いの場で日中の活動と見守りの目を増やすため"]
    assert [c.category for c in son.categories] == ["ibasho"]  # hikikomori; the salon rule is for 65 and over
    assert son.categories[0].rules[0].because == ["本人の状態「6か月以上 就労・就学・収入の記録がない15〜64歳」"]
    # a need recorded at the conference fires its rule too (from the database, or given)
    pid = son_of(conn, case)
    conn.execute(
        "INSERT INTO participation_needs (case_id, person_id, need, recorded_on) VALUES (?, ?, 'role', ?)",
        (case, pid, ON.isoformat()),
    )
    assert recorded_needs(conn, case) == {pid: ["role"]}
    son = propose(conn, cfg, case, ON, rules=rules, person_id=pid)
    assert [m.member.person_id for m in son] == [pid]
    assert [c.category for c in son[0].categories] == ["ibasho", "volunteer"]
    assert son[0].categories[1].rules[0].because == ["会議で記録した必要「役割・社会貢献の場」"]
    given = propose(conn, cfg, case, ON, rules=rules, person_id=pid, needs={pid: []})
    assert [c.category for c in given[0].categories] == ["ibasho"]  # `needs` replaces the recorded ones


@pytest.mark.parametrize(
    ("ages", "eligible"),
    [
        ({"min": 15, "max": 52}, True),  # exactly the maximum
        ({"min": 15, "max": 51}, False),  # one over
        ({"min": 52}, True),  # exactly the minimum
        ({"min": 53}, False),  # one under
    ],
)
def test_age_edges(conn, case, rules, tmp_path, ages, eligible):
    _, cfg = config_with(tmp_path, rules, [place("ib1", ages=ages)])
    p = son_ibasho(conn, cfg, case, rules)["ib1"]
    assert p.eligible is eligible
    line = criterion(p, "対象年齢")
    assert line.ok is eligible and "本人 52歳" in line.text
    assert line.line().startswith("✔" if eligible else "✘")


def test_whom_a_place_is_for_is_read_against_needs_and_indicators(conn, case, rules, tmp_path):
    places = [
        place("ib_need", needs=("social_contact",)),  # the need the fired rule names
        place("ib_other", needs=("learning",)),
        place("ib_ind", indicators=("hikikomori",)),
        place("ib_any"),
    ]
    _, cfg = config_with(tmp_path, rules, places)
    got = son_ibasho(conn, cfg, case, rules)
    assert got["ib_need"].eligible and got["ib_ind"].eligible and got["ib_any"].eligible
    assert not got["ib_other"].eligible
    assert criterion(got["ib_other"], "対象:").line().startswith("✘ 対象: 学習の支えの方が対象")
    assert criterion(got["ib_need"], "対象:").text == "対象: 人とのつながり・居場所に当たる"


def test_a_full_place_says_so_and_ranks_after_one_with_room(conn, case, rules, tmp_path):
    _, cfg = config_with(tmp_path, rules, [place("ib_a_full", available=0), place("ib_b")])
    got = son_ibasho(conn, cfg, case, rules)
    full = got["ib_a_full"]
    assert full.capacity_now == 0
    assert criterion(full, "定員").line().startswith("✘ 定員: 空きなし（空き待ちの可能性）")
    assert list(got) == ["ib_b", "ib_a_full"]


def test_capacity_now_counts_acceptances_since_it_was_counted(conn, case, rules, tmp_path):
    _, cfg = config_with(tmp_path, rules, [place("ib1", available=2, updated_on=FRESH)])
    pid = son_of(conn, case)
    for answered in (FRESH - timedelta(days=1), FRESH, FRESH + timedelta(days=3)):
        add_referral(conn, case, pid, "ib1", "accepted", answered)
    assert capacity_now(conn, cfg.participation.places["ib1"]) == 0  # the one before the count is in it
    p = son_ibasho(conn, cfg, case, rules)["ib1"]
    assert not criterion(p, "定員").ok


def test_a_stale_place_is_marked_and_ranks_after_a_fresh_one(conn, case, rules, tmp_path):
    _, cfg = config_with(tmp_path, rules, [place("ib_a_old", assured_on=STALE), place("ib_b")])
    got = son_ibasho(conn, cfg, case, rules)
    old = got["ib_a_old"]
    assert not old.fresh
    (line,) = [c for c in old.criteria if c.text.startswith("情報が古い")]
    assert line.line().startswith("✘ 情報が古い（最終確認 令和")
    assert list(got) == ["ib_b", "ib_a_old"]


def test_consent_required_without_consent_fails_and_with_consent_holds(conn, case, rules, tmp_path):
    _, cfg = config_with(tmp_path, rules, [place("ib_a_consent", consent_required=True), place("ib_b_dropin")])
    got = son_ibasho(conn, cfg, case, rules)
    assert not got["ib_a_consent"].consent_ok and not got["ib_a_consent"].suitable
    assert criterion(got["ib_a_consent"], "本人同意").line().startswith("✘ 本人同意: 受入れに本人の同意が必要")
    assert got["ib_b_dropin"].consent_ok
    assert criterion(got["ib_b_dropin"], "本人同意").line().startswith("✔ 本人同意: 受入れに同意書は不要")
    assert list(got) == ["ib_b_dropin", "ib_a_consent"]
    # the son's consent is recorded: the place that needs it is suitable, and ranks first by its id
    pid = son_of(conn, case)
    code, value, start = CONSENT
    conn.execute("INSERT INTO records VALUES (?,?,?,?,?,?,?)", (f"{pid}|t|consent", pid, "t", code, value, start, None))
    got = son_ibasho(conn, cfg, case, rules)
    assert got["ib_a_consent"].consent_ok
    assert criterion(got["ib_a_consent"], "本人同意").line() == "✔ 本人同意: 同意の記録あり"
    assert list(got) == ["ib_a_consent", "ib_b_dropin"]
    # a consent that ended before the day does not count
    conn.execute(
        "UPDATE records SET end_date = ? WHERE record_key = ?",
        ((ON - timedelta(days=1)).isoformat(), f"{pid}|t|consent"),
    )
    assert not son_ibasho(conn, cfg, case, rules)["ib_a_consent"].consent_ok


def test_a_place_not_active_is_never_proposed(conn, case, rules, tmp_path):
    places = [place("ib_closed", status="temporarily_closed"), place("ib_gone", status="inactive"), place("ib1")]
    _, cfg = config_with(tmp_path, rules, places)
    assert list(son_ibasho(conn, cfg, case, rules)) == ["ib1"]
    assert list(son_ibasho(conn, cfg, case, rules, exclude_places={"ib1"})) == []


def test_area_all_and_other(conn, case, rules, tmp_path):
    _, cfg = config_with(tmp_path, rules, [place("ib_a_minato", area="港"), place("ib_b_all", area="全域")])
    got = son_ibasho(conn, cfg, case, rules)
    assert not got["ib_a_minato"].in_area
    assert criterion(got["ib_a_minato"], "地区").line() == "✘ 地区: 港（世帯は中央、地区外）"
    assert criterion(got["ib_b_all"], "地区").line() == "✔ 地区: 全域（世帯は中央）"
    assert list(got) == ["ib_b_all", "ib_a_minato"]


def test_schedule_names_the_next_day_open_in_wareki(conn, case, rules, tmp_path):
    _, cfg = config_with(tmp_path, rules, [place("ib1", rrule="FREQ=MONTHLY;BYDAY=2MO")])
    p = son_ibasho(conn, cfg, case, rules)["ib1"]
    nxt = cfg.participation.places["ib1"].schedule.next_on(ON)
    assert p.next_open == nxt and nxt.weekday() == 0 and 8 <= nxt.day <= 14 and nxt >= ON
    from engine.support.dates import wareki_with_weekday

    assert criterion(p, "日程").line() == f"✔ 日程: 毎月第2月曜 13:00〜16:00（次回 {wareki_with_weekday(nxt)}）"


def add_referral(conn, case_id, pid, place_id, status, answered=None):
    """A referral row as the referral loop leaves it (created requested, then moved)."""
    cur = conn.execute(
        "INSERT INTO referrals (case_id, person_id, place_id, introduced_by, consent, channel, status, requested_on, "
        "answer_due) VALUES (?, ?, ?, 'houkatsu_chuo', 1, 'place', 'requested', ?, ?)",
        (case_id, pid, place_id, FRESH.isoformat(), FRESH.isoformat()),
    )
    rid = cur.lastrowid
    path = {
        "requested": [],
        "accepted": ["accepted"],
        "attending": ["accepted", "attending"],
        "ended": ["accepted", "ended"],
        "declined": ["declined"],
        "waitlisted": ["waitlisted"],
    }[status]
    for step in path:
        conn.execute(
            "UPDATE referrals SET status = ?, answered_on = ? WHERE referral_id = ?",
            (step, (answered or FRESH).isoformat(), rid),
        )
    conn.commit()
    return rid


def test_the_places_record_and_ranking_by_acceptance(conn, case, rules, tmp_path):
    _, cfg = config_with(tmp_path, rules, [place("ib_a", available=9), place("ib_b", available=9), place("ib_c")])
    pid = son_of(conn, case)
    for status in ("declined", "declined", "accepted"):
        add_referral(conn, "C-OTHER", pid, "ib_a", status, FRESH - timedelta(days=10))
    for status in ("attending", "ended", "declined", "requested"):
        add_referral(conn, "C-OTHER", pid, "ib_b", status, FRESH - timedelta(days=10))
    got = son_ibasho(conn, cfg, case, rules)
    a, b, c = got["ib_a"], got["ib_b"], got["ib_c"]
    assert (a.record.referred, a.record.answered, a.record.accepted, a.record.attending) == (3, 3, 1, 0)
    assert (b.record.referred, b.record.answered, b.record.accepted, b.record.attending) == (4, 3, 2, 1)
    assert criterion(b, "これまで").text == "これまでの紹介 4件、受入れ 2件、参加継続 1件"
    assert criterion(c, "紹介の実績").text == "紹介の実績なし"
    assert list(got) == ["ib_b", "ib_a", "ib_c"]  # 2/3, then 1/3, then no record


def test_ranking_order_puts_suitable_then_room_then_fresh(conn, case, rules, tmp_path):
    places = [
        place("a_outside", area="港"),  # not in the area
        place("b_full", available=0),
        place("c_stale", assured_on=STALE),
        place("d_young", ages={"max": 30}),  # not eligible
        place("e_good"),
        place("f_full_stale", available=0, assured_on=STALE),
    ]
    _, cfg = config_with(tmp_path, rules, places)
    assert list(son_ibasho(conn, cfg, case, rules)) == [
        "e_good",
        "c_stale",
        "b_full",
        "f_full_stale",
        "a_outside",
        "d_young",
    ]


def test_next_place_skips_places_tried_and_unsuitable(conn, case, rules, tmp_path):
    places = [place("ib_a"), place("ib_b", available=0), place("ib_c", area="港"), place("vo_a", "volunteer")]
    _, cfg = config_with(tmp_path, rules, places)
    pid = son_of(conn, case)
    assert next_place(conn, cfg, case, pid, "ibasho", ON, rules=rules).place_id == "ib_a"
    assert next_place(conn, cfg, case, pid, "ibasho", ON, ()).place_id == "ib_a"  # as the referral loop calls it
    add_referral(conn, case, pid, "ib_a", "declined")
    assert next_place(conn, cfg, case, pid, "居場所", ON, rules=rules).place_id == "ib_b"  # full, yet suitable
    assert next_place(conn, cfg, case, pid, "ibasho", ON, ("ib_b",), rules=rules) is None  # 港 is not suitable
    # by a need: the categories of the rules that name it
    assert next_place(conn, cfg, case, pid, "role", ON, rules=rules).place_id == "vo_a"
