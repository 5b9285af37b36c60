"""Effective dates of rules: a flag may be written again as a new version that starts on a date; a
screen uses the version in force on its date, explain and the history name it, and a change of
version opens or resolves flags with the reason "rule changed", never silently."""

from __future__ import annotations

import shutil
from datetime import timedelta

import pytest

from engine.casework.history import history, render_history
from engine.rules.loader import load_rules
from engine.rules.problems import RulesInvalid
from engine.screening.explain import explain
from engine.workflows.cycle import nightly_cycle
from tests.helpers.paths import RULES_DIR
from tests.helpers.town import ON, add_household, person

START = ON + timedelta(days=3)  # Monday 2026-11-30: the lowered threshold is in force from then
V2 = f"""
  - id: multiple_arrears
    pattern: 7
    title: 複数の滞納（2か月以上の滞納が2種類以上）
    severity: medium
    silos: [困窮]
    version: 2
    effective_from: {START.isoformat()}
    when:
      distinct_values:
        record: {{code: arrears, min: 2}}
        at_least: 2
"""


@pytest.fixture
def dated_rules(tmp_path):
    """The shipped rules with a second version of multiple_arrears (2 months instead of 3) from START."""
    folder = tmp_path / "rules"
    shutil.copytree(RULES_DIR, folder, ignore=shutil.ignore_patterns("examples"))
    flags = folder / "flags.yaml"
    flags.write_text(flags.read_text(encoding="utf-8").rstrip() + "\n" + V2, encoding="utf-8")
    return folder


def test_a_rule_set_without_dates_keeps_its_hash_and_is_its_own_version_in_force():
    rules = load_rules(RULES_DIR)
    assert rules.versions == {} and rules.in_force(ON) is rules


def test_the_version_in_force_is_chosen_by_the_screening_date(dated_rules):
    rules = load_rules(dated_rules)
    assert [v.version for v in rules.versions["multiple_arrears"]] == [1, 2]
    assert rules.flags["multiple_arrears"].version == 2  # the newest, for titles
    before, after = rules.in_force(START - timedelta(days=1)), rules.in_force(START)
    assert before.flags["multiple_arrears"].version == 1 and after.flags["multiple_arrears"].version == 2
    assert before.hash != after.hash != rules.hash
    assert after.flags["multiple_arrears"].version_text == f"第2版（{START.isoformat()}から）"


def test_a_later_version_must_raise_the_version_number(dated_rules):
    flags = dated_rules / "flags.yaml"
    flags.write_text(
        flags.read_text(encoding="utf-8").replace("version: 2\n    effective_from", "version: 1\n    effective_from"),
        encoding="utf-8",
    )
    with pytest.raises(RulesInvalid) as err:
        load_rules(dated_rules)
    (p,) = err.value.problems
    assert p.field == "version" and p.rule_id == "multiple_arrears" and "version: 2" in p.suggestion


def test_a_second_entry_without_a_date_is_still_a_duplicate(dated_rules):
    flags = dated_rules / "flags.yaml"
    flags.write_text(
        flags.read_text(encoding="utf-8").replace(f"    effective_from: {START.isoformat()}\n", ""), encoding="utf-8"
    )
    with pytest.raises(RulesInvalid, match="duplicate id 'multiple_arrears'"):
        load_rules(dated_rules)


def test_crossing_the_date_opens_and_resolves_flags_with_the_reason_rule_changed(conn, workspace, cfg, dated_rules):
    rules = load_rules(dated_rules)
    # two kinds of arrears for 2 months: flagged only under version 2
    add_household(conn, "HTWO", person(45, "世帯主", ("arrears", "kokuho:2"), ("arrears", "water:2")), area="北部")
    nightly_cycle(conn, workspace, rules, cfg, ON)
    assert not conn.execute(
        "SELECT 1 FROM flags WHERE household_id = 'HTWO' AND rule_id = 'multiple_arrears'"
    ).fetchone()
    nightly_cycle(conn, workspace, rules, cfg, START)
    row = conn.execute(
        "SELECT rule_version, change_reason, status FROM flags WHERE household_id = 'HTWO' AND rule_id = 'multiple_arrears'"
    ).fetchone()
    assert row == (2, "rule_changed:1->2", "open")
    text = explain(conn, rules, "HTWO", START)
    assert f"multiple_arrears 第2版（{START.isoformat()}から）" in text and "第2版、継続中" in text
    (case_id,) = conn.execute("SELECT case_id FROM cases WHERE household_id = 'HTWO'").fetchone()
    assert f"multiple_arrears 第2版（{START.isoformat()}から）" in render_history(case_id, history(conn, case_id))


def test_a_flag_a_new_version_no_longer_raises_is_resolved_as_rule_changed_on_its_case(conn, workspace, cfg, tmp_path):
    folder = tmp_path / "rules"
    shutil.copytree(RULES_DIR, folder, ignore=shutil.ignore_patterns("examples"))
    flags = folder / "flags.yaml"
    stricter = V2.replace("version: 2", "version: 2").replace("min: 2}", "min: 6}").replace("2か月", "6か月")
    flags.write_text(flags.read_text(encoding="utf-8").rstrip() + "\n" + stricter, encoding="utf-8")
    rules = load_rules(folder)
    add_household(conn, "HFOUR", person(45, "世帯主", ("arrears", "kokuho:4"), ("arrears", "water:4")), area="北部")
    nightly_cycle(conn, workspace, rules, cfg, ON)
    (case_id,) = conn.execute("SELECT case_id FROM cases WHERE household_id = 'HFOUR'").fetchone()
    nightly_cycle(conn, workspace, rules, cfg, START)
    assert conn.execute(
        "SELECT status, change_reason FROM flags WHERE household_id = 'HFOUR' AND rule_id = 'multiple_arrears'"
    ).fetchone() == ("resolved", "rule_changed:1->2")
    text = render_history(case_id, history(conn, case_id))
    assert "規則の変更" in text and "第1版 → 第2版" in text and "規則の変更による" in text
