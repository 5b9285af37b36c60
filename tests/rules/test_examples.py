"""`engine rules test`: the example households beside the rules (engine/rules/examples.py,
engine/rules/example_run.py) — the shipped ones pass and cover every flag, a broken one fails with
the Japanese explanation, a wrong file is refused with located problems, nothing is written."""

from __future__ import annotations

import hashlib
import shutil
import textwrap
from datetime import date
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from engine.cli.main import app
from engine.rules.example_run import run_examples
from engine.rules.examples import NO_CASE, birth_for_age, read_examples
from engine.rules.facts import age_on
from tests.helpers.paths import CONFIG_DIR, RULES_DIR
from tests.helpers.town import add_household, person

EXAMPLES = RULES_DIR / "examples"
runner = CliRunner()


def invoke(*args: str):
    return runner.invoke(app, ["rules", "test", "--rules", str(RULES_DIR), "--config", str(CONFIG_DIR), *args])


def write(folder: Path, text: str, name: str = "x.yaml") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(textwrap.dedent(text), encoding="utf-8")
    return folder


ELDER = "{age: 82, relationship: 世帯主, sex: M, records: [{code: care_level, value: 要介護2}]}"


def test_shipped_examples_pass():
    result = invoke()
    assert result.exit_code == 0, result.output
    assert result.output.startswith("ok: ") and " examples in 12 files" in result.output


def test_every_flag_has_a_positive_example_and_a_near_miss(rules, cfg):
    examples, problems = read_examples(EXAMPLES, rules, cfg)
    assert not problems
    for flag_id in rules.flags:
        assert any(flag_id in ex.must for ex in examples), f"no example must get {flag_id}"
        assert any(flag_id in ex.must_not for ex in examples), f"no near miss for {flag_id}"


def test_every_lead_rule_of_the_shipped_configuration_is_pinned_by_an_example(rules, cfg):
    examples, _ = read_examples(EXAMPLES, rules, cfg)
    results = run_examples(examples, rules, cfg)
    assert all(r.ok for r in results)
    chosen = {r.lead for r in results if r.example.lead}
    # arrears and poverty to the 自立相談支援機関, ひきこもり to its own centre, 8050 and elders to the
    # area's 地域包括, children to こども家庭センター, DV to the DV centre; low flags alone open no case
    assert {"jiritsu_soudan", "hikikomori_npo", "houkatsu_chuo", "kodomo_center", "dv_center", NO_CASE} <= chosen
    by_id = {r.example.id: r for r in results}
    assert by_id["arrears_couple_70s_consented"].lead == "jiritsu_soudan"  # the odd choice, fixed
    assert by_id["hikikomori_son_consented"].lead == "hikikomori_npo"


def test_a_broken_example_fails_with_the_explanation(tmp_path):
    folder = write(
        tmp_path / "ex",
        f"""\
        on: 2026-11-27
        examples:
          - id: son_39
            title: 息子が39歳
            area: 中央
            members:
              - {ELDER}
              - {{age: 39, relationship: 子, sex: M}}
            must: ["8050"]
            must_not: [hikikomori]
            lead: houkatsu_chuo
        """,
    )
    result = invoke("--examples", str(folder))
    assert result.exit_code == 1
    out = result.output
    assert "例 son_39「息子が39歳」" in out and "付いたフラグ: hikikomori" in out
    assert "フラグ 8050（8050世帯（要介護の高齢者と無業の中高年が同居））が付くはずが、付きませんでした。" in out
    assert "✘ 40〜64歳 — 39歳" in out  # the step that failed, as `engine explain` words it
    assert "フラグ hikikomori" in out and "付かないはずが、付きました。" in out
    assert "主担当機関: houkatsu_chuo（中央地域包括支援センター） のはずが、jiritsu_soudan" in out
    assert "（規則 hikikomori_support_meeting）" in out
    assert "1 of 1 examples failed" in out


def test_a_low_flag_alone_opens_no_case(tmp_path):
    folder = write(
        tmp_path / "ex",
        """\
        on: 2026-11-27
        examples:
          - id: pdc
            title: 障害のある父と子
            area: 北部
            members:
              - {age: 40, relationship: 世帯主, sex: M, records: [{code: disability_certificate, value: 身体}, {code: earned_income, value: 1}]}
              - {age: 10, relationship: 子, records: [{code: school_enrollment, value: 小学校}]}
            must: [parent_disability_child]
            lead: kikan_soudan
        """,
    )
    out = invoke("--examples", str(folder)).output
    assert (
        "主担当機関: kikan_soudan（基幹相談支援センター） のはずが、案件になりませんでした（重要度「中」以上のフラグがありません）。"
        in out
    )


def test_problems_of_an_example_file_are_located_with_suggestions(tmp_path):
    folder = write(
        tmp_path / "ex",
        """\
        on: 2026-11-27
        examples:
          - id: bad
            title: 誤り
            area: 中部
            members:
              - {age: -3, relationship: 世帯主}
              - {age: 40, relationship: 息子, records: [{code: care_levl, value: 要介護2}, {code: arrears, value: kokuho}]}
              - {relationship: 孫娘, sex: X}
            must: [8500, hikikomri]
            must_not: [dv]
            lead: houkatsu
          - id: good
            title: 正しい例
            area: 中央
            members: [{age: 30, relationship: 世帯主, colour: red}]
            must: [hikikomori]
        """,
    )
    result = invoke("--examples", str(folder))
    assert result.exit_code == 1
    x = str(folder / "x.yaml")
    lines = result.output.splitlines()
    for expected in (
        f"{x}:10: example bad [examples.must] unknown flag '8500' — did you mean '8050'?",
        f"{x}:10: example bad [examples.must] unknown flag 'hikikomri' — did you mean 'hikikomori'?",
        f"{x}:12: example bad [examples.lead] unknown agency 'houkatsu' — did you mean 'houkatsu_kita'?",
        f"{x}:7: example bad [examples.members.age] age -3 is not between 0 and 130 — write full years on the file's on: date",
        f"{x}:8: example bad [examples.members.records.code] unknown record code 'care_levl' — did you mean 'care_level'?",
        f"{x}:9: example bad [examples.members.relationship] unknown 続柄 '孫娘' — did you mean '孫'?",
    ):
        assert expected in lines, (expected, result.output)
    assert (
        f"{x}:16: example good [examples.members.colour] unknown field 'colour' — allowed: age, birth" in result.output
    )
    assert any("[examples.area] no agency serves area '中部'" in line for line in lines)
    assert any("[examples.members.records.value] value 'kokuho' must be '<kind>:<months>'" in line for line in lines)
    assert any("[examples.members] give the member's age or birth: one of the two" in line for line in lines)
    assert any("[examples.members.sex] unknown sex 'X'" in line for line in lines)
    assert "no example was run" in result.output


@pytest.mark.parametrize(
    ("member", "message"),
    [
        ("{age: 200, relationship: 子}", "age 200 is not between 0 and 130"),
        ("{age: 五十, relationship: 子}", "Input should be a valid integer"),
        ("{birth: 2027-01-01, relationship: 子}", "born after the screening date 2026-11-27"),
        ("{age: 9, birth: 2017-01-01, relationship: 子}", "give the member's age or birth: one of the two"),
        (
            "{age: 40, relationship: 子, records: [{code: earned_income, value: 1, start_months_ago: 2, end_months_ago: 5}]}",
            "ends (2026-06-27) before it starts (2026-09-27)",
        ),
        ("{age: 40, relationship: 子, records: [{code: care_level, value: 要介護9}]}", "value '要介護9' is not one of"),
    ],
)
def test_bad_members_are_refused(tmp_path, member, message):
    folder = write(
        tmp_path / "ex",
        f"""\
        on: 2026-11-27
        examples:
          - {{id: e, title: 例, area: 中央, members: [{member}], must: [hikikomori]}}
        """,
    )
    result = invoke("--examples", str(folder))
    assert result.exit_code == 1 and message in result.output and "no example was run" in result.output


def test_ages_and_record_dates_count_from_the_files_date(tmp_path, rules, cfg):
    assert age_on(birth_for_age(date(2028, 2, 29), 39), "2028-02-29") == 39
    assert age_on(birth_for_age(date(2026, 11, 27), 39), "2027-11-25") == 39  # the age holds for a year
    assert age_on(birth_for_age(date(2026, 11, 27), 0), "2026-11-27") == 0
    folder = write(
        tmp_path / "ex",
        """\
        on: 2031-05-10
        examples:
          - id: later
            title: 5か月前まで働いていた
            area: 中央
            members:
              - {age: 35, relationship: 世帯主, records: [{code: earned_income, value: 1, start_months_ago: 30, end_months_ago: 5}]}
            must_not: [hikikomori]
          - id: longer
            title: 7か月前まで働いていた
            area: 中央
            members:
              - {age: 35, relationship: 世帯主, records: [{code: earned_income, value: 1, start: 2028-01-01, end_months_ago: 7}]}
            must: [hikikomori]
        """,
    )
    examples, problems = read_examples(folder, rules, cfg)
    assert not problems
    assert examples[0].members[0].records[0].end == "2030-12-10"
    assert all(r.ok for r in run_examples(examples, rules, cfg))


def test_unknown_folders_and_empty_folders_are_refused(tmp_path):
    missing = invoke("--examples", str(tmp_path / "nowhere"))
    assert missing.exit_code == 1 and "examples folder not found" in missing.output
    (tmp_path / "empty").mkdir()
    empty = invoke("--examples", str(tmp_path / "empty"))
    assert empty.exit_code == 1 and "no .yaml example files in this folder" in empty.output


def test_examples_files_are_plain_yaml_the_rule_loader_ignores(tmp_path):
    """The examples/ folder sits beside the rule files: `rules check` does not read it."""
    rules = tmp_path / "rules"
    shutil.copytree(RULES_DIR, rules)
    write(rules / "examples", "not: [an example", "broken.yaml")
    ok = runner.invoke(app, ["rules", "check", "--rules", str(rules)])
    assert ok.exit_code == 0, ok.output
    with pytest.raises(yaml.YAMLError):
        yaml.safe_load((rules / "examples" / "broken.yaml").read_text())


def test_nothing_is_written(tmp_path, monkeypatch, conn, workspace):
    """The command reads the rules, the configuration and the examples and writes nowhere: not the
    workspace named by ENGINE_WORKSPACE, not the folders it reads, not the working directory."""
    add_household(conn, "H0000001", person(45, "世帯主"))
    conn.close()
    rules, config = tmp_path / "rules", tmp_path / "configs"
    shutil.copytree(RULES_DIR, rules)
    shutil.copytree(CONFIG_DIR, config, ignore=shutil.ignore_patterns("rules"))

    def snapshot() -> dict[str, str]:
        return {
            str(p.relative_to(tmp_path)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(tmp_path.rglob("*"))
            if p.is_file()
        }

    before = snapshot()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("ENGINE_WORKSPACE", str(workspace))
    result = runner.invoke(app, ["rules", "test", "--rules", str(rules), "--config", str(config)])
    assert result.exit_code == 0, result.output
    assert snapshot() == before


@pytest.mark.parametrize("on", ["R8.11.27", "令和8年11月27日", "20261127"])
def test_the_files_date_and_record_dates_take_wareki(tmp_path, rules, cfg, on):
    """An example file's dates take every form of the configuration (support/dates.py `Day`)."""
    folder = write(
        tmp_path / "ex",
        f"""\
        on: {on}
        examples:
          - id: wareki
            title: 和暦で書いた例
            area: 中央
            members:
              - {{age: 35, relationship: 世帯主, records: [{{code: earned_income, value: 1, start: H30.4.1, end: R8.4.30}}]}}
            must: [hikikomori]
        """,
    )
    examples, problems = read_examples(folder, rules, cfg)
    assert not problems, [str(p) for p in problems]
    assert examples[0].on == date(2026, 11, 27)
    assert (examples[0].members[0].records[0].start, examples[0].members[0].records[0].end) == (
        "2018-04-01",
        "2026-04-30",
    )
