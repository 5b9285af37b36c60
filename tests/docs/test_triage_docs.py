"""docs/triage.md stays true to the triage code: it names every pathway, every condition a rule's
`when` may hold, every setting, every rule of the shipped configs/triage_rules.yaml and the audit's
triage kinds, each written as code (`name`); its annotated example loads without a problem; and the
commands it tells the coordinator to type exist."""

from __future__ import annotations

import re

import pytest

from engine.casework.audit import KINDS
from engine.support.vocabulary import ASSESSMENT_RESULT_LABELS
from engine.triage.load import TRIAGE, load_triage
from engine.triage.model import PATHWAY_SHORT, PATHWAYS, TriageSettings, When
from tests.docs.test_docs import CODE_SPAN, FENCE
from tests.helpers.paths import ROOT

PAGE = ROOT / "docs" / "triage.md"
AUDIT_KINDS = ("assessment_overdue", "no_pathway", "conference_too_far")


def text() -> str:
    return PAGE.read_text(encoding="utf-8")


def spans() -> set[str]:
    """What the page writes as code: `name` spans, outside fenced blocks."""
    return {s.strip("`") for s in CODE_SPAN.findall(FENCE.sub("", text()))}


def missing(names) -> list[str]:
    named = spans()
    return sorted(n for n in names if n not in named)


def test_every_pathway_is_named_with_its_japanese_label():
    assert not missing(PATHWAYS), f"docs/triage.md does not name the pathways {missing(PATHWAYS)}"
    absent = [label for label in PATHWAY_SHORT.values() if label not in text()]
    assert not absent, f"docs/triage.md lacks the Japanese labels {absent}"


def test_every_when_condition_is_named():
    fields = list(When.model_fields)
    assert "min_silos" in fields and "served" in fields  # the model still has its conditions
    assert not missing(fields), f"docs/triage.md does not name the `when` conditions {missing(fields)}"


def test_every_setting_is_named():
    fields = list(TriageSettings.model_fields)
    assert "assessments_per_week" in fields and "conference_overflow" in fields
    assert not missing(fields), f"docs/triage.md does not name the triage settings {missing(fields)}"


def test_every_shipped_rule_is_named(cfg):
    ids = [rule.id for rule in cfg.triage.rules]
    assert len(ids) >= 5 and ids[-1] == "fallback", ids  # the shipped file was read
    assert not missing(ids), f"docs/triage.md does not name the shipped triage rules {missing(ids)}"


def test_the_audit_kinds_of_triage_are_named():
    assert set(AUDIT_KINDS) <= set(KINDS), "the audit no longer has these kinds: update docs/triage.md"
    assert not missing(AUDIT_KINDS), f"docs/triage.md does not name the audit kinds {missing(AUDIT_KINDS)}"


def test_every_assessment_result_is_named_with_its_label():
    assert not missing(ASSESSMENT_RESULT_LABELS), f"missing results {missing(ASSESSMENT_RESULT_LABELS)}"
    absent = [label for label in ASSESSMENT_RESULT_LABELS.values() if label not in text()]
    assert not absent, f"docs/triage.md lacks the answers as the agency reads them: {absent}"


def test_the_fixed_rule_ids_are_those_decide_records():
    """urgent, dv_lock, relink and default are the rule ids engine/triage/decide.py writes itself."""
    source = (ROOT / "engine" / "triage" / "decide.py").read_text(encoding="utf-8")
    for rule_id in ("urgent", "dv_lock", "relink", "default"):
        assert f'rule_id="{rule_id}"' in source, f"decide.py no longer records rule id {rule_id}"
        assert rule_id in spans(), f"docs/triage.md does not name the fixed rule id `{rule_id}`"


def test_the_annotated_example_loads_without_a_problem(tmp_path, rules, cfg):
    blocks = re.findall(r"^```yaml\n(.*?)^```", text(), re.S | re.M)
    example = next((b for b in blocks if "triage_rules:" in b), None)
    assert example, "docs/triage.md has no annotated triage_rules.yaml example"
    (tmp_path / TRIAGE).write_text(example, encoding="utf-8")
    problems: list = []
    triage = load_triage(tmp_path, rules, cfg.agencies, problems, {})
    assert not problems, f"the example of docs/triage.md does not load: {problems}"
    assert {r.pathway for r in triage.rules} >= {"conference", "assessment", "watch"}, "the example shows too little"


def test_the_example_would_be_refused_if_broken(tmp_path, rules, cfg):
    """The check above does catch a broken example (an unknown flag)."""
    (tmp_path / TRIAGE).write_text(
        "triage_rules:\n  - id: x\n    when: {flags: [no_such_flag]}\n    pathway: conference\n    reason: 理由\n",
        encoding="utf-8",
    )
    problems: list = []
    load_triage(tmp_path, rules, cfg.agencies, problems, {})
    assert problems


@pytest.mark.parametrize("command", [["assess"], ["backlog"], ["backlog", "accept"], ["backlog", "change"]])
def test_the_commands_named_exist(command):
    from engine.cli.reference import command_paths

    assert command in command_paths(), f"`engine {' '.join(command)}` is not a command"
    assert "engine " + " ".join(command) in text(), f"docs/triage.md does not show `engine {' '.join(command)}`"


def test_the_measured_section_is_there_and_points_to_the_benchmarks():
    body = text().split("## Measured at 50,000 households", 1)
    assert len(body) == 2, "docs/triage.md lacks the section '## Measured at 50,000 households'"
    assert "benchmarks.md" in body[1]
