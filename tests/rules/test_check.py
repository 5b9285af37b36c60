"""`engine rules check`: every error has file, line, rule id, field and, where possible, a suggestion."""

import shutil
import textwrap

import pytest
from typer.testing import CliRunner

from engine.cli.main import app
from engine.rules.loader import RulesInvalid, check_rules, load_rules
from tests.helpers.configs import DV_MEASURE_RAISES_NO_FLAG, configs
from tests.helpers.paths import ROOT

GOOD_INDICATORS = """\
indicators:
  - id: elder
    title: 高齢者
    when:
      all:
        - age: {min: 75}
        - record: care_level
"""
FLAG = """\
flags:
  - id: f1
    title: テスト
    severity: high
    silos: [介護]
    version: 1
    when:
      member: elder
"""


def write(tmp_path, indicators=GOOD_INDICATORS, flags=FLAG):
    d = tmp_path / "rules"
    d.mkdir(exist_ok=True)
    (d / "indicators.yaml").write_text(textwrap.dedent(indicators), encoding="utf-8")
    (d / "flags.yaml").write_text(textwrap.dedent(flags), encoding="utf-8")
    return d


def only_problem(d):
    problems = check_rules(d)
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


def test_shipped_rules_are_valid():
    assert check_rules(ROOT / "configs" / "rules") == []


def test_misspelt_code_names_file_line_rule_field_and_suggests(tmp_path):
    d = write(tmp_path, GOOD_INDICATORS.replace("record: care_level", "record: care_levl"))
    p = only_problem(d)
    assert p.file.endswith("indicators.yaml") and p.line == 7 and p.rule_id == "elder"
    assert p.field == "when.all[1].record.code"
    assert "unknown code 'care_levl'" in p.message and p.suggestion == "did you mean 'care_level'?"
    assert (
        "indicators.yaml:7: rule elder [when.all[1].record.code] unknown code 'care_levl' — did you mean 'care_level'?"
        in str(p)
    )


@pytest.mark.parametrize(
    "flags_text, line, field, message, suggestion",
    [
        (
            FLAG.replace("member: elder", "member: eldr"),
            8,
            "when.member",
            "unknown indicator 'eldr'",
            "did you mean 'elder'?",
        ),
        (
            FLAG.replace("severity: high", "severity: hihg"),
            4,
            "severity",
            "unknown severity 'hihg'",
            "did you mean 'high'?",
        ),
        (FLAG.replace("silos: [介護]", "silos: [介獲]"), 5, "silos", "unknown silo '介獲'", None),
        (FLAG.replace("version: 1", "version: one"), 6, "version", "must be a whole number", None),
        (FLAG.replace("version: 1", "version: 0"), 6, "version", "must be 1 or more", None),
        (FLAG.replace("    version: 1\n", ""), 2, "version", "missing field(s): version", None),
        (
            FLAG.replace("    version: 1\n", "    version: 1\n    colour: red\n"),
            7,
            "colour",
            "unknown field 'colour'",
            None,
        ),
        (
            FLAG.replace("member: elder", "membr: elder"),
            8,
            "when.membr",
            "unknown condition 'membr'",
            "did you mean 'member'?",
        ),
        (
            FLAG.replace("member: elder", "household_size: {min: 3, max: 1}"),
            8,
            "when.household_size",
            "min 3 is greater than max 1",
            None,
        ),
        (
            FLAG.replace("member: elder", "{member: elder, household_size: {min: 1}}"),
            8,
            "when",
            "exactly one key",
            None,
        ),
    ],
)
def test_flag_errors(tmp_path, flags_text, line, field, message, suggestion):
    p = only_problem(write(tmp_path, flags=flags_text))
    assert (p.line, p.field) == (line, field), str(p)
    assert message in p.message
    assert p.rule_id == "f1"
    if suggestion:
        assert p.suggestion == suggestion


@pytest.mark.parametrize(
    "replacement, field, message",
    [
        (
            "record: {code: care_level, value: 要介護6}",
            "when.all[1].record.value",
            "'要介護6' is not a value of care_level",
        ),
        (
            "record: {code: care_level, min: 要介護3, max: 要介護1}",
            "when.all[1].record",
            "min 要介護3 is above max 要介護1",
        ),
        (
            "record: {code: earned_income, value: 100}",
            "when.all[1].record.value",
            "earned_income has no value to match",
        ),
        ("record: {code: consultation, min: 3}", "when.all[1].record.min", "consultation values cannot be compared"),
        ("record: {code: care_level, within: 6}", "when.all[1].record.within", "unknown key 'within'"),
        ("recrod: care_level", "when.all[1].recrod", "unknown condition 'recrod'"),
        ("relationship: 息子", "when.all[1].relationship", "unknown 続柄 '息子'"),
        ("age: {mn: 3}", "when.all[1].age.mn", "unknown key 'mn'"),
    ],
)
def test_indicator_errors(tmp_path, replacement, field, message):
    p = only_problem(write(tmp_path, GOOD_INDICATORS.replace("record: care_level", replacement)))
    assert p.field == field and message in p.message and p.line == 7 and p.rule_id == "elder", str(p)


def test_yaml_syntax_error_has_line(tmp_path):
    p = only_problem(write(tmp_path, flags=FLAG.replace("    severity: high", "    severity: [high")))
    assert p.file.endswith("flags.yaml") and "YAML syntax error" in p.message and p.line >= 4


def test_duplicate_id_points_at_both(tmp_path):
    dup = GOOD_INDICATORS + GOOD_INDICATORS.split("indicators:\n")[1]
    p = only_problem(write(tmp_path, dup))
    assert "duplicate id 'elder'" in p.message and "indicators.yaml:2" in p.message and p.line == 8


def test_every_problem_is_reported_not_only_the_first(tmp_path):
    d = write(
        tmp_path,
        GOOD_INDICATORS.replace("care_level", "care_levl"),
        FLAG.replace("high", "hi").replace("member: elder", "member: eldr"),
    )
    assert len(check_rules(d)) == 3


def test_broken_rule_file_never_half_applies(tmp_path, conn, workspace):
    d = tmp_path / "rules"
    shutil.copytree(ROOT / "configs" / "rules", d)
    text = (d / "flags.yaml").read_text(encoding="utf-8")
    (d / "flags.yaml").write_text(text.replace("member: dv_signal", "member: dv_signl"), encoding="utf-8")
    with pytest.raises(RulesInvalid):
        load_rules(d)
    result = CliRunner().invoke(app, ["screen", "--workspace", str(workspace), "--rules", str(d)])
    assert result.exit_code == 2
    assert (
        "dv_signl" in result.output
        and "did you mean 'dv_signal'?" in result.output
        and "nothing was run" in result.output
    )
    assert conn.execute("SELECT COUNT(*) FROM screen_runs").fetchone()[0] == 0


def test_cli_rules_check(tmp_path):
    runner = CliRunner()
    ok = runner.invoke(app, ["rules", "check", "--rules", str(ROOT / "configs" / "rules")])
    assert ok.exit_code == 0 and "12 flags" in ok.output
    bad = runner.invoke(
        app, ["rules", "check", "--rules", str(write(tmp_path, GOOD_INDICATORS.replace("care_level", "care_levl")))]
    )
    assert bad.exit_code == 1
    assert "did you mean 'care_level'?" in bad.output and "Traceback" not in bad.output


@pytest.mark.parametrize(
    "flags_text, field, message",
    [
        (FLAG.replace("title: テスト", "title: 2024-02-30"), "title", "cannot read this value"),
        (FLAG.replace("id: f1", "id: !foo f1"), "id", "cannot read this value"),
        (
            FLAG.replace("silos: [介護]", "silos: !!python/object/apply:os.system [介護]"),
            "silos",
            "!!python/object/apply:os.system is not allowed",
        ),
        (FLAG.replace("    when:\n", "    ? [when, title]\n    : x\n    when:\n"), "", "a key must be a plain name"),
        (FLAG.replace("id: f1", "id: _seen"), "id", "must be letters, digits and _"),
        (FLAG.replace("id: f1", "id: a.b$"), "id", "must be letters, digits and _"),
        (FLAG.replace("version: 1", "version: 99999999999999999999999"), "version", "or less"),
        (FLAG.replace("member: elder", "household_size: {min: 99999999999}"), "when.household_size.min", "or less"),
        (FLAG.replace("silos: [介護]", "silos: []"), "silos", "empty list"),
        (FLAG.replace("    when:\n", "    when:\n      member: elder\n    when:\n"), "when", "duplicate key 'when'"),
    ],
)
def test_values_that_used_to_pass_or_crash(tmp_path, flags_text, field, message):
    problems = check_rules(write(tmp_path, flags=flags_text))
    assert problems, "should be refused"
    assert any(message in p.message and (not field or p.field == field) for p in problems), [str(p) for p in problems]


def test_within_months_is_bounded(tmp_path):
    p = only_problem(
        write(
            tmp_path, GOOD_INDICATORS.replace("record: care_level", "record: {code: care_level, within_months: 40000}")
        )
    )
    assert p.field == "when.all[1].record.within_months" and "1,200 or less" in p.message


def nested_not(n: int) -> str:
    return FLAG.replace("member: elder", "{not: " * n + "{member: elder}" + "}" * n)


def test_conditions_nested_up_to_the_limit_are_accepted(tmp_path):
    from engine.rules.conditions import MAX_CONDITION_DEPTH

    assert check_rules(write(tmp_path, flags=nested_not(MAX_CONDITION_DEPTH))) == []
    deep_all = FLAG.replace(
        "member: elder", "{all: [" * MAX_CONDITION_DEPTH + "{member: elder}" + "]}" * MAX_CONDITION_DEPTH
    )
    assert check_rules(write(tmp_path, flags=deep_all)) == []


@pytest.mark.parametrize("n", [21, 40, 300])  # 21: the condition limit; 40 and 300: beyond the YAML nesting limit too
def test_conditions_nested_too_deeply_are_a_located_problem(tmp_path, n):
    p = only_problem(write(tmp_path, flags=nested_not(n)))
    assert (p.line, p.rule_id, p.field) == (8, "f1", "when"), str(p)
    assert "nested too deeply" in p.message and "20" in p.message


def test_deeply_nested_yaml_is_a_located_problem(tmp_path):
    p = only_problem(write(tmp_path, flags="flags: " + "[" * 800 + "]" * 800 + "\n"))
    assert (p.line, p.field) == (1, "flags") and "nested too deeply" in p.message, str(p)


def test_aliases_are_refused(tmp_path):
    bomb = "".join(
        f"{c}: &{c} [{', '.join(['*' + chr(ord(c) - 1)] * 10 if c > 'a' else ['x'] * 10)}]\n" for c in "abcdefg"
    )
    p = only_problem(write(tmp_path, flags=bomb))
    assert p.line == 2 and p.field == "b" and "aliases are not supported" in p.message and "line 1" in p.message, str(p)
    text = (
        FLAG.replace("silos: [介護]", "silos: &s [介護]")
        + "  - "
        + FLAG.split("  - ", 1)[1].replace("id: f1", "id: f2").replace("silos: [介護]", "silos: *s")
    )
    p = only_problem(write(tmp_path, flags=text))
    assert (p.line, p.rule_id, p.field) == (12, "f2", "silos") and "*s" in p.message, str(p)


def read_config(tmp_path, text):
    from engine.support.yamlfile import read_yaml

    path = tmp_path / "c.yaml"
    path.write_text(textwrap.dedent(text), encoding="utf-8")
    problems = []
    return read_yaml(path, problems), problems


def test_yaml_file_deep_nesting_and_aliases_are_located(tmp_path):
    doc, problems = read_config(tmp_path, "a: 1\nwatch_months: " + "[" * 800 + "]" * 800 + "\n")
    assert (
        doc is None
        and [(p.line, p.field) for p in problems] == [(2, "watch_months")]
        and "nested too deeply" in problems[0].message
    )
    doc, problems = read_config(tmp_path, "a: &x [1, 2]\nb: *x\n")
    assert doc is None and [(p.line, p.field) for p in problems] == [(2, "b")] and "line 1" in problems[0].message


def test_yaml_file_unreadable_values_and_complex_keys_name_their_field(tmp_path):
    doc, problems = read_config(
        tmp_path,
        """\
        decision: close
        reason: !!python/object/apply:os.system ["true"]
        when: 2024-02-30x
        lead: !!python/name:os.system x
        ? [reason, lead]
        : 終結
        """,
    )
    assert [(p.line, p.field) for p in problems] == [(2, "reason"), (4, "lead"), (5, "")], [str(p) for p in problems]
    assert "cannot read this value" in problems[0].message and "cannot read this value" in problems[1].message
    assert "a key must be a plain name" in problems[2].message and "[reason, lead]" in problems[2].message


def test_yaml_file_key_with_a_bracket_keeps_its_line_and_field(tmp_path):
    from pydantic import BaseModel, ConfigDict

    from engine.support.yamlfile import validate

    class Agency(BaseModel):
        model_config = ConfigDict(extra="forbid")
        id: str
        areas: list[str] | tuple[str, ...] = []

    class Registry(BaseModel):
        agencies: list[Agency]

    doc, problems = read_config(
        tmp_path,
        """\
        agencies:
          - id: a
            areas: [中央]
            areas[0]: 港
        """,
    )
    assert problems == [] and validate(doc, Registry, problems) is None
    assert [(p.line, p.field, p.rule_id) for p in problems] == [(4, "agencies.areas[0]", "a")], [
        str(p) for p in problems
    ]
    assert "unknown field 'areas[0]'" in problems[0].message


@pytest.mark.regression("issue 12: rules edited so that a DV support measure no longer raises the DV flag")
def test_rules_check_warns_when_a_dv_support_measure_no_longer_raises_the_dv_flag(tmp_path):
    rules = configs(tmp_path, DV_MEASURE_RAISES_NO_FLAG) / "rules"
    runner = CliRunner()
    edited = runner.invoke(app, ["rules", "check", "--rules", str(rules)])
    assert edited.exit_code == 0, edited.output  # a warning, not a refusal (as an import's warnings)
    (warning,) = [line for line in edited.output.splitlines() if line.startswith("warning:")]
    line = load_rules(rules).flags["dv"].line
    assert f"flags.yaml:{line}: rule dv [when]" in warning and "raises no flag of silo DV" in warning
    shipped = runner.invoke(app, ["rules", "check", "--rules", str(ROOT / "configs" / "rules")])
    assert shipped.exit_code == 0 and "warning" not in shipped.output
