"""The located problem of a YAML file (rules, configuration, an outcome) and the refusal that lists them.

A RuleProblem names file, line, rule (or entry) id, field, what is wrong and a suggestion; a file
set with any problem is refused whole (RulesInvalid), so a broken file never half-applies. `entry`
is what the id names: a rule, or in a configuration file the entry of its list (agency, place,
figure, example; support/yamlfile.py says which).
"""

from __future__ import annotations

from engine.support.errors import EngineError, Problem


class RuleProblem(Problem):
    file: str
    line: int
    rule_id: str | None = None
    entry: str = "rule"

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        rule = f" {self.entry} {self.rule_id}" if self.rule_id else ""
        field = f" [{self.field}]" if self.field else ""
        hint = f" — {self.suggestion}" if self.suggestion else ""
        return f"{where}:{rule}{field} {self.message}{hint}"


class RulesInvalid(EngineError):
    def __init__(self, problems: list[RuleProblem]):
        super().__init__(problems=problems)
