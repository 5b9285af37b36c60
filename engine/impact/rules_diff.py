"""`engine rules diff`: the households that would gain or lose each flag under candidate rules, each
with its explanation in Japanese, and the open cases a lost flag would leave with no open flag.

Both sides are evaluated afresh on the same date over the same data: comparing the candidate with
the flags table instead would count the data imported, and the time passed, since the last screen
as rule changes. How many households the next screen would change under the current rules anyway
is told apart (`unchanged_rules_pending`). Nothing is written: the caller opens the database
read-only (engine.store.db.connect(readonly=True))."""

from __future__ import annotations

import sqlite3
from datetime import date

from pydantic import BaseModel

from engine.impact.evaluate import evaluate, last_screening_date, scope
from engine.rules.facts import Context, load_households
from engine.rules.model import RuleSet
from engine.rules.trace import Trace, trace_flag
from engine.screening.explain import GROUPS, first_failure

DEFINITION = {"file", "line"}  # where a flag is written is no change of the flag


class HouseholdChange(BaseModel):
    household_id: str
    area: str
    case_id: str | None  # the household's open case, if any
    explanation: list[str]  # Japanese: the candidate rule's result, then the current rule's


class FlagDiff(BaseModel):
    rule_id: str
    title: str
    change: str  # added (only in the candidate) | removed (only in the current rules) | changed | indicators (an indicator it uses changed)
    current_version: int | None
    candidate_version: int | None
    current_count: int
    candidate_count: int
    gained: list[HouseholdChange]
    lost: list[HouseholdChange]


class OrphanedCase(BaseModel):
    case_id: str
    household_id: str
    lost: list[str]  # flag ids the household would lose


class RulesDiff(BaseModel):
    on: date
    current_hash: str
    candidate_hash: str
    households_evaluated: int
    flags: list[FlagDiff]  # every flag whose definition or households change
    orphaned_cases: list[OrphanedCase]
    unchanged_rules_pending: int  # households whose open flags the next screen would change with the current rules

    @property
    def changed(self) -> bool:
        return bool(self.flags)


def _summary(t: Trace) -> str:
    """One line for a condition tree: the conditions that decided it, with what was found."""
    if t.text in GROUPS and t.children:
        if not t.ok:
            return _summary(first_failure(t))
        met = [c for c in t.children if c.ok]
        chosen = met if t.text == GROUPS[0] else met[:1]
        return "、".join(_summary(c) for c in chosen)
    if t.children and t.text.startswith("世帯員に"):  # a member condition: who meets it
        who = [c.text for c in t.children if c.ok]
        return f"{t.text}（{'、'.join(who)}）" if who else f"{t.text} — 該当者なし"
    return f"{t.text} — {t.detail}" if t.detail else t.text


def _line(label: str, t: Trace | None) -> str:
    if t is None:
        return f"{label}: この規則はない"
    return f"{label}: {'✔ 該当' if t.ok else '✘ 非該当'} — {_summary(t)}"


def _definition(rules: RuleSet, rule_id: str) -> dict | None:
    flag = rules.flags.get(rule_id)
    return None if flag is None else flag.model_dump(exclude=DEFINITION)


def _indicators(rules: RuleSet) -> dict:
    return {k: v.model_dump(exclude=DEFINITION) for k, v in rules.indicators.items()}


def rules_diff(conn: sqlite3.Connection, current: RuleSet, candidate: RuleSet, on: date | None = None) -> RulesDiff:
    """What the candidate rules would change on `on` (default: the last screening date)."""
    on = on or last_screening_date(conn)
    ids = scope(conn, [current, candidate], on)
    before = evaluate(conn, current, on, ids)
    after = evaluate(conn, candidate, on, ids)
    stored: dict[str, set[str]] = {}
    for hid, rule in conn.execute("SELECT household_id, rule_id FROM flags WHERE status = 'open'"):
        if rule in current.flags:
            stored.setdefault(hid, set()).add(rule)
    pending = sum(1 for h in set(stored) | set(before) if stored.get(h, set()) != before.get(h, set()))
    changed_ids = sorted(h for h in set(before) | set(after) if before.get(h, set()) != after.get(h, set()))
    households = {hh.household_id: hh for hh in load_households(conn, changed_ids, on)}
    areas = dict(conn.execute("SELECT household_id, area FROM households")) if changed_ids else {}
    cases = dict(conn.execute("SELECT household_id, case_id FROM cases WHERE is_open = 1"))
    ctx = Context(on)
    same_indicators = _indicators(current) == _indicators(candidate)

    def change(hid: str, rule_id: str) -> HouseholdChange:
        hh = households[hid]
        new = trace_flag(candidate.flags[rule_id], hh, ctx, candidate) if rule_id in candidate.flags else None
        old = trace_flag(current.flags[rule_id], hh, ctx, current) if rule_id in current.flags else None
        return HouseholdChange(
            household_id=hid,
            area=areas.get(hid, ""),
            case_id=cases.get(hid),
            explanation=[_line("変更後", new), _line("現在", old)],
        )

    flags = []
    for rule_id in sorted(set(current.flags) | set(candidate.flags)):
        gained = [h for h in changed_ids if rule_id in after.get(h, ()) and rule_id not in before.get(h, ())]
        lost = [h for h in changed_ids if rule_id in before.get(h, ()) and rule_id not in after.get(h, ())]
        old_def, new_def = _definition(current, rule_id), _definition(candidate, rule_id)
        kind = (
            "added"
            if old_def is None
            else "removed"
            if new_def is None
            else "same"
            if old_def == new_def
            else "changed"
        )
        if kind == "same" and not gained and not lost:
            continue
        if kind == "same" and not same_indicators:
            kind = "indicators"  # the flag is as it was; an indicator it uses changed
        flag = candidate.flags.get(rule_id) or current.flags[rule_id]
        flags.append(
            FlagDiff(
                rule_id=rule_id,
                title=flag.title,
                change=kind,
                current_version=current.flags[rule_id].version if rule_id in current.flags else None,
                candidate_version=candidate.flags[rule_id].version if rule_id in candidate.flags else None,
                current_count=sum(rule_id in v for v in before.values()),
                candidate_count=sum(rule_id in v for v in after.values()),
                gained=[change(h, rule_id) for h in gained],
                lost=[change(h, rule_id) for h in lost],
            )
        )
    orphaned = [
        OrphanedCase(case_id=cases[h], household_id=h, lost=sorted(before[h] - after.get(h, set())))
        for h in changed_ids
        if h in cases and before.get(h) and not after.get(h)
    ]
    return RulesDiff(
        on=on,
        current_hash=current.hash,
        candidate_hash=candidate.hash,
        households_evaluated=len(ids),
        flags=flags,
        orphaned_cases=orphaned,
        unchanged_rules_pending=pending,
    )
