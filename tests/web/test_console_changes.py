"""変更の影響 (/changes): the coordinator picks a candidate folder configured in web.yaml
(`candidate_dirs`) and sees the rules diff and the config diff against the live configuration —
a lowered arrears threshold, one more agency — with nothing written; a folder not configured is
refused (no path is taken from the request), a missing or broken one shows its located problems."""

from __future__ import annotations

import html as htmllib
import re
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from engine.web.app import create_app
from tests.helpers.conference import conference_only
from tests.helpers.configs import configs, line_of, problems
from tests.helpers.console import login
from tests.helpers.paths import ROOT
from tests.helpers.town import add_household, person
from tests.impact.town import (
    INCOME,
    LOWER_TO_2,
    SHAKYO,
    arrears_town,
    candidate,
    closed_by_assessment,
    fingerprint,
    screened,
)

WEB_YAML = """candidate_dirs:
  - ../taino2
  - {shakyo}
  - ../nai
  - ../kowareta
"""


@pytest.fixture
def live(tmp_path) -> Path:
    """A live configuration folder with four candidates: the arrears threshold lowered to 2 months,
    one more agency (written as an absolute path), a folder that is missing, a broken one."""
    no_triage = ("triage_rules.yaml",)  # the page's lead and meeting rows are a conference's (tests/impact/conftest.py)
    folder = configs(tmp_path, under="live", delete=no_triage)
    shakyo = candidate(tmp_path, SHAKYO).rename(tmp_path / "shakyo")
    configs(tmp_path, LOWER_TO_2, under="taino2", delete=no_triage)
    configs(tmp_path, under="kowareta", delete=no_triage)
    broken = tmp_path / "kowareta" / "agencies.yaml"
    text = broken.read_text(encoding="utf-8")
    broken.write_text(text.replace("    member: true\n", "    member: maybe\n", 1), encoding="utf-8")
    (folder / "web.yaml").write_text(WEB_YAML.format(shakyo=shakyo), encoding="utf-8")
    return folder


@pytest.fixture
def app(workspace, conn, live):
    return create_app(workspace, live / "rules", live)


def tables(conn) -> dict:
    """Every table's rows (the workspace as the engine sees it)."""
    names = [n for (n,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    return {n: sorted(map(repr, conn.execute(f'SELECT * FROM "{n}"'))) for n in names}


def text_of(html: str) -> str:
    return htmllib.unescape(re.sub(r"<[^>]+>", "", html))


def test_a_lowered_arrears_threshold_shows_the_household_it_adds_and_writes_nothing(console, conn, workspace, rules):
    arrears_town(conn)
    screened(conn, workspace, rules)
    before_rows, before_bytes = tables(conn), fingerprint(workspace)
    r = console.get("/changes", params={"candidate": "0"})
    assert r.status_code == 200
    page = text_of(r.text)
    assert "候補「taino2」" in page
    assert "令和8年11月27日（金） 時点のデータ" in page  # the last screening date, in 和暦
    assert "複数の滞納（3か月以上の滞納が2種類以上） 変更される規則 第1版" in page  # by title and label
    assert "対象になる世帯 1、外れる世帯 0（1 世帯 → 2 世帯）" in page
    assert "＋ 世帯 HA2（地区: 北部）" in page
    assert "変更後: ✔ 該当" in page and "現在: ✘ 非該当" in page and "2か月以上" in page
    assert "設定の変更の影響" in page and "候補の規則は現在の規則と異なります" in page
    assert "主担当機関" in page and "自立相談支援機関（くらし相談窓口）" in page  # HA2's case the next night opens
    assert "未定令和8年12月4日（金） 10:00" in page  # its meeting, in 和暦
    assert tables(conn) == before_rows and fingerprint(workspace) == before_bytes  # nothing written


def test_one_more_agency_shows_the_cases_it_would_change(console, conn, workspace, rules, cfg):
    arrears_town(conn)
    screened(conn, workspace, rules, conference_only(cfg))
    case_id = conn.execute("SELECT case_id FROM cases WHERE household_id = 'HA3'").fetchone()[0]
    add_household(conn, "HB", person(55, "世帯主", ("arrears", "kokuho:6"), ("arrears", "rent:3"), INCOME), area="南部")
    screened(conn, workspace, rules)
    before_rows, before_bytes = tables(conn), fingerprint(workspace)
    r = console.get("/changes", params={"candidate": "shakyo"})  # by its folder name
    assert r.status_code == 200
    page = text_of(r.text)
    assert "候補「shakyo」" in page
    assert "候補のフォルダに規則（rules/）がないため、規則は現在のままです。" not in page  # it has rules/ (a copy)
    assert "該当する世帯が変わるフラグはありません。" in page
    assert "次の夜間処理で開始される事案: 1 件" in page
    assert re.search(
        r"新しい事案\s*HB\s*主担当機関\s*自立相談支援機関（くらし相談窓口）（規則 \S+）\s*社会福祉協議会", page
    )
    assert "社会福祉協議会（困窮分野）を招集" in page
    assert f'href="/cases/{case_id}"' in r.text  # an open case, linked
    assert "kodomo_center" not in page and "shakyo@" not in page  # agencies by name, no addresses
    assert tables(conn) == before_rows and fingerprint(workspace) == before_bytes  # nothing written


def test_a_case_closed_under_watch_is_left_as_it_is(console, conn, workspace, rules):
    """An agency's assessment closed the case (終結（見守り中）, in no meeting): the page compares
    (it used to fail, the replay moving the case to 会議に付議) and changes nothing of it."""
    case_id = closed_by_assessment(conn, workspace, rules)
    before_rows, before_bytes = tables(conn), fingerprint(workspace)
    r = console.get("/changes", params={"candidate": "shakyo"})
    assert r.status_code == 200
    page = text_of(r.text)
    assert "事案 1 件を比べました" in page
    assert "主担当機関・招集する機関・会議の種類・会議が変わる事案はありません。" in page and case_id not in page
    assert tables(conn) == before_rows and fingerprint(workspace) == before_bytes  # nothing written


def test_the_picker_lists_the_configured_candidates_and_refuses_anything_else(console, conn):
    page = text_of(console.get("/changes").text)
    assert "taino2（../taino2）" in page and "nai（../nai）" in page
    for given in ("4", "99", "live", "../taino2", "/etc", str(Path("/tmp")), "-1", "configs"):
        r = console.get("/changes", params={"candidate": given})
        assert r.status_code == 400, given
        assert "candidate_dirs にありません" in text_of(r.text)


def test_a_missing_or_broken_candidate_shows_its_problems(console, conn, workspace, rules, tmp_path):
    arrears_town(conn)
    screened(conn, workspace, rules)
    r = console.get("/changes", params={"candidate": "nai"})
    assert r.status_code == 200
    assert "候補のフォルダがありません。" in text_of(r.text) and "candidate_dirs" in r.text
    r = console.get("/changes", params={"candidate": "3"})
    assert r.status_code == 200
    page = text_of(r.text)
    assert "候補のフォルダに問題が 1 件あります。直すまで比較しません。" in page
    line = line_of(tmp_path / "kowareta" / "agencies.yaml", "member: maybe")
    row = re.search(r"<tr><td>agencies\.yaml</td><td>(\d+)</td><td>([^<]+)</td>", r.text)
    assert row and int(row.group(1)) == line and "member" in row.group(2)


def test_a_workspace_never_screened_is_told_not_failed(console):
    r = console.get("/changes", params={"candidate": "0"})
    assert r.status_code == 200 and "まだスクリーニングしていない" in text_of(r.text)


def test_without_candidates_the_page_says_how_to_configure_one(workspace, conn, coordinator):
    app = create_app(workspace, ROOT / "configs" / "rules", ROOT / "configs")
    with TestClient(app, base_url="http://127.0.0.1:8300") as client:
        login(client)
        r = client.get("/changes")
        assert r.status_code == 200
        page = text_of(r.text)
        assert "候補のフォルダが設定されていません" in page and "configs/web.yaml" in page
        assert "candidate_dirs:\n  - ../kouho-taino2" in page
        assert client.get("/changes", params={"candidate": "0"}).status_code == 400


def test_login_is_required(client, coordinator):
    r = client.get("/changes", params={"candidate": "0"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login?next=")


def test_candidate_dirs_are_checked_where_they_are_written(tmp_path, rules):
    folder = configs(tmp_path)
    (folder / "web.yaml").write_text("candidate_dirs:\n  - ../a/kouho\n  - /srv/kouho\n", encoding="utf-8")
    (p,) = problems(folder, rules)
    assert Path(p.file).name == "web.yaml" and p.line == 1 and "candidate_dirs" in p.field
    assert "two candidate folders are named 'kouho'" in p.message
    (folder / "web.yaml").write_text("candidate_dirs: ['..']\n", encoding="utf-8")
    assert "no folder name of its own" in problems(folder, rules)[0].message
