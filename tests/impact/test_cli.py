"""`engine rules diff` / `engine config diff` as typed: a folder, a git revision, a bad --against."""

from __future__ import annotations

import json
import shutil
import subprocess

from typer.testing import CliRunner

from engine.cli.main import app
from tests.helpers.paths import CONFIG_DIR, RULES_DIR
from tests.impact.town import LOWER_TO_2, SHAKYO, arrears_town, candidate, fingerprint, screened

runner = CliRunner()


def engine(*args: str):
    return runner.invoke(app, list(args))


def _git(cwd, *args):
    subprocess.run(["git", "-C", str(cwd), *args], check=True, capture_output=True)


def test_rules_diff_against_a_folder_in_japanese_and_json(conn, workspace, rules, tmp_path):
    arrears_town(conn)
    screened(conn, workspace, rules)
    conn.close()
    before = fingerprint(workspace)
    folder = candidate(tmp_path, LOWER_TO_2) / "rules"
    common = ["--against", str(folder), "--workspace", str(workspace), "--rules", str(RULES_DIR)]
    out = engine("rules", "diff", *common)
    assert out.exit_code == 0, out.output
    assert "■ multiple_arrears" in out.output and "+1 世帯 / −0 世帯（1 → 2 世帯）" in out.output
    assert "  + HA2（地区: 北部）" in out.output and "何も書き込んでいません。" in out.output
    data = json.loads(engine("rules", "diff", *common, "--json").output)
    assert [h["household_id"] for h in data["flags"][0]["gained"]] == ["HA2"]
    assert fingerprint(workspace) == before


def test_config_diff_against_a_folder(conn, workspace, rules, cfg, tmp_path):
    arrears_town(conn)
    screened(conn, workspace, rules, cfg)
    conn.close()
    folder = candidate(tmp_path, LOWER_TO_2, SHAKYO, triage=True)
    out = engine(
        "config", "diff", "--against", str(folder), "--workspace", str(workspace),
        "--rules", str(RULES_DIR), "--config", str(CONFIG_DIR),
    )  # fmt: skip
    assert out.exit_code == 0, out.output
    assert "候補のフォルダの規則は現在の規則と異なります" in out.output
    # with the shipped triage rules an arrears-only household is watched, not convened: its pathway shows
    assert "■ 新しい事案（世帯 HA2）" in out.output
    assert "振り分け: なし → 経過観察（期日に再確認）" in out.output and "振り分け規則 arrears_only" in out.output


def test_rules_diff_against_a_git_revision_of_the_rules_folder(conn, workspace, rules, tmp_path):
    """The live rules are the lowered threshold; HEAD holds the shipped one: HA2 would be lost."""
    arrears_town(conn)
    screened(conn, workspace, rules)
    conn.close()
    repo = tmp_path / "repo"
    shutil.copytree(CONFIG_DIR, repo / "configs")
    _git(repo, "init", "-q")
    _git(repo, "add", ".")
    _git(repo, "-c", "user.name=t", "-c", "user.email=t@example.jp", "commit", "-q", "-m", "shipped")
    flags = repo / "configs" / "rules" / "flags.yaml"
    flags.write_text(flags.read_text(encoding="utf-8").replace(*LOWER_TO_2[1:]), encoding="utf-8")
    live = str(repo / "configs" / "rules")
    out = engine(
        "rules", "diff", "--against", "HEAD", "--workspace", str(workspace), "--rules", live, "--date", "2026-11-27"
    )
    assert out.exit_code == 0, out.output
    assert "+0 世帯 / −1 世帯（2 → 1 世帯）" in out.output and "  − HA2（地区: 北部）" in out.output
    bad = engine("rules", "diff", "--against", "no-such-rev", "--workspace", str(workspace), "--rules", live)
    assert bad.exit_code == 2 and "no such revision in the git repository" in bad.output
    assert list(tmp_path.glob("engine-candidate-*")) == []


def test_a_bad_against_is_refused_with_the_reason(conn, workspace, rules, tmp_path):
    arrears_town(conn)
    screened(conn, workspace, rules)
    conn.close()
    outside = tmp_path / "plain"
    shutil.copytree(RULES_DIR, outside)  # not a git checkout
    out = engine("rules", "diff", "--against", "HEAD~1", "--workspace", str(workspace), "--rules", str(outside))
    assert out.exit_code == 2 and "is not in a git checkout" in out.output and "give the folder" in out.output
    broken = candidate(
        tmp_path,
        (
            "rules/flags.yaml",
            "    severity: medium\n    silos: [困窮]\n    version: 1\n    when:\n      distinct_values:",
            "    severity: mediun\n    silos: [困窮]\n    version: 1\n    when:\n      distinct_values:",
        ),
    )
    out = engine("rules", "diff", "--against", str(broken), "--workspace", str(workspace), "--rules", str(RULES_DIR))
    assert out.exit_code == 1
    assert "flags.yaml:" in out.output and "severity" in out.output and "nothing was compared" in out.output
