"""rules_diff on a hand-made town: households gained and lost with their explanation, the cases a
lost flag leaves with nothing open, and nothing written."""

from __future__ import annotations

from engine.impact.rules_diff import rules_diff
from engine.rules.loader import load_rules
from engine.store.db import connect
from tests.helpers.town import ON
from tests.impact.town import LOWER_TO_2, RAISE_TO_4, arrears_town, candidate, fingerprint, screened


def test_lowering_the_arrears_threshold_adds_the_household_in_arrears_of_two_months(conn, workspace, rules, tmp_path):
    arrears_town(conn)
    screened(conn, workspace, rules)
    lowered = load_rules(candidate(tmp_path, LOWER_TO_2) / "rules")
    conn.close()
    before = fingerprint(workspace)
    ro = connect(workspace, readonly=True)
    d = rules_diff(ro, rules, lowered)
    ro.close()
    assert fingerprint(workspace) == before  # nothing written
    assert d.on == ON  # the last screening date
    assert [f.rule_id for f in d.flags] == ["multiple_arrears"]
    (f,) = d.flags
    assert (f.change, f.current_count, f.candidate_count) == ("changed", 1, 2)
    assert [h.household_id for h in f.gained] == ["HA2"] and f.lost == []
    new, old = f.gained[0].explanation
    assert new.startswith("変更後: ✔ 該当") and "2か月以上" in new and "2種類" in new
    assert old.startswith("現在: ✘ 非該当") and "3か月以上" in old and "0種類" in old
    assert d.orphaned_cases == [] and d.unchanged_rules_pending == 0


def test_a_flag_lost_by_the_only_flagged_household_of_a_case_leaves_the_case_with_nothing_open(
    conn, workspace, rules, cfg, tmp_path
):
    arrears_town(conn)
    screened(conn, workspace, rules, cfg)
    case_id = conn.execute("SELECT case_id FROM cases WHERE household_id = 'HA3'").fetchone()[0]
    raised = load_rules(candidate(tmp_path, RAISE_TO_4) / "rules")
    d = rules_diff(conn, rules, raised)
    (f,) = d.flags
    assert [h.household_id for h in f.lost] == ["HA3"] and f.gained == []
    assert f.lost[0].case_id == case_id
    assert "✘ 非該当" in f.lost[0].explanation[0] and "1種類" in f.lost[0].explanation[0]
    assert [(c.case_id, c.household_id, c.lost) for c in d.orphaned_cases] == [(case_id, "HA3", ["multiple_arrears"])]


def test_the_same_rules_change_nothing_and_data_since_the_last_screen_is_told_apart(conn, workspace, rules):
    arrears_town(conn)
    screened(conn, workspace, rules)
    from tests.helpers.town import add_household, person

    add_household(conn, "HNEW", person(60, "世帯主", ("arrears", "kokuho:5"), ("arrears", "water:5")))
    d = rules_diff(conn, rules, rules)
    assert d.flags == [] and not d.changed
    assert d.unchanged_rules_pending == 1  # HNEW: flagged by the next screen, whatever the rules
