"""`engine explain`: Japanese reasons for a flag, or for a rule that did not fire; no personal data."""

from typer.testing import CliRunner

from engine.cli.main import app
from engine.screening.explain import explain
from engine.screening.screen import screen
from tests.helpers.paths import ROOT
from tests.helpers.town import ON, add_household, person

RULES = str(ROOT / "configs" / "rules")


def setup_town(conn, workspace, rules):
    elder = person(82, "世帯主", ("care_level", "要介護2"), pid="P8050A")
    son = person(52, "子", sex="M", pid="P8050B")
    add_household(conn, "H8050", elder, son)
    working = person(52, "子", ("earned_income", "2400000"), pid="PWORK")
    add_household(conn, "HWORK", person(82, "世帯主", ("care_level", "要介護2"), pid="PELD2"), working)
    screen(conn, workspace, rules, ON, full=True)


def test_explains_why_flagged(conn, workspace, rules):
    setup_town(conn, workspace, rules)
    text = explain(conn, rules, "H8050", ON)
    assert "世帯 H8050" in text and "2026-11-27 時点" in text
    assert "■ 該当: 8050世帯" in text and "[8050 第1版・重要度 高]" in text
    assert "✔ 世帯員に「要介護・要支援認定のある75歳以上」がいる — 該当 1人" in text
    assert "P8050A（82歳・世帯主）" in text and "要介護2（2024-04-01〜）" in text
    assert "✔ 世帯員に「就労収入・サービス利用のない40〜64歳（世帯主または子）」がいる" in text
    assert "記録されているフラグ: 8050（第1版、継続中 2026-11-27〜）" in text
    assert "非該当のフラグ" in text and "✘ double_care" in text


def test_explains_why_a_rule_did_not_fire(conn, workspace, rules):
    setup_town(conn, workspace, rules)
    text = explain(conn, rules, "HWORK", ON, "8050")
    assert "■ 非該当: 8050世帯" in text
    assert "✘ 世帯員に「就労収入・サービス利用のない40〜64歳（世帯主または子）」がいる — 該当者なし" in text
    assert "✘ 給与・事業収入（1円/年以上）の記録がない — 該当記録 1件" in text


def test_explain_shows_no_personal_data(conn, workspace, rules):
    setup_town(conn, workspace, rules)
    text = explain(conn, rules, "H8050", ON)
    for secret in ("試験", "シケン", "テスト町", "1944-04-01", "1974-04-01"):
        assert secret not in text


def test_cli_explain_and_errors(conn, workspace, rules):
    setup_town(conn, workspace, rules)
    runner = CliRunner()
    ok = runner.invoke(app, ["explain", "H8050", "--workspace", str(workspace), "--rules", RULES, "--rule", "8050"])
    assert ok.exit_code == 0 and "■ 該当: 8050世帯" in ok.output
    missing = runner.invoke(app, ["explain", "H9999", "--workspace", str(workspace), "--rules", RULES])
    assert missing.exit_code == 2 and "household 'H9999' is not in the database" in missing.output
    typo = runner.invoke(app, ["explain", "H8050", "--workspace", str(workspace), "--rules", RULES, "--rule", "8005"])
    assert typo.exit_code == 2 and "unknown rule '8005'" in typo.output and "did you mean '8050'?" in typo.output
