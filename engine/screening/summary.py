"""A readable summary of a workspace: data, last import, flags per rule, top areas."""

from __future__ import annotations

import sqlite3

from pydantic import BaseModel

from engine.rules.model import RuleSet


class AreaCount(BaseModel):
    area: str
    households: int
    flagged: int


class Summary(BaseModel):
    households: int
    persons: int
    records: int
    rejected_rows: int  # in the last import
    flags: dict[str, int]  # open flags per rule id (every rule listed, 0 included)
    flagged_households: int
    households_with_several_flags: int
    top_areas: list[AreaCount]
    last_screen: dict | None


def summary(conn: sqlite3.Connection, rules: RuleSet | None = None) -> Summary:
    one = lambda sql, *p: conn.execute(sql, p).fetchone()[0]  # noqa: E731
    last_import = one("SELECT COALESCE(MAX(import_seq), 0) FROM imports")
    flags = dict.fromkeys(sorted(rules.flags) if rules else [], 0)
    flags.update(dict(conn.execute("SELECT rule_id, COUNT(*) FROM flags WHERE status = 'open' GROUP BY rule_id")))
    per_household = conn.execute(
        "SELECT household_id, COUNT(*) FROM flags WHERE status = 'open' GROUP BY household_id"
    ).fetchall()
    areas = conn.execute(
        """SELECT h.area, COUNT(*), COUNT(f.household_id) FROM households h
           LEFT JOIN (SELECT DISTINCT household_id FROM flags WHERE status = 'open') f ON f.household_id = h.household_id
           GROUP BY h.area ORDER BY COUNT(f.household_id) DESC, h.area LIMIT 5"""
    ).fetchall()
    run = conn.execute(
        "SELECT run_id, screened_on, mode, scope, evaluated, flags_opened, flags_resolved, seconds FROM screen_runs ORDER BY run_id DESC LIMIT 1"
    ).fetchone()
    last_screen = None
    if run:
        keys = ("run_id", "screened_on", "mode", "scope", "evaluated", "flags_opened", "flags_resolved", "seconds")
        last_screen = dict(zip(keys, run))
    return Summary(
        households=one("SELECT COUNT(*) FROM households"),
        persons=one("SELECT COUNT(*) FROM persons"),
        records=one("SELECT COUNT(*) FROM records"),
        rejected_rows=one("SELECT COUNT(*) FROM rejects WHERE import_seq = ?", last_import),
        flags=flags,
        flagged_households=len(per_household),
        households_with_several_flags=sum(1 for _, n in per_household if n > 1),
        top_areas=[AreaCount(area=a, households=n, flagged=f) for a, n, f in areas],
        last_screen=last_screen,
    )


def render_summary(s: Summary, rules: RuleSet | None = None) -> str:
    """The summary as text a coordinator reads in the terminal."""
    lines = [
        f"世帯 {s.households:,}  世帯員 {s.persons:,}  記録 {s.records:,}  取込エラー行 {s.rejected_rows:,}",
        f"フラグのある世帯 {s.flagged_households:,}（複数フラグ {s.households_with_several_flags:,}）",
        "ルール別の継続中フラグ:",
    ]
    for rule_id, n in sorted(s.flags.items(), key=lambda kv: (-kv[1], kv[0])):
        title = rules.flags[rule_id].title if rules and rule_id in rules.flags else ""
        lines.append(f"  {n:>7,}  {rule_id:<24} {title}")
    lines.append("フラグの多い地区:")
    for a in s.top_areas:
        share = f"{100 * a.flagged / a.households:.1f}%" if a.households else "-"
        lines.append(f"  {a.area:<6} {a.flagged:>6,} / {a.households:,} 世帯（{share}）")
    if s.last_screen:
        ls = s.last_screen
        lines.append(
            f"最終スクリーニング: {ls['screened_on']}（{ls['mode']}、対象 {ls['scope']:,} 世帯、評価 {ls['evaluated']:,} 世帯、"
            f"新規 {ls['flags_opened']:,}・解消 {ls['flags_resolved']:,}、{ls['seconds']:.1f} 秒）"
        )
    return "\n".join(lines)
