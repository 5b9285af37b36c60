"""`engine report` on the small town with the shipped configuration and a report.yaml of its own:
text, JSON, CSV, XLSX (opened with openpyxl: the same figures), --trace, and report.yaml's
problems located (file, line, field)."""

from __future__ import annotations

import csv
import json
import re
import shutil
from pathlib import Path

import openpyxl
import pytest
from typer.testing import CliRunner

from engine.cli.main import app
from engine.report.build import ZERO_WARNING
from engine.report.figures import FIGURES
from engine.report.model import ReportInvalid, load_report
from tests.helpers.paths import CONFIG_DIR, RULES_DIR

runner = CliRunner()
ROOT = Path(__file__).resolve().parents[2]
REPORT_YAML = """\
form: テスト市 実施状況
population: {count: 20000, as_of: 2026-04-01}
community_categories: [居場所]
figures:
  - id: new_cases
    label: 新規相談受付件数
    target: {value: 20}
  - id: support_meetings
  - id: plans
    label: プラン作成件数
  - id: outreach
"""


@pytest.fixture
def config(tmp_path):
    folder = tmp_path / "configs"
    shutil.copytree(CONFIG_DIR, folder, ignore=shutil.ignore_patterns("rules", "schemas"))
    (folder / "report.yaml").write_text(REPORT_YAML, encoding="utf-8")
    return folder


def run(workspace, config, *args):
    result = runner.invoke(
        app, ["report", *args, "--workspace", str(workspace), "--rules", str(RULES_DIR), "--config", str(config)]
    )
    return result


def test_the_text_report_lists_the_forms_lines_per_100k_and_warnings(small_town, workspace, config):
    result = run(workspace, config, "--month", "2027-03")
    assert result.exit_code == 0, result.output
    out = result.output
    assert out.startswith(
        "テスト市 実施状況　令和9年3月分（2027-03-01〜2027-03-31）\n人口: 20,000人（住民基本台帳、2026-04-01 現在）"
    )
    figures = re.findall(r"^  (\S+?)　*\s+(\d+)(件|回)  10万人あたり (\S+)", out, re.M)
    assert figures == [
        ("新規相談受付件数", "2", "件", "10"),
        ("支援会議の開催回数", "1", "回", "5"),
        ("プラン作成件数", "2", "件", "10"),
        ("アウトリーチ件数", "2", "件", "10"),
    ]
    assert "⚠ 新規相談受付件数: 目安値（人口10万人あたり 20）を下回っています" in out
    assert ZERO_WARNING not in out
    feb = run(workspace, config, "--month", "2027-02").output
    assert feb.count(ZERO_WARNING) == 4


def test_json_gives_month_and_year(small_town, workspace, config):
    result = run(workspace, config, "--month", "2027-03", "--year", "2026", "--format", "json")
    assert result.exit_code == 0, result.output
    month, year = json.loads(result.output)
    assert (month["period"], year["period"]) == ("令和9年3月分", "令和8年度")
    assert {x["id"]: x["count"] for x in year["lines"]} == {
        k: small_town.YEAR[k] for k in ("new_cases", "support_meetings", "plans", "outreach")
    }
    assert year["lines"][0]["target"] == 240


def test_the_xlsx_opens_with_the_same_figures(small_town, workspace, config, tmp_path):
    out = tmp_path / "report.xlsx"
    result = run(workspace, config, "--month", "2027-03", "--year", "2026", "--format", "xlsx", "--out", str(out))
    assert result.exit_code == 0, result.output
    book = openpyxl.load_workbook(out)
    assert book.sheetnames == ["令和9年3月分", "令和8年度", "定義"]
    for sheet, expected in (("令和9年3月分", small_town.MARCH), ("令和8年度", small_town.YEAR)):
        rows = list(book[sheet].iter_rows(values_only=True))
        assert rows[0][:4] == ("項目ID", "項目", "期間", "件数")
        assert {r[0]: r[3] for r in rows[1:]} == {
            k: expected[k] for k in ("new_cases", "support_meetings", "plans", "outreach")
        }
        assert {r[0]: r[5] for r in rows[1:]}["new_cases"] == expected["new_cases"] * 100_000 / 20_000
    defined = {r[0] for r in book["定義"].iter_rows(min_row=2, values_only=True)}
    assert defined == {f.id for f in FIGURES}


def test_the_csv_has_the_same_figures(small_town, workspace, config, tmp_path):
    out = tmp_path / "report.csv"
    assert run(workspace, config, "--month", "2027-03", "--format", "csv", "--out", str(out)).exit_code == 0
    rows = list(csv.reader(out.read_text(encoding="utf-8-sig").splitlines()))
    assert {r[0]: int(r[3]) for r in rows[1:]} == {
        k: small_town.MARCH[k] for k in ("new_cases", "support_meetings", "plans", "outreach")
    }


def test_trace_lists_the_ids_of_one_figure(small_town, workspace, config):
    result = run(workspace, config, "--trace", "plans", "--year", "2026")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "プラン（支援方針）作成件数（plans）　令和8年度: 3件"
    assert lines[1:] == ["事案\t会議", "C1\tMM1", "C1\tMS1", "C3\tMM2"]
    wrong = run(workspace, config, "--trace", "plan", "--month", "2027-03")
    assert wrong.exit_code == 2 and "did you mean 'plans'" in wrong.output


def test_a_period_is_required_and_checked(small_town, workspace, config):
    assert run(workspace, config).exit_code == 2
    bad = run(workspace, config, "--month", "2027-13")
    assert bad.exit_code != 0 and "YYYY-MM" in bad.output


def test_without_report_yaml_every_figure_shows_population_unset(small_town, workspace, config):
    (config / "report.yaml").unlink()
    result = run(workspace, config, "--month", "2027-03")
    assert result.exit_code == 0, result.output
    assert result.output.count("人口未設定") == len(FIGURES) + 1  # each line, and the population line


@pytest.mark.parametrize(
    "old, new, line, field, message",
    [
        ("  - id: plans\n", "  - id: plan\n", 9, "figures.id", "unknown figure 'plan' — did you mean 'plans'?"),
        (
            "  - id: outreach\n",
            "  - id: new_cases\n",
            11,
            "figures.id",
            "figure 'new_cases' is listed twice (also line 5)",
        ),
        ("{value: 20}", "{value: 20, basis: per_month}", 7, "figures.target.basis", "Input should be"),
        ("count: 20000", "count: 0", 2, "population.count", "greater than or equal to 1"),
        ("[居場所]", "[居所]", 3, "community_categories", "unknown category '居所'"),
        ("form:", "title:", 1, "title", "unknown field 'title'"),
    ],
)
def test_report_yaml_problems_are_located(config, old, new, line, field, message):
    path = config / "report.yaml"
    path.write_text(REPORT_YAML.replace(old, new), encoding="utf-8")
    with pytest.raises(ReportInvalid) as err:
        load_report(config)
    (problem,) = err.value.problems
    assert (problem.file, problem.line, problem.field) == (str(path), line, field)
    assert message in str(problem)


def test_the_shipped_report_yaml_loads():
    settings = load_report(CONFIG_DIR)
    assert settings.population and [c.id for c in settings.figures][0] == "new_cases"


def test_docs_define_every_figure():
    text = (ROOT / "docs" / "report.md").read_text(encoding="utf-8")
    for figure in FIGURES:
        assert f"`{figure.id}`" in text, figure.id
        assert figure.label in text, figure.label


@pytest.mark.parametrize("fmt", ["csv", "xlsx", "json"])
def test_out_naming_a_folder_is_refused_and_nothing_is_left_beside_it(small_town, workspace, config, tmp_path, fmt):
    """Found by a review: a folder as --out ended in a traceback and left reports.tmp, a copy of
    the report, beside it. A file in a folder not yet made is written there, in every format."""
    folder = tmp_path / "reports"
    folder.mkdir()
    result = run(workspace, config, "--month", "2027-03", "--format", fmt, "--out", str(folder))
    assert result.exit_code == 2 and "is a folder" in result.output, (result.output, repr(result.exception))
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith("reports")) == ["reports"]
    assert list(folder.iterdir()) == []
    out = tmp_path / "new" / f"report.{fmt}"
    assert run(workspace, config, "--month", "2027-03", "--format", fmt, "--out", str(out)).exit_code == 0
    assert out.stat().st_size > 0 and oct((tmp_path / "new").stat().st_mode & 0o777) == "0o700"


def test_a_file_that_cannot_take_the_place_of_its_target_leaves_no_copy(tmp_path):
    from engine.support.private_files import write_private

    (tmp_path / "taken").mkdir()
    with pytest.raises(OSError):
        write_private(tmp_path / "taken", "人に見せない内容")
    assert [p.name for p in tmp_path.iterdir()] == ["taken"]


def test_a_write_that_fails_leaves_no_temporary_copy(tmp_path):
    from engine.support.private_files import write_private

    with pytest.raises(UnicodeEncodeError):
        write_private(tmp_path / "report.txt", "人に見せない内容\udcff")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    ("old", "new", "told"),
    [
        ("count: 20000", "count: 0", "[population.count] Input should be greater than or equal to 1"),
        ("count: 20000", "count: 5万", "[population.count] Input should be a valid integer"),
        ("  - id: plans\n", "  - id: plan\n", "figure plan [figures.id] unknown figure 'plan' — did you mean 'plans'?"),
        ("  - id: outreach\n", "  - id: new_cases\n", "[figures.id] figure 'new_cases' is listed twice (also line 5)"),
        ("{value: 20}", "{value: 20, basis: per_1k}", "figure new_cases [figures.target.basis] Input should be"),
    ],
)
def test_config_check_tells_report_yamls_problems_as_engine_report_does(small_town, workspace, config, old, new, told):
    """Found by a review: `config check` said ok, then `engine report` refused the same folder."""
    (config / "report.yaml").write_text(REPORT_YAML.replace(old, new), encoding="utf-8")
    check = runner.invoke(app, ["config", "check", "--config", str(config), "--rules", str(RULES_DIR)])
    refused = run(workspace, config, "--month", "2027-03")
    assert refused.exit_code == 2 and check.exit_code != 0, (refused.output, check.output)
    (problem,) = [line.strip() for line in refused.output.splitlines() if "report.yaml:" in line]
    assert problem.startswith(f"{config / 'report.yaml'}:") and told in problem
    assert problem in check.output.splitlines() and "ok:" not in check.output
    assert "1 problem(s)" in check.output


def test_config_check_counts_report_yamls_figures(config):
    check = runner.invoke(app, ["config", "check", "--config", str(config), "--rules", str(RULES_DIR)])
    assert check.exit_code == 0 and "4 report figures" in check.output, check.output
