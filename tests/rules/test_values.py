"""Values in the rules: coded values must be known (refused with a did-you-mean), a free-text value
no record holds draws a warning with the nearest values that occur, and Japanese names of codes
are read as the codes (the same rules hash)."""

import shutil
import sqlite3
import textwrap

from typer.testing import CliRunner

from engine.cli.main import app
from engine.rules.lint import nearest_values, unseen_value_warnings, values_in_records
from engine.rules.loader import check_rules, load_rules
from engine.rules.model import Record
from engine.rules.trace import describe_record
from engine.store.db import DB_FILENAME
from tests.helpers.paths import RULES_DIR
from tests.helpers.town import add_household, person

runner = CliRunner()

FLAG = """\
flags:
  - id: f1
    title: テスト
    severity: {severity}
    silos: [介護]
    version: 1
    when:
      member: a
"""


def write(tmp_path, when: str, severity: str = "high", name: str = "rules"):
    d = tmp_path / name
    d.mkdir()
    indicators = f"indicators:\n  - id: a\n    title: テスト指標\n    when:\n{textwrap.indent(when, '      ')}"
    (d / "indicators.yaml").write_text(indicators, encoding="utf-8")
    (d / "flags.yaml").write_text(FLAG.format(severity=severity), encoding="utf-8")
    return d


def only_problem(d):
    problems = check_rules(d)
    assert len(problems) == 1, [str(p) for p in problems]
    return problems[0]


# --- coded values ----------------------------------------------------------------------------
def test_an_unknown_value_of_a_fixed_list_is_refused_with_did_you_mean(tmp_path):
    p = only_problem(write(tmp_path, "record: {code: health_check_missed, value: [連絡無し]}\n"))
    assert (p.line, p.rule_id, p.field) == (5, "a", "when.record.value")
    assert p.message == "'連絡無し' is not a value of health_check_missed (乳幼児健診未受診)"
    assert p.suggestion == "did you mean '連絡なし'?"


def test_an_unknown_arrears_kind_lists_the_kinds_with_their_names(tmp_path):
    p = only_problem(write(tmp_path, "record: {code: arrears, value: 国民年金}\n"))
    assert p.message == "'国民年金' is not a value of arrears (滞納)"
    assert p.suggestion.startswith("values: resident_tax 住民税, kokuho 国民健康保険料, water 水道料金")


def test_an_arrears_value_with_months_says_where_the_months_go(tmp_path):
    p = only_problem(write(tmp_path, "record: {code: arrears, value: 'kokuho:3'}\n"))
    assert "`{code: arrears, value: kokuho, min: 3}`" in p.suggestion


def test_an_unknown_code_name_suggests_the_nearest_code_or_name(tmp_path):
    p = only_problem(write(tmp_path, "record: {code: 要介護, min: 要介護1}\n"))
    assert p.message == "unknown code '要介護'" and p.suggestion == "did you mean '要介護認定'?"


def test_a_free_text_value_is_not_refused(tmp_path):
    assert check_rules(write(tmp_path, "record: {code: consultation, value: 引きこもり}\n")) == []


# --- Japanese names --------------------------------------------------------------------------
def rules_hash(tmp_path, name, when, severity="high"):
    return load_rules(write(tmp_path, when, severity, name)).hash


def test_kokuho_by_its_japanese_names_gives_the_same_rules_hash(tmp_path):
    codes = rules_hash(tmp_path, "codes", "record: {code: arrears, value: [kokuho, water], min: 3}\n")
    for i, names in enumerate(("[国保, 水道]", "[国民健康保険料, 水道料金]", "[ｋｏｋｕｈｏ, 水道]")):
        when = f"record: {{code: arrears, value: {names}, min: 3}}\n"
        assert rules_hash(tmp_path, f"names{i}", when) == codes, names
    rules = load_rules(tmp_path / "names0")
    assert rules.indicators["a"].when.values == ("kokuho", "water")


def test_a_record_code_by_its_title_and_a_severity_by_its_name_give_the_same_hash(tmp_path):
    codes = rules_hash(tmp_path, "codes", "record: {code: care_level, min: 要介護1}\n", "urgent")
    assert rules_hash(tmp_path, "title", "record: {code: 要介護・要支援認定, min: 要介護１}\n", "緊急") == codes
    assert rules_hash(tmp_path, "short", "record: 要介護認定\n") != codes  # no min: another rule
    assert load_rules(tmp_path / "short").indicators["a"].when.code == "care_level"


def test_an_unknown_severity_name_is_refused_with_the_names(tmp_path):
    p = only_problem(write(tmp_path, "record: care_level\n", severity="至急"))
    assert p.field == "severity" and "urgent 緊急" in p.message


def test_explanations_print_the_japanese_label_of_an_arrears_kind():
    cond = Record(code="arrears", values=("kokuho", "water"), min=3, min_label="3")
    assert describe_record(cond) == "滞納（国民健康保険料・水道料金、3か月以上）の記録がある"


# --- free-text values against the workspace --------------------------------------------------
def test_nearest_values_fold_width_and_kana_and_prefer_frequent_ones():
    seen = {"ひきこもり": 3, "ひきこもり相談": 1, "介護": 10}
    assert nearest_values("引きこもり", seen) == ["ひきこもり", "ひきこもり相談"]
    assert nearest_values("ヒキコモリ", seen)[0] == "ひきこもり"
    assert nearest_values("ごみ", seen) == []


def with_topics(conn, *topics):
    add_household(conn, "HA", person(45, "世帯主", *(("consultation", t) for t in topics)))


def test_a_value_no_record_holds_is_warned_with_the_nearest_that_occur(tmp_path, conn):
    with_topics(conn, "ひきこもり", "介護")
    rules = load_rules(write(tmp_path, "record: {code: consultation, value: [介護, 引きこもり]}\n"))
    (w,) = unseen_value_warnings(rules, values_in_records(conn))
    assert (w.line, w.rule_id, w.field) == (5, "a", "when.value")
    assert "no record of consultation (相談記録) in the workspace has the value '引きこもり'" in w.message
    assert w.suggestion == "did you mean 'ひきこもり'?"


def test_a_value_written_in_another_kana_is_told_as_written_differently(tmp_path, conn):
    with_topics(conn, "ひきこもり")
    rules = load_rules(
        write(tmp_path, "any:\n  - record: care_level\n  - record: {code: consultation, value: ヒキコモリ}\n")
    )
    (w,) = unseen_value_warnings(rules, values_in_records(conn))
    assert w.line == 7
    assert w.message.startswith(
        "'ヒキコモリ' is written differently from the records of consultation (相談記録), which write 'ひきこもり'"
    )


def test_without_any_record_of_the_code_the_value_cannot_be_checked(tmp_path, conn):
    with_topics(conn)
    rules = load_rules(write(tmp_path, "record: {code: waiting_list, value: 特養}\n"))
    (w,) = unseen_value_warnings(rules, values_in_records(conn))
    assert "has no record of waiting_list (入所・利用待ち) at all" in w.message and w.suggestion is None


def test_values_that_occur_and_coded_values_draw_no_warning(conn):
    with_topics(conn, "ごみ", "セルフネグレクト", "DV")
    add_household(conn, "HB", person(40, "世帯主", ("waiting_list", "保育所")))
    assert unseen_value_warnings(load_rules(RULES_DIR), values_in_records(conn)) == []


def dump(workspace) -> list[str]:
    c = sqlite3.connect(workspace / DB_FILENAME)
    try:
        return list(c.iterdump())
    finally:
        c.close()


def test_rules_check_with_a_workspace_warns_exits_0_and_writes_nothing(tmp_path, conn, workspace):
    with_topics(conn, "ひきこもり")
    conn.close()
    rules = write(tmp_path, "record: {code: consultation, value: 引きこもり}\n")
    db, tables = (workspace / DB_FILENAME).read_bytes(), dump(workspace)
    result = runner.invoke(app, ["rules", "check", "--rules", str(rules), "--workspace", str(workspace)])
    assert result.exit_code == 0, result.output
    assert (
        f"warning: {rules / 'indicators.yaml'}:5: rule a [when.value] no record of consultation (相談記録) in the "
        "workspace has the value '引きこもり' (a misspelt value never matches) — did you mean 'ひきこもり'?"
    ) in result.output
    assert result.output.rstrip().splitlines()[-1].startswith("ok: 1 indicators, 1 flags")
    assert (workspace / DB_FILENAME).read_bytes() == db and dump(workspace) == tables  # opened read-only


def test_rules_check_uses_the_default_workspace_only_when_it_exists(tmp_path, conn, workspace, monkeypatch):
    with_topics(conn, "ひきこもり")
    conn.close()
    rules = write(tmp_path, "record: {code: consultation, value: 引きこもり}\n")
    monkeypatch.chdir(tmp_path)  # ./workspace is the default (ENGINE_WORKSPACE unset in the tests)
    assert workspace == tmp_path / "workspace"
    result = runner.invoke(app, ["rules", "check", "--rules", str(rules)])
    assert result.exit_code == 0 and "did you mean 'ひきこもり'?" in result.output
    shutil.rmtree(workspace)
    result = runner.invoke(app, ["rules", "check", "--rules", str(rules)])
    assert result.exit_code == 0 and "ひきこもり" not in result.output


def test_rules_check_refuses_a_workspace_given_without_a_database(tmp_path):
    result = runner.invoke(app, ["rules", "check", "--rules", str(RULES_DIR), "--workspace", str(tmp_path / "none")])
    assert result.exit_code != 0 and "no database there" in result.output
