"""The area view as a whole (`engine areas`, the console's /areas): the figures, the ranked
資源開発の候補, and the same as tables (CSV/XLSX through engine/support/sheets.py), a Japanese
text summary, or JSON. Labels are Japanese: areas by name, flags by title, needs and categories
by label; households are counted, never named."""

from __future__ import annotations

import json
import sqlite3
from datetime import date
from pathlib import Path

from pydantic import BaseModel

from engine.config import Config
from engine.region.candidates import Candidate, rank_candidates, top_per_area
from engine.region.figures import DEFAULT_MONTHS, Figures, area_figures, totals
from engine.rules.model import RuleSet
from engine.support.sheets import Table, csv_text, write_xlsx
from engine.support.vocabulary import DECLINE_REASON_LABELS

NO_VALUE = "—"


class AreaView(BaseModel):
    figures: Figures
    candidates: list[Candidate]


def area_view(
    conn: sqlite3.Connection, config: Config, rules: RuleSet, on: date, months: int = DEFAULT_MONTHS
) -> AreaView:
    figures = area_figures(conn, config, rules, on, months)
    return AreaView(figures=figures, candidates=rank_candidates(conn, config, figures))


# --- tables -----------------------------------------------------------------------------------
def monthly_table(v: AreaView) -> Table:
    f = v.figures
    reasons = list(DECLINE_REASON_LABELS)
    head = [
        "地区",
        "月",
        "世帯数",
        "フラグのある世帯",
        "フラグのある世帯（1,000世帯あたり）",
        "開始した事案",
        "うち会議を開いた事案",
        "フラグから初回会議までの営業日数（中央値）",
        "記録した参加支援のニーズ",
        "紹介先のないニーズ",
        "うち紹介先なしと記録",
        "うち期限を過ぎて未対応",
        *(f"受入れ不可（{DECLINE_REASON_LABELS[r]}）" for r in reasons),
    ]
    rows = [
        [
            m.area,
            m.month,
            m.households,
            m.flagged_any,
            m.per_1000(m.flagged_any),
            m.cases_opened,
            m.conferenced,
            m.median_days_to_conference,
            m.needs_recorded,
            m.needs_without_place,
            m.needs_unmatched,
            m.needs_open_past_grace,
            *(m.declines.get(r, 0) for r in reasons),
        ]
        for m in f.monthly
    ]
    return [head, *rows]


def patterns_table(v: AreaView) -> Table:
    f = v.figures
    head = ["地区", "月", "パターン（フラグ）", "世帯数", "該当世帯", "1,000世帯あたり"]
    rows = [
        [m.area, m.month, f.flag_titles.get(r, r), m.households, m.flagged.get(r, 0), m.per_1000(m.flagged.get(r, 0))]
        for m in f.monthly
        for r in f.patterns()
    ]
    return [head, *rows]


def places_table(v: AreaView) -> Table:
    head = ["地区", "種類", "掲載中の場所", "うち休止中", "空きのある場所", "空き（人）", "情報の古い掲載"]
    rows = [[p.area, p.category_label, p.places, p.closed, p.with_free, p.free, p.stale] for p in v.figures.places]
    return [head, *rows]


def candidates_table(v: AreaView) -> Table:
    head = [
        "順位",
        "地区",
        "ニーズ",
        "満たされない件数",
        "紹介先なしと記録",
        "期限を過ぎて未対応",
        "受入れ不可（定員）",
        "受入れ不可（対象外）",
        "受け入れる場所の種類",
        "地区で利用できる場所",
        "うち空きのある場所",
        "空き（人）",
    ]
    rows = [
        [
            c.rank,
            c.area,
            c.need_label,
            c.unmet,
            c.unmatched,
            c.open_past_grace,
            c.declined_capacity,
            c.declined_eligibility,
            "・".join(c.category_labels),
            c.places,
            c.places_with_free,
            c.free,
        ]
        for c in v.candidates
    ]
    return [head, *rows]


def tables(v: AreaView) -> dict[str, Table]:
    """The view's tables by sheet name (the XLSX's sheets; the CSV's sections)."""
    return {
        "地区別・月別": monthly_table(v),
        "パターン別": patterns_table(v),
        "社会資源": places_table(v),
        "資源開発の候補": candidates_table(v),
    }


def csv_of(v: AreaView) -> str:
    """One CSV of the tables, each a section: a row with its name in 【】, its header and rows, a blank row."""
    out: list[list] = []
    for name, table in tables(v).items():
        out += [[f"【{name}】"], *table, []]
    f = v.figures
    out.append([f"対象期間 {f.months[0].key}〜{f.months[-1].key}（{f.on.isoformat()} まで）"])
    return csv_text(out)


def write_csv_file(path: Path, v: AreaView) -> Path:
    from engine.support.private_files import write_private

    write_private(Path(path), "\ufeff" + csv_of(v))
    return Path(path)


def write_xlsx_file(path: Path, v: AreaView) -> Path:
    return write_xlsx(path, tables(v))


def json_of(v: AreaView) -> str:
    return json.dumps(v.model_dump(mode="json"), ensure_ascii=False, indent=2) + "\n"


# --- text -------------------------------------------------------------------------------------
def _num(x) -> str:
    return NO_VALUE if x is None else f"{x:.1f}" if isinstance(x, float) else str(x)


def text_of(v: AreaView) -> str:
    """A readable Japanese summary: per area its households, the last month's flagged households per
    1,000 by pattern, the period's cases, median wait, needs without a place, declines and places,
    then the ranked 資源開発の候補."""
    f = v.figures
    first, last = f.months[0].key, f.months[-1].key
    lines = [f"地区別の状況（{first}〜{last}、{f.on.isoformat()} まで）", ""]
    if not f.areas:
        return "\n".join([*lines, "世帯のデータがありません（engine import の後に実行してください）。"])
    for area in f.areas:
        m = f.of(area, last)
        t = totals(f, area)
        lines.append(f"■ {area}（{f.households[area]} 世帯）")
        lines.append(
            f"  {last} のフラグのある世帯: {m.flagged_any} 世帯（1,000世帯あたり {_num(m.per_1000(m.flagged_any))}）"
        )
        for r in f.patterns():
            if m.flagged.get(r):
                lines.append(f"    {f.flag_titles.get(r, r)}: {m.flagged[r]} 世帯（{_num(m.per_1000(m.flagged[r]))}）")
        waits = [x.median_days_to_conference for x in f.monthly if x.area == area and x.conferenced]
        lines.append(
            f"  期間中に開始した事案: {t['cases_opened']} 件（うち会議を開いた事案 {t['conferenced']} 件）"
            + (f"、初回会議までの営業日数の中央値（月別）: {'・'.join(_num(w) for w in waits)}" if waits else "")
        )
        declined = "、".join(
            f"{label} {t[f'declined:{r}']} 件" for r, label in DECLINE_REASON_LABELS.items() if t[f"declined:{r}"]
        )
        lines.append(
            f"  参加支援: 記録したニーズ {t['needs_recorded']} 件、紹介先のないニーズ {t['needs_without_place']} 件"
            + (f"、受入れ不可 {declined}" if declined else "")
        )
        places = [p for p in f.places if p.area == area]
        if places:
            lines.append(
                "  社会資源（現在）: "
                + "、".join(f"{p.category_label} {p.places} か所（空き {p.free} 人）" for p in places)
                + (f"、情報の古い掲載 {sum(p.stale for p in places)} 件" if any(p.stale for p in places) else "")
            )
        lines.append("")
    wide = [p for p in f.places if p.area not in f.areas]
    if wide:
        lines.append(
            "■ 全域・その他の地区の社会資源（現在）: "
            + "、".join(f"{p.area} {p.category_label} {p.places} か所（空き {p.free} 人）" for p in wide)
        )
        lines.append("")
    lines.append("資源開発の候補（満たされないニーズの多い順）")
    if not v.candidates:
        lines.append("  期間中に満たされないニーズはありません。")
    shown = {id(c) for found in top_per_area(v.candidates).values() for c in found}
    for c in v.candidates:
        if id(c) in shown:
            lines.append(f"  {c.rank}. {c.area}「{c.need_label}」{c.unmet} 件 — {c.evidence()}")
    if len(shown) < len(v.candidates):
        lines.append(f"  （各地区の上位 3 件を表示。全 {len(v.candidates)} 件は --format csv / xlsx で出力できます）")
    return "\n".join(lines) + "\n"
