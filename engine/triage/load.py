"""Reading triage_rules.yaml into a Triage, every problem located (file, line, field,
did-you-mean) as engine/config/load.py does for the lead rules, which it sits beside."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from engine.config.fields import Strict
from engine.rules.model import RuleSet
from engine.rules.problems import RuleProblem
from engine.support.yamlfile import YamlFile, read_yaml, validate
from engine.triage.model import Triage, TriageRule, TriageSettings

TRIAGE = "triage_rules.yaml"


class _TriageFile(Strict):
    settings: TriageSettings = TriageSettings()
    triage_rules: tuple[TriageRule, ...] = Field(min_length=1)


def load_triage(
    config_dir: Path,
    rules: RuleSet,
    agencies: dict,
    problems: list[RuleProblem],
    docs: dict[str, YamlFile],
    *,
    registry_ok: bool = True,
) -> Triage:
    """The triage of `config_dir` (none without triage_rules.yaml: every case to a conference);
    problems appended; the file read is added to `docs` (it counts in the configuration's hash)."""
    from engine.config.load import check_agency_target, unknown_flag  # the lead rules' checks (no import cycle)

    path = Path(config_dir) / TRIAGE
    if not path.exists():
        return Triage()
    doc = read_yaml(path, problems)
    parsed = validate(doc, _TriageFile, problems) if doc else None
    if doc:
        docs["triage_rules"] = doc
    if parsed is None:
        return Triage()
    seen: dict[str, int] = {}
    for i, rule in enumerate(parsed.triage_rules):
        where = ("triage_rules", i)
        if rule.id in seen:
            problems.append(
                doc.problem(
                    where + ("id",),
                    f"duplicate triage rule id '{rule.id}' (also rule {seen[rule.id] + 1})",
                    entry_id=rule.id,
                )
            )
        seen.setdefault(rule.id, i)
        for key in ("flags", "only_flags"):
            for j, f in enumerate(getattr(rule.when, key)):
                if f not in rules.flags:
                    problems.append(unknown_flag(doc, where + ("when", key, j), f, rules, entry_id=rule.id))
        w = rule.when
        for low, high in (("min_severity", "max_severity"), ("min_silos", "max_silos"), ("min_flags", "max_flags")):
            a, b = getattr(w, low), getattr(w, high)
            if a is not None and b is not None and _order(low, a) > _order(low, b):
                problems.append(
                    doc.problem(
                        where + ("when", low),
                        f"{low} {a} is above {high} {b}: this rule is never used",
                        entry_id=rule.id,
                        suggestion=f"swap {low} and {high}",
                    )
                )
        if rule.by is not None and registry_ok:
            check_agency_target(doc, where + ("by",), rule.by, agencies, problems, entry_id=rule.id)
    return Triage(settings=parsed.settings, rules=parsed.triage_rules)


def _order(field: str, value) -> int:
    from engine.config.models import SEVERITY_ORDER

    return SEVERITY_ORDER.index(value) if field == "min_severity" else int(value)
