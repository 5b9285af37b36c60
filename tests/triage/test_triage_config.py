"""configs/triage_rules.yaml is checked like the lead rules (engine/triage/load.py): every problem names
its file, line, field and rule, with a did-you-mean where one helps; without the file every case goes to
a conference, as before triage; `engine config check` prints the problem with the file's name."""

from __future__ import annotations

from typer.testing import CliRunner

from engine.cli.main import app
from engine.config import load_config
from engine.triage.decide import CaseFacts, decide
from engine.triage.model import Triage
from tests.helpers.configs import configs, line_of, name, only_problem
from tests.helpers.paths import RULES_DIR

TRIAGE = "triage_rules.yaml"


def located(p, d, fragment: str, field: str, rule_id: str) -> None:
    assert (name(p), p.line, p.field, p.rule_id) == (TRIAGE, line_of(d / TRIAGE, fragment), field, rule_id), (
        f"問題の位置が違う: {p}"
    )


def test_the_shipped_triage_rules_load(cfg):
    ids = [r.id for r in cfg.triage.rules]
    assert ids[:3] == ["complex", "several_problems", "child_safety"] and ids[-1] == "fallback", ids
    assert cfg.triage.settings.assessment_attempts == 3 and cfg.triage.settings.assessments_per_week == 10


def test_an_unknown_flag_is_located_with_did_you_mean(tmp_path, rules):
    d = configs(tmp_path, (TRIAGE, "flags: [isolated_elder]", "flags: [isolated_eldr]"))
    p = only_problem(d, rules)
    located(p, d, "isolated_eldr", "triage_rules.when.flags", "elder_alone")
    assert p.message == "unknown flag 'isolated_eldr'" and p.suggestion == "did you mean 'isolated_elder'?"


def test_an_unknown_flag_in_only_flags_is_located(tmp_path, rules):
    d = configs(tmp_path, (TRIAGE, "only_flags: [multiple_arrears]", "only_flags: [multiple_arrers]"))
    p = only_problem(d, rules)
    located(p, d, "multiple_arrers", "triage_rules.when.only_flags", "arrears_only")
    assert p.suggestion == "did you mean 'multiple_arrears'?"


def test_an_unknown_kind_in_by_is_located_with_did_you_mean(tmp_path, rules):
    d = configs(tmp_path, (TRIAGE, "by: {kind: 地域包括支援センター}", "by: {kind: 地域包括センター}"))
    p = only_problem(d, rules)
    located(p, d, "地域包括センター}", "triage_rules.by.kind", "elder_alone")
    assert "no agency of kind '地域包括センター'" in p.message
    assert p.suggestion == "did you mean '地域包括支援センター'?"


def test_an_assessment_without_by_is_refused(tmp_path, rules):
    d = configs(tmp_path, (TRIAGE, "    by: {kind: 地域包括支援センター}\n", ""))
    p = only_problem(d, rules)
    located(p, d, "- id: elder_alone", "triage_rules", "elder_alone")
    assert "pathway assessment needs `by`" in p.message


def test_a_conference_with_by_is_refused(tmp_path, rules):
    d = configs(
        tmp_path,
        (
            TRIAGE,
            "    pathway: conference\n    reason: 3分野",
            "    pathway: conference\n    by: {kind: 地域包括支援センター}\n    reason: 3分野",
        ),
    )
    p = only_problem(d, rules)
    located(p, d, "- id: complex", "triage_rules", "complex")
    assert "lead_rules.yaml" in p.message and "remove `by`" in p.message


def test_min_above_max_is_a_rule_never_used(tmp_path, rules):
    d = configs(tmp_path, (TRIAGE, "when: {min_silos: 3}", "when: {min_silos: 3, max_silos: 2}"))
    p = only_problem(d, rules)
    located(p, d, "max_silos: 2", "triage_rules.when.min_silos", "complex")
    assert p.message == "min_silos 3 is above max_silos 2: this rule is never used"
    assert p.suggestion == "swap min_silos and max_silos"


def test_min_severity_above_max_severity_is_a_rule_never_used(tmp_path, rules):
    d = configs(tmp_path, (TRIAGE, "max_severity: medium}", "max_severity: medium, min_severity: high}"))
    p = only_problem(d, rules)
    located(p, d, "min_severity: high", "triage_rules.when.min_severity", "arrears_only")
    assert "min_severity high is above max_severity medium" in p.message


def test_a_duplicate_id_names_the_first_rule(tmp_path, rules):
    d = configs(tmp_path, (TRIAGE, "- id: several_problems", "- id: complex"))
    p = only_problem(d, rules)
    assert (name(p), p.field, p.rule_id) == (TRIAGE, "triage_rules.id", "complex")
    assert p.line == line_of(d / TRIAGE, "{min_flags: 2}") - 1, "二つ目の complex の行を指すこと"
    assert p.message == "duplicate triage rule id 'complex' (also rule 1)"


def test_without_the_file_every_case_goes_to_a_conference(tmp_path, rules):
    d = configs(tmp_path, delete=(TRIAGE,))
    config = load_config(d, rules)
    assert config.triage == Triage(), "triage_rules.yaml がなければ振り分け規則はない"
    facts = CaseFacts(
        flag_ids=frozenset({"isolated_elder"}),
        severity="high",
        silos=frozenset({"介護"}),
        served=frozenset(),
        all_consented=False,
        area="中央",
    )
    got = decide(config, facts, urgent=False, locked=False, relinked=False, led={})
    assert (got.pathway, got.rule_id) == ("conference", "default")


def test_config_check_reports_the_problem_with_the_file_name(tmp_path):
    d = configs(tmp_path, (TRIAGE, "flags: [isolated_elder]", "flags: [isolated_eldr]"))
    result = CliRunner().invoke(app, ["config", "check", "--config", str(d), "--rules", str(RULES_DIR)])
    assert result.exit_code == 1, result.output
    line = next((ln for ln in result.output.splitlines() if "isolated_eldr" in ln), None)
    assert line is not None, result.output
    assert f"{TRIAGE}:{line_of(d / TRIAGE, 'isolated_eldr')}" in line and "did you mean 'isolated_elder'" in line


def test_config_check_accepts_the_shipped_triage_rules(tmp_path):
    d = configs(tmp_path)
    result = CliRunner().invoke(app, ["config", "check", "--config", str(d), "--rules", str(RULES_DIR)])
    assert result.exit_code == 0, result.output
