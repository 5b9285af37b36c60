"""Warnings about a rule set that loads: what it no longer does that the engine's policies expect.

A warning does not refuse the rules (`engine rules check` prints it and exits 0, as an import
prints its warnings); it names the file, line and rule like a RuleProblem.

- A current DV support measure (dv_support_measure, 住民票の閲覧制限) should raise a flag of silo
  DV (pattern 9, the shipped `dv`). Without it the household is still DV-locked
  (conference.yaml `locked_codes`: never detailed by e-mail, the DV centre invited), but it gets no
  case, no urgency and no DV-centre lead on that record alone.
- A free-text value (a category code with no fixed list: consultation topics, waiting lists, …)
  that no record of the workspace holds: the condition can never be met as written (引きこもり
  where the data writes ひきこもり). The nearest values that do occur are suggested. Values of a
  fixed list are refused by the loader instead (engine.rules.conditions).
"""

from __future__ import annotations

import difflib
import sqlite3
from datetime import date
from pathlib import Path

import yaml

from engine.policy.dv import DV_CENTRE_SILO
from engine.policy.normalise import hiragana, normalise
from engine.rules.facts import Context, Household, Person, Rec
from engine.rules.model import Record, RuleSet, leaves
from engine.rules.problems import RuleProblem
from engine.rules.trace import trace_flag
from engine.support import clock
from engine.support.vocabulary import CODES
from engine.support.yamlfile import YamlRefused, compose_file

DV_CODE = "dv_support_measure"


def _dv_households(on: date) -> list[Household]:
    """Households whose only record is a current DV support measure: a parent alone, and with a child."""
    start = date(on.year - 1, on.month, 1).isoformat()

    def parent() -> Person:
        born = date(on.year - 35, 4, 1).isoformat()
        return Person("LINT1", born, "F", "世帯主", "日本", {DV_CODE: [Rec("LINT1|dv", DV_CODE, "", start, None)]})

    child = Person("LINT2", date(on.year - 6, 4, 1).isoformat(), "M", "子", "日本")
    return [Household("LINTA", [parent()]), Household("LINTB", [parent(), child])]


def dv_measure_warning(rules: RuleSet, rules_dir: str, on: date | None = None) -> RuleProblem | None:
    """A warning when a household whose only record is a current dv_support_measure raises no flag
    of silo DV."""
    on = on or clock.today()
    ctx = Context(on)
    dv_flags = [f for f in rules.flag_list() if DV_CENTRE_SILO in f.silos]
    if any(trace_flag(f, hh, ctx, rules).ok for f in dv_flags for hh in _dv_households(on)):
        return None
    first = dv_flags[0] if dv_flags else None
    return RuleProblem(
        file=first.file if first else rules_dir,
        line=first.line if first else 0,
        rule_id=first.id if first else None,
        field="when" if first else "",
        message=f"a current {DV_CODE} (DV等支援措置) record raises no flag of silo {DV_CENTRE_SILO}: "
        "the household stays DV-locked, but that record alone opens no case and asks no DV centre to lead",
        suggestion=f"keep `record: {DV_CODE}` in the indicator of the DV flag (shipped: dv_signal of flag dv)",
    )


def warnings(rules: RuleSet, rules_dir: str) -> list[RuleProblem]:
    """Every warning about the rule set (empty: nothing to say)."""
    return [w for w in (dv_measure_warning(rules, rules_dir),) if w]


FREE_TEXT_CODES = tuple(c for c, spec in CODES.items() if spec.value_type == "category" and not spec.values)
NEAREST = 3  # values suggested for an unseen one


def values_in_records(conn: sqlite3.Connection) -> dict[str, dict[str, int]]:
    """The distinct values of each free-text code in the workspace's records, with how many
    records hold each (read only)."""
    marks = ",".join("?" * len(FREE_TEXT_CODES))
    rows = conn.execute(
        f"SELECT code, value, COUNT(*) FROM records WHERE code IN ({marks}) GROUP BY code, value", FREE_TEXT_CODES
    )
    out: dict[str, dict[str, int]] = {}
    for code, value, n in rows:
        out.setdefault(code, {})[value] = n
    return out


def _form(text: str) -> str:
    """How two values are compared for nearness: one width, one kana (ヒキコモリ = ひきこもり)."""
    return hiragana(normalise(text))


def nearest_values(value: str, seen: dict[str, int]) -> list[str]:
    """The values that occur closest to `value` (same written form first), most records first among equals."""
    forms: dict[str, list[str]] = {}
    for v in sorted(seen, key=lambda v: (-seen[v], v)):
        forms.setdefault(_form(v), []).append(v)
    close = difflib.get_close_matches(_form(value), forms, n=NEAREST, cutoff=0.5)
    return [v for form in close for v in forms[form]][:NEAREST]


def _scalars(file: str) -> tuple[tuple[int, str], ...]:
    """(line, text) of every scalar of a rule file, to locate a value."""
    try:
        root = compose_file(Path(file), "rule")
    except (YamlRefused, OSError):
        return ()
    out, todo = [], [root] if root is not None else []
    while todo:
        node = todo.pop()
        if isinstance(node, yaml.ScalarNode):
            out.append((node.start_mark.line + 1, node.value.strip()))
        elif isinstance(node, yaml.SequenceNode):
            todo += node.value
        elif isinstance(node, yaml.MappingNode):
            todo += [v for _, v in node.value]
    return tuple(sorted(out))


def _value_line(scalars: dict[str, tuple], file: str, after: int, value: str) -> int:
    """The line of `value` at or after line `after` (the rule's) of a rule file; scalars: cache per file."""
    if file not in scalars:
        scalars[file] = _scalars(file)
    return next((line for line, v in scalars[file] if line >= after and v == value), after)


def _unseen(code: str, value: str, near: list[str], occurring: dict[str, int]) -> dict[str, str | None]:
    """The message and suggestion of an unseen value."""
    what = f"{code} ({CODES[code].title})"
    if not occurring:
        return {
            "message": f"the workspace has no record of {what} at all: '{value}' cannot be checked against the data",
            "suggestion": None,
        }
    same = [v for v in near if _form(v) == _form(value)]
    if same:  # values are compared exactly
        message = f"'{value}' is written differently from the records of {what}, which write '{same[0]}': as written it matches no record"
    else:
        message = f"no record of {what} in the workspace has the value '{value}' (a misspelt value never matches)"
    listed = ", ".join(sorted(occurring, key=lambda v: (-occurring[v], v))[:10])
    return {
        "message": message,
        "suggestion": ("did you mean " + " or ".join(f"'{v}'" for v in near) + "?")
        if near
        else f"values that occur: {listed}",
    }


def unseen_value_warnings(rules: RuleSet, seen: dict[str, dict[str, int]]) -> list[RuleProblem]:
    """A warning for each free-text value of a rule that no record holds (`seen`: values_in_records)."""
    out, scalars, said = [], {}, set()
    for rule in [*rules.indicators.values(), *rules.flags.values()]:
        for cond in leaves(rule.when):
            if not isinstance(cond, Record) or cond.code not in FREE_TEXT_CODES:
                continue
            occurring = seen.get(cond.code, {})
            for value in cond.values:
                if value in occurring or (rule.file, rule.line, cond.code, value) in said:
                    continue
                said.add((rule.file, rule.line, cond.code, value))
                near = nearest_values(value, occurring)
                out.append(
                    RuleProblem(
                        file=rule.file,
                        line=_value_line(scalars, rule.file, rule.line, value),
                        rule_id=rule.id,
                        field="when.value",
                        **_unseen(cond.code, value, near, occurring),
                    )
                )
    return out
