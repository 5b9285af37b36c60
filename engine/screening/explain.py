"""`engine explain`: why a household is flagged, or why a rule did not fire, in Japanese.

Shows pseudonymous ids, ages and 続柄 only — never names, kana, addresses or birth dates.
"""

from __future__ import annotations

import sqlite3
from datetime import date

from engine.rules.facts import Context, load_households
from engine.rules.model import SEVERITY_JA, RuleSet
from engine.rules.trace import Trace, trace_flag
from engine.support.errors import EngineError


class UnknownHousehold(EngineError, LookupError):
    pass


def _mark(ok: bool) -> str:
    return "✔" if ok else "✘"


def _records_text(t: Trace) -> str:
    parts = []
    for r in t.records[:5]:
        period = f"{r.start}〜{r.end or ''}"
        parts.append(f"{r.value}（{period}）" if r.value else f"（{period}）")
    more = f" ほか{len(t.records) - 5}件" if len(t.records) > 5 else ""
    return "、".join(parts) + more


def render(t: Trace, depth: int = 1) -> list[str]:
    pad = "  " * depth
    tail = []
    if t.detail:
        tail.append(t.detail)
    if t.records:
        tail.append(_records_text(t))
    line = f"{pad}{_mark(t.ok)} {t.text}" + (f" — {'；'.join(tail)}" if tail else "")
    out = [line]
    for child in t.children:
        out += render(child, depth + 1)
    return out


GROUPS = ("次のすべてに当たる", "次のいずれかに当たる")


def first_failure(t: Trace) -> Trace:
    """The top-most unmet condition below all/any groups (for one-line reasons)."""
    if t.text not in GROUPS:
        return t
    for child in t.children:
        if not child.ok:
            return first_failure(child)
    return t


def explain(conn: sqlite3.Connection, rules: RuleSet, household_id: str, on: date, rule_id: str | None = None) -> str:
    """A Japanese explanation of the household's flags on `on` (one rule in full if given)."""
    row = conn.execute("SELECT area FROM households WHERE household_id = ?", (household_id,)).fetchone()
    if row is None:
        raise UnknownHousehold(f"household '{household_id}' is not in the database (ids look like H0000123)")
    if rule_id is not None and rule_id not in rules.flags:
        from engine.support.errors import did_you_mean

        raise KeyError(
            f"unknown rule '{rule_id}'"
            + (
                f" — {did_you_mean(rule_id, rules.flags)}"
                if did_you_mean(rule_id, rules.flags)
                else f" (rules: {', '.join(rules.flags)})"
            )
        )
    rules = rules.in_force(on)  # the versions in force on the day asked about
    (hh,) = load_households(conn, [household_id], on)
    ctx = Context(on)
    lines = [f"世帯 {household_id}（地区: {row[0]}、世帯員 {len(hh.persons)}人）— {on.isoformat()} 時点の判定"]
    stored = conn.execute(
        "SELECT rule_id, status, first_detected, resolved_on, rule_version, change_reason FROM flags "
        "WHERE household_id = ? ORDER BY flag_id",
        (household_id,),
    ).fetchall()
    if stored:
        lines.append(
            "記録されているフラグ: "
            + "、".join(
                f"{r}（第{v}版、{'継続中' if s == 'open' else '解消'} {first}〜{res or ''}"
                + ("、規則の変更による" if (why or "").startswith("rule_changed") else "")
                + "）"
                for r, s, first, res, v, why in stored
            )
        )
    flags = [rules.flags[rule_id]] if rule_id else rules.flag_list()
    traces = [(f, trace_flag(f, hh, ctx, rules)) for f in flags]
    hits = [(f, t) for f, t in traces if t.ok]
    misses = [(f, t) for f, t in traces if not t.ok]
    if not rule_id:
        lines.append(f"該当するフラグ: {len(hits)}件" if hits else "該当するフラグはありません。")
    for f, t in hits if not rule_id else traces:
        head = "■ 該当" if t.ok else "■ 非該当"
        lines.append(f"{head}: {f.title} [{f.id} {f.version_text}・重要度 {SEVERITY_JA[f.severity]}]")
        lines += render(t)
    if not rule_id and misses:
        lines.append("非該当のフラグ（最初に満たさなかった条件）:")
        for f, t in misses:
            lines.append(f"  ✘ {f.id} {f.title} — {first_failure(t).text}")
        lines.append("特定のフラグを詳しく見るには --rule <id> を付けてください。")
    return "\n".join(lines)
