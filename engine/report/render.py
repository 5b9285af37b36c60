"""A report as text (the terminal), JSON, and tables for CSV and XLSX (engine/support/sheets.py)."""

from __future__ import annotations

import json
from pathlib import Path

from engine.report.build import NO_POPULATION, Report, number, target_text
from engine.report.figures import BY_ID, FIGURES
from engine.support.sheets import Table, write_csv, write_xlsx

HEADER = ("項目ID", "項目", "期間", "件数", "単位", "人口10万人あたり", "目安値", "目安値の基準", "確認事項")
BASIS_JA = {"per_100k": "人口10万人あたり", "count": "件数"}


def population_text(report: Report) -> str:
    if not report.population:
        return f"人口: {NO_POPULATION}（report.yaml の population）"
    as_of = f"、{report.population_as_of.isoformat()} 現在" if report.population_as_of else ""
    return f"人口: {report.population:,}人（住民基本台帳{as_of}）"


def render_text(report: Report) -> str:
    out = [
        f"{report.form}　{report.period}（{report.start.isoformat()}〜{report.end.isoformat()}）",
        population_text(report),
        "",
    ]
    width = max((len(line.label) for line in report.lines), default=0)
    for line in report.lines:
        rate = NO_POPULATION if line.per_100k is None else f"10万人あたり {number(line.per_100k)}"
        target = f"  目安値 {target_text(line)}" if line.target is not None else ""
        out.append(f"  {line.label.ljust(width, '　')}  {line.count:>6,}{line.unit}  {rate}{target}")
    notes = [(line, w) for line in report.lines for w in line.warnings]
    if notes:
        out.append("")
        out.extend(f"  ⚠ {line.label}: {w}" for line, w in notes)
    out.append("")
    out.append("各項目の内訳: engine report --trace 項目ID（定義は docs/report.md）")
    return "\n".join(out) + "\n"


def report_dict(report: Report) -> dict:
    return report.model_dump(mode="json")


def render_json(reports: list[Report]) -> str:
    return json.dumps([report_dict(r) for r in reports], ensure_ascii=False, indent=2) + "\n"


def table(report: Report) -> Table:
    rows: list[list] = [list(HEADER)]
    for line in report.lines:
        rows.append(
            [
                line.id,
                line.label,
                report.period,
                line.count,
                line.unit,
                line.per_100k if line.per_100k is not None else NO_POPULATION,
                line.target,
                BASIS_JA.get(line.target_basis or ""),
                " / ".join(line.warnings) or None,
            ]
        )
    return rows


def definitions() -> Table:
    return [["項目ID", "項目", "単位", "定義"], *([f.id, f.label, f.unit, f.definition] for f in FIGURES)]


def write_report(reports: list[Report], fmt: str, out: Path) -> Path:
    """csv: one table, the periods one after the other; xlsx: a sheet per period and 定義."""
    if fmt == "csv":
        rows = table(reports[0])
        for r in reports[1:]:
            rows = [*rows, *table(r)[1:]]
        return write_csv(out, rows)
    sheets = {r.period: table(r) for r in reports}
    sheets["定義"] = definitions()
    return write_xlsx(out, sheets)


def render_trace(figure_id: str, period_label: str, columns: tuple[str, ...], rows: list[tuple[str, ...]]) -> str:
    figure = BY_ID[figure_id]
    out = [f"{figure.label}（{figure_id}）　{period_label}: {len(rows)}{figure.unit}", "\t".join(columns)]
    out.extend("\t".join(r) for r in rows)
    return "\n".join(out) + "\n"
