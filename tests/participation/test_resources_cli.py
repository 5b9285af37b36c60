"""`engine resources check|list` and `engine match CASE` as a coordinator types them."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from engine.cli.main import app
from tests.helpers.casework import open_cases
from tests.helpers.configs import configs, line_of
from tests.helpers.matching import STALE, config_with, place, write_directory
from tests.helpers.paths import CONFIG_DIR, RULES_DIR
from tests.helpers.town import ON, add_household, person

runner = CliRunner()


def engine(*args: str):
    return runner.invoke(app, [*args, "--rules", str(RULES_DIR), "--date", ON.isoformat()])


def test_check_the_shipped_directory(tmp_path):
    r = engine("resources", "check", "--config", str(CONFIG_DIR), "--workspace", str(tmp_path / "none"))
    assert r.exit_code == 0, r.output
    assert r.output.startswith("ok: 40 places (")
    assert "matching rules" in r.output and "stale on 2026-11-27" in r.output


def test_check_tells_a_problem_with_file_line_and_field(tmp_path):
    d = configs(tmp_path, under="c1")
    write_directory(d, [place("ib1"), place("ib2", category="studying")])
    r = engine("resources", "check", "--config", str(d), "--workspace", str(tmp_path / "none"))
    assert r.exit_code == 1
    (first,) = [line for line in r.output.splitlines() if "unknown category" in line]
    assert "unknown category 'studying'" in first and "[places.category]" in first
    assert f"resources.yaml:{line_of(d / 'resources.yaml', 'category: studying')}" in first
    assert "problem(s) in" in r.output


def test_check_areas_against_the_workspace(tmp_path, conn, workspace, rules):
    add_household(conn, "H1", person(40), area="中央")
    add_household(conn, "H2", person(40), area="北部")
    d, _ = config_with(tmp_path, rules, [place("ib1", area="中央区"), place("ib2", area="全域"), place("ib3")])
    r = engine("resources", "check", "--config", str(d), "--workspace", str(workspace))
    assert r.exit_code == 1
    assert "place 'ib1' (場所ib1): area '中央区' is not an area of the workspace's households" in r.output
    assert "did you mean '中央'?" in r.output
    assert "ib2" not in r.output and "ib3" not in r.output
    d, _ = config_with(tmp_path / "ok", rules, [place("ib1"), place("ib2", area="全域", assured_on=STALE)])
    r = engine("resources", "check", "--config", str(d), "--workspace", str(workspace))
    assert r.exit_code == 0, r.output
    assert r.output.startswith("ok: 2 places (2 active), 3 matching rules, 1 stale on 2026-11-27")


def test_list_filters_by_area_and_category_code_or_label(tmp_path, rules):
    places = [
        place("ib_chuo"),
        place("ib_all", area="全域", assured_on=STALE),
        place("ib_minato", area="港"),
        place("sa_chuo", "salon", available=0),
    ]
    d, _ = config_with(tmp_path, rules, places)
    args = ("resources", "list", "--config", str(d), "--workspace", str(tmp_path / "none"))
    r = engine(*args, "--area", "中央", "--category", "居場所", "--json")
    assert r.exit_code == 0, r.output
    rows = json.loads(r.output)
    assert [row["place_id"] for row in rows] == ["ib_chuo", "ib_all"]  # by category, area, id
    assert [row["stale"] for row in rows] == [False, True]
    assert (
        engine(*args, "--category", "ibasho", "--json").output == engine(*args, "--category", "居場所", "--json").output
    )
    text = engine(*args, "--area", "中央").output
    assert text.splitlines()[0] == "名称  運営  種類  地区  日程  空き/定員  最終確認"
    (stale,) = [line for line in text.splitlines() if line.startswith("場所ib_all")]
    assert stale.endswith("「情報が古い」") and "居場所  全域  毎週火曜 13:00〜16:00  2/10" in stale
    (full,) = [line for line in text.splitlines() if line.startswith("場所sa_chuo")]
    assert "サロン・通いの場" in full and "  0/10  " in full
    assert "ib_minato" not in text and "場所ib_minato" not in text
    assert text.splitlines()[-1] == "計 3か所（うち情報が古いもの 1か所: 12か月以上未確認）"


def test_list_refuses_an_unknown_category(tmp_path):
    r = engine("resources", "list", "--config", str(CONFIG_DIR), "--category", "居場", "--workspace", str(tmp_path))
    assert r.exit_code == 2
    assert "--category: unknown category '居場'" in r.output and "居場所" in r.output


def test_match_prints_the_explained_proposals(tmp_path, conn, workspace, rules, cfg):
    (case_id, _), *_ = open_cases(conn, workspace, rules, cfg)
    d, _ = config_with(tmp_path, rules, [place("ib_a", available=0), place("ib_b", consent_required=True)])
    args = ("match", case_id, "--config", str(d), "--workspace", str(workspace))
    r = engine(*args)
    assert r.exit_code == 0, r.output
    lines = r.output.splitlines()
    assert lines[0].startswith(f"事案 {case_id} — 参加支援の候補（令和8年11月27日（金）時点）")
    assert any(line.startswith("■ 世帯員2（50代・子） — 本人の状態: ") for line in lines)
    assert "  ◆ 居場所" in lines
    assert "    1. 場所ib_a（運営ib_a）" in lines  # suitable (no consent needed), though full
    assert "    2. 場所ib_b（運営ib_b） ※条件に合わない点があります" in lines
    assert "       ✘ 定員: 空きなし（空き待ちの可能性） — 定員10人、" in r.output
    assert "       ✘ 本人同意: 受入れに本人の同意が必要ですが、同意の記録がありません" in lines
    assert "       ✔ 紹介の実績なし" in lines
    assert "試験" not in r.output  # no name
    data = json.loads(engine(*args, "--json").output)
    assert [m["member"]["label"] for m in data] == ["世帯員1（80代・世帯主）", "世帯員2（50代・子）"]
    son = data[1]["categories"][0]
    assert son["category"] == "ibasho" and [p["place_id"] for p in son["places"]] == ["ib_a", "ib_b"]


def test_match_refuses_an_unknown_case(conn, workspace):
    r = engine("match", "C-NONE", "--config", str(CONFIG_DIR), "--workspace", str(workspace))
    assert r.exit_code == 2
    assert "事案 C-NONE はありません" in r.output
