"""Warnings about a rule set that loads: what it no longer does that the engine's policies expect.

A warning does not refuse the rules (`engine rules check` prints it and exits 0, as an import
prints its warnings); it names the file, line and rule like a RuleProblem.

- A current DV support measure (dv_support_measure, 住民票の閲覧制限) should raise a flag of silo
  DV (pattern 9, the shipped `dv`). Without it the household is still DV-locked
  (conference.yaml `locked_codes`: never detailed by e-mail, the DV centre invited), but it gets no
  case, no urgency and no DV-centre lead on that record alone.
"""

from __future__ import annotations

from datetime import date

from engine.policy.dv import DV_CENTRE_SILO
from engine.rules.facts import Context, Household, Person, Rec
from engine.rules.model import RuleSet
from engine.rules.problems import RuleProblem
from engine.rules.trace import trace_flag
from engine.support import clock

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
        field="when" if first else None,
        message=f"a current {DV_CODE} (DV等支援措置) record raises no flag of silo {DV_CENTRE_SILO}: "
        "the household stays DV-locked, but that record alone opens no case and asks no DV centre to lead",
        suggestion=f"keep `record: {DV_CODE}` in the indicator of the DV flag (shipped: dv_signal of flag dv)",
    )


def warnings(rules: RuleSet, rules_dir: str) -> list[RuleProblem]:
    """Every warning about the rule set (empty: nothing to say)."""
    return [w for w in (dv_measure_warning(rules, rules_dir),) if w]
