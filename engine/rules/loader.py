"""Read and check rule files (configs/rules/*.yaml) into a RuleSet.

Every problem becomes a RuleProblem with file, line, rule id, field and a suggestion; the
whole set is refused if any file has a problem, so a broken file never half-applies.
The YAML is read by engine.support.yamlfile; the conditions of `when:` are checked by
engine.rules.conditions.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date
from pathlib import Path

import yaml

from engine.rules.conditions import (
    CONDITION_DEPTH_HINT,
    CONDITION_DEPTH_MESSAGE,
    find_member_line,
    parse_household,
    parse_person,
)
from engine.rules.model import Flag, Indicator, Member, RuleSet, leaves, ruleset_hash
from engine.rules.nodes import Bad, mapping, scalar, text, texts, untagged, whole_number
from engine.rules.problems import RuleProblem, RulesInvalid
from engine.support.errors import did_you_mean
from engine.support.vocabulary import SEVERITY_JA, SILOS, code_of, names_of
from engine.support.yamlfile import YamlRefused, compose_file

SEVERITIES = ("low", "medium", "high", "urgent")
INDICATOR_FIELDS = ("id", "title", "when", "description")
FLAG_FIELDS = ("id", "title", "severity", "silos", "version", "when", "description", "pattern", "effective_from")
ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]*$")

__all__ = ["ID_PATTERN", "RuleProblem", "RulesInvalid", "check_rules", "load_rules"]


def _id(node: yaml.Node) -> str:
    value = text(node, "id")
    if not ID_PATTERN.match(value):
        raise Bad(node, "id", f"id '{value}' must be letters, digits and _ and start with a letter or digit")
    return value


def _severity(node: yaml.Node) -> str:
    """low | medium | high | urgent, or its Japanese name (低 中 高 緊急)."""
    severity = str(code_of(text(node, "severity"), SEVERITY_JA))
    if severity not in SEVERITIES:
        raise Bad(
            node,
            "severity",
            f"unknown severity '{severity}' (low 低, medium 中, high 高, urgent 緊急)",
            did_you_mean(severity, names_of(SEVERITY_JA)),
        )
    return severity


def _effective(node: yaml.Node):
    """effective_from: the screening date from which this version of the flag is in force."""
    from datetime import date

    from engine.support.dates import DateError, parse_date

    value = scalar(node, "effective_from")
    if isinstance(value, date):
        return value
    try:
        return parse_date(str(value).strip())
    except DateError as err:
        raise Bad(
            node, "effective_from", f"not a date: {err}", "write the day the version starts, e.g. 2027-04-01"
        ) from None


def _silos(node: yaml.Node) -> tuple[str, ...]:
    silos = texts(node, "silos")
    for s in silos:
        if s not in SILOS:
            raise Bad(node, "silos", f"unknown silo '{s}' (use {', '.join(SILOS)})", did_you_mean(s, SILOS))
    return silos


def _parse_entry(node, file: str, kind: str, problems: list[RuleProblem]):
    """One indicator or flag; appends problems and returns (model or its id, refs).

    refs = (parsed `when`, its node) of a flag, for the indicator-reference check.

    Each field is checked on its own, so one entry can report several problems."""
    allowed = INDICATOR_FIELDS if kind == "indicators" else FLAG_FIELDS
    rule_id = None
    failed = False

    def report(bad: Bad) -> None:
        nonlocal failed
        failed = True
        problems.append(
            RuleProblem(
                file=file,
                line=bad.node.start_mark.line + 1,
                rule_id=rule_id,
                field=bad.field,
                message=bad.message,
                suggestion=bad.suggestion,
            )
        )

    def attempt(fn, *args):
        try:
            return fn(*args)
        except Bad as bad:
            report(bad)
            return None

    items = attempt(mapping, node, "", f"each entry of `{kind}`")
    if items is None:
        return None, None
    fields = {k: vn for k, _, vn in items}
    if "id" in fields:
        try:
            rule_id = str(scalar(fields["id"]))
        except Bad:
            rule_id = None  # reported below, when the id is checked
    for k, kn, _ in items:
        if k not in allowed:
            report(Bad(kn, k, f"unknown field '{k}' (allowed: {', '.join(allowed)})", did_you_mean(k, allowed)))
    required = (
        ("id", "title", "when") if kind == "indicators" else ("id", "title", "severity", "silos", "version", "when")
    )
    missing = [k for k in required if k not in fields]
    if missing:
        report(Bad(node, missing[0], f"missing field(s): {', '.join(missing)}"))
        return rule_id, None
    values = {
        "id": attempt(_id, fields["id"]),
        "title": attempt(text, fields["title"], "title"),
        "description": str(attempt(scalar, fields["description"], "description") or "")
        if "description" in fields
        else "",
        "file": file,
        "line": node.start_mark.line + 1,
    }
    if kind == "indicators":
        values["when"] = attempt(parse_person, fields["when"], "when")
    else:
        values["severity"] = attempt(_severity, fields["severity"])
        values["silos"] = attempt(_silos, fields["silos"])
        values["version"] = attempt(whole_number, fields["version"], "version", 1)
        values["pattern"] = attempt(whole_number, fields["pattern"], "pattern", 1) if "pattern" in fields else None
        if "effective_from" in fields:
            values["effective_from"] = attempt(_effective, fields["effective_from"])
        values["when"] = attempt(parse_household, fields["when"], "when")
    refs = (values["when"], fields["when"]) if kind == "flags" and values["when"] is not None else None
    if failed:
        return rule_id, refs
    if kind == "indicators":
        return Indicator(**values), None
    return Flag(**values), refs


def _refused_problem(file: str, err: YamlRefused) -> RuleProblem:
    """A refused rule file, located like the other problems: the rule's id and its field (`when`)."""
    path, rule_id, field = err.path, None, ""
    if len(path) >= 3 and path[0] in ("indicators", "flags") and isinstance(path[1], int) and isinstance(path[2], str):
        entry = err.parent(2)
        for k, v in entry.value if isinstance(entry, yaml.MappingNode) else ():
            if isinstance(k, yaml.ScalarNode) and k.value == "id" and isinstance(v, yaml.ScalarNode):
                rule_id = v.value
        field = path[2]
    elif path and isinstance(path[0], str):
        field = path[0]
    message, suggestion = err.message, err.suggestion
    if (
        field == "when"
        and message.startswith("nested too deeply")
        and all(p in ("all", "any", "not") or isinstance(p, int) for p in path[3:])
    ):
        message, suggestion = CONDITION_DEPTH_MESSAGE, CONDITION_DEPTH_HINT
    return RuleProblem(file=file, line=err.line, rule_id=rule_id, field=field, message=message, suggestion=suggestion)


def _sections(path: Path, problems: list[RuleProblem]) -> Iterator[tuple[str, yaml.Node]]:
    """The `indicators:` and `flags:` lists of one file (each a list node), in order; the rest
    becomes problems as it comes (so that they are listed in the order of the file)."""
    name = str(path)
    try:
        root = compose_file(path, "rule")
    except YamlRefused as err:
        problems.append(_refused_problem(name, err))
        return
    if root is None:
        return
    try:
        items = mapping(root, "", "a rule file")
    except Bad as bad:
        problems.append(
            RuleProblem(
                file=name,
                line=bad.node.start_mark.line + 1,
                message=bad.message + " with `indicators:` and/or `flags:`",
            )
        )
        return
    for key, knode, vnode in items:
        if key not in ("indicators", "flags"):
            problems.append(
                RuleProblem(
                    file=name,
                    line=knode.start_mark.line + 1,
                    field=key,
                    message=f"unknown section '{key}' (use indicators: or flags:)",
                    suggestion=did_you_mean(key, ("indicators", "flags")),
                )
            )
            continue
        if not isinstance(vnode, yaml.SequenceNode):
            problems.append(
                RuleProblem(
                    file=name,
                    line=vnode.start_mark.line + 1,
                    field=key,
                    message=f"`{key}` must be a list of entries starting with '- id: ...'",
                )
            )
            continue
        try:
            untagged(vnode, key)
        except Bad as bad:
            problems.append(
                RuleProblem(
                    file=name, line=vnode.start_mark.line + 1, field=key, message=bad.message, suggestion=bad.suggestion
                )
            )
            continue
        yield key, vnode


def _unknown_members(flag_refs: list, indicators: dict[str, Indicator], broken: set[str]) -> list[RuleProblem]:
    """A flag's `member:` naming an indicator that is not defined (one that is defined but broken is already reported)."""
    problems = []
    for file, line, flag_id, (when, node) in flag_refs:
        for ref in (c for c in leaves(when) if isinstance(c, Member)):
            if ref.indicator not in indicators and ref.indicator not in broken:
                problems.append(
                    RuleProblem(
                        file=file,
                        line=find_member_line(node, ref.indicator) or line,
                        rule_id=flag_id,
                        field="when.member",
                        message=f"unknown indicator '{ref.indicator}'",
                        suggestion=did_you_mean(ref.indicator, indicators)
                        or f"define it under `indicators:` (known: {', '.join(indicators) or 'none'})",
                    )
                )
    return problems


def load_rules(rules_dir: Path) -> RuleSet:
    """Load every *.yaml under rules_dir; raise RulesInvalid listing every problem."""
    rules_dir = Path(rules_dir)
    files = sorted(list(rules_dir.glob("*.yaml")) + list(rules_dir.glob("*.yml")))
    problems: list[RuleProblem] = []
    if not rules_dir.is_dir():
        raise RulesInvalid(
            [RuleProblem(file=str(rules_dir), line=0, message="rules folder not found; pass --rules DIR")]
        )
    if not files:
        raise RulesInvalid([RuleProblem(file=str(rules_dir), line=0, message="no .yaml rule files in this folder")])
    indicators: dict[str, Indicator] = {}
    flags: dict[str, Flag] = {}
    versions: dict[str, list[Flag]] = {}  # flag id -> its versions, when one carries effective_from
    broken_indicators: set[str] = set()
    flag_refs: list = []  # (file, line, flag id, (when, node)) of every flag whose `when` parsed
    for path in files:
        name = str(path)
        for key, vnode in _sections(path, problems):
            target = indicators if key == "indicators" else flags
            for entry in vnode.value:
                model, refs = _parse_entry(entry, name, key, problems)
                if refs is not None:
                    flag_refs.append(
                        (name, entry.start_mark.line + 1, model.id if isinstance(model, Flag) else model, refs)
                    )
                if model is None or isinstance(model, str):
                    if key == "indicators" and model:
                        broken_indicators.add(model)  # already reported; references to it are not
                    continue
                if key == "flags" and model.id in target and _another_version(model, target, versions, name, problems):
                    continue
                if model.id in target:
                    other = target[model.id]
                    problems.append(
                        RuleProblem(
                            file=name,
                            line=model.line,
                            rule_id=model.id,
                            field="id",
                            message=f"duplicate id '{model.id}' (also defined at {other.file}:{other.line})",
                            suggestion="give each indicator (and each flag) its own id",
                        )
                    )
                    continue
                target[model.id] = model
    problems += _unknown_members(flag_refs, indicators, broken_indicators)
    if problems:
        raise RulesInvalid(problems)
    if not flags:
        raise RulesInvalid(
            [RuleProblem(file=str(rules_dir), line=0, message="no flags defined: add a `flags:` section")]
        )
    for flag_id, flag in list(flags.items()):
        if flag.effective_from is not None:
            versions.setdefault(flag_id, [flag])
    dated = {k: tuple(sorted(vs, key=lambda f: f.effective_from or date.min)) for k, vs in versions.items()}
    problems = [p for k, vs in dated.items() for p in _version_order(k, vs)]
    if problems:
        raise RulesInvalid(problems)
    newest = {k: dated[k][-1] if k in dated else f for k, f in flags.items()}
    return RuleSet(indicators=indicators, flags=newest, versions=dated, hash=ruleset_hash(indicators, newest, dated))


def _another_version(model: Flag, flags: dict[str, Flag], versions: dict[str, list[Flag]], file: str, problems) -> bool:
    """A second entry of a flag id is a new version when both carry distinct effective dates
    (one may have none: the version in force before every dated one); True if taken as such."""
    known = versions.setdefault(model.id, [flags[model.id]])
    if model.effective_from is None and all(v.effective_from is not None for v in known):
        known.append(model)
        return True
    if model.effective_from is not None and all(v.effective_from != model.effective_from for v in known):
        known.append(model)
        return True
    if len(known) == 1 and known[0].effective_from is None and model.effective_from is None:
        del versions[model.id]
    return False


def _version_order(flag_id: str, versions: tuple[Flag, ...]) -> list[RuleProblem]:
    """Each dated version must raise `version`: the evidence of a flag records which one held."""
    out = []
    for before, after in zip(versions, versions[1:], strict=False):
        if after.version <= before.version:
            out.append(
                RuleProblem(
                    file=after.file,
                    line=after.line,
                    rule_id=flag_id,
                    field="version",
                    message=f"version {after.version} starts {after.effective_from} but is not higher than version {before.version} before it",
                    suggestion=f"write `version: {before.version + 1}` for the version that starts later",
                )
            )
    return out


def check_rules(rules_dir: Path) -> list[RuleProblem]:
    """All problems of the rule files (empty list = valid)."""
    try:
        load_rules(rules_dir)
    except RulesInvalid as err:
        return err.problems
    return []
