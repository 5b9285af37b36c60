"""`engine areas`: the text summary, JSON, and the CSV and XLSX exports hold the figures counted by
hand in test_figures.py (the town of tests/region/town.py, --months 2 up to 2026-11-27)."""

from __future__ import annotations

import csv
import io
import json

import openpyxl
from typer.testing import CliRunner

from engine.cli.main import app
from tests.helpers.paths import RULES_DIR
from tests.region.town import MONTHS, ON

runner = CliRunner()


def areas(workspace, config_dir, *args):
    return runner.invoke(
        app,
        [
            "areas",
            "--date",
            ON.isoformat(),
            "--months",
            str(MONTHS),
            "--workspace",
            str(workspace),
            "--rules",
            str(RULES_DIR),
            "--config",
            str(config_dir),
            *args,
        ],
    )


def test_xlsx_holds_the_figures(town_conn, directory, workspace, tmp_path):
    """The sheets: 地区別・月別 (中央 2026-10: 4 households, 3 flagged = 750.0 per 1,000, 3 cases, 2
    conferenced, median 6.5, 3 needs, 1 without place, 1 not eligible), パターン別 (北部 2026-11
    8050: 1 = 500.0), 社会資源 (中央 居場所: 2 places, 1 free, 1 stale), 資源開発の候補 (1: 北部 介護
    する家族の休息・交流, 3)."""
    out = tmp_path / "areas.xlsx"
    r = areas(workspace, directory[0], "--format", "xlsx", "--out", str(out))
    assert r.exit_code == 0, r.output
    book = openpyxl.load_workbook(out)
    assert book.sheetnames == ["地区別・月別", "パターン別", "社会資源", "資源開発の候補"]
    monthly = [list(row) for row in book["地区別・月別"].iter_rows(values_only=True)]
    head = monthly[0]
    row = dict(zip(head, next(r for r in monthly if r[0] == "中央" and r[1] == "2026-10")))
    assert row["世帯数"] == 4 and row["フラグのある世帯"] == 3 and row["フラグのある世帯（1,000世帯あたり）"] == 750.0
    assert row["開始した事案"] == 3 and row["うち会議を開いた事案"] == 2
    assert row["フラグから初回会議までの営業日数（中央値）"] == 6.5
    assert row["記録した参加支援のニーズ"] == 3 and row["紹介先のないニーズ"] == 1
    assert row["受入れ不可（対象に当てはまらない）"] == 1 and row["受入れ不可（定員に空きがない）"] == 0
    patterns = [list(r) for r in book["パターン別"].iter_rows(values_only=True)]
    title = next(p[2] for p in patterns[1:] if p[2].startswith("8050世帯"))
    assert ["北部", "2026-11", title, 2, 1, 500.0] in patterns
    places = [list(r) for r in book["社会資源"].iter_rows(values_only=True)]
    assert ["中央", "居場所", 2, 0, 1, 1, 1] in places
    cands = [list(r) for r in book["資源開発の候補"].iter_rows(values_only=True)]
    assert cands[1][:4] == [1, "北部", "介護する家族の休息・交流", 3]
    assert cands[2][:4] == [2, "中央", "人とのつながり・居場所", 3] and len(cands) == 5


def test_csv_holds_the_same_figures(town_conn, directory, workspace, tmp_path):
    """The CSV (UTF-8 with a BOM) has the four tables as sections, with the same rows as the XLSX."""
    out = tmp_path / "areas.csv"
    r = areas(workspace, directory[0], "--format", "csv", "--out", str(out))
    assert r.exit_code == 0, r.output
    raw = out.read_bytes()
    assert raw.startswith("\ufeff".encode())
    rows = list(csv.reader(io.StringIO(raw.decode("utf-8-sig"))))
    assert ["【資源開発の候補】"] in rows and ["【地区別・月別】"] in rows
    assert ["中央", "2026-11", "4", "2", "500.0", "1", "1", "5.0", "3", "2", "1", "1", "1", "0", "1", "0"] in rows
    assert ["北部", "2026-10", "2", "0", "0.0", "0", "0", "", "0", "0", "0", "0", "0", "0", "0", "0"] in rows
    assert ["中央", "居場所", "2", "0", "1", "1", "1"] in rows
    cand = next(r for r in rows if r[:2] == ["3", "中央"])
    assert cand[2:4] == ["介護する家族の休息・交流", "1"] and cand[8:] == ["サロン・通いの場", "0", "0", "0"]


def test_text_summary_and_json(town_conn, directory, workspace):
    """The text names areas, patterns by title and needs by label (no household ids); JSON has the figures."""
    r = areas(workspace, directory[0])
    assert r.exit_code == 0, r.output
    text = r.output
    assert "■ 中央（4 世帯）" in text and "■ 北部（2 世帯）" in text
    assert "2026-11 のフラグのある世帯: 2 世帯（1,000世帯あたり 500.0）" in text
    assert "孤立した高齢者" in text
    assert "1. 北部「介護する家族の休息・交流」3 件" in text
    assert not any(h in text for h in ("C1", "C2", "N1", "試験 太郎", "テスト町"))
    r = areas(workspace, directory[0], "--format", "json")
    data = json.loads(r.output)
    assert [c["need"] for c in data["candidates"]] == ["respite", "social_contact", "respite", "ibasho"]
    nov = next(m for m in data["figures"]["monthly"] if m["area"] == "北部" and m["month"] == "2026-11")
    assert nov["median_days_to_conference"] == 3.0 and nov["needs_unmatched"] == 2


def test_xlsx_needs_a_file_and_an_unknown_format_is_refused(town_conn, directory, workspace):
    r = areas(workspace, directory[0], "--format", "xlsx")
    assert r.exit_code != 0 and "--out" in r.output
    r = areas(workspace, directory[0], "--format", "pdf")
    assert r.exit_code != 0 and "--format pdf" in r.output
