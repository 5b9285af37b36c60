"""Read and check rule files (configs/rules/*.yaml) into a RuleSet.

Every problem becomes a RuleProblem with file, line, rule id, field and a suggestion; the
whole set is refused if any file has a problem, so a broken file never half-applies.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel

from engine.rules.model import (
    Age,
    DistinctValues,
    Flag,
    Foreign,
    HAll,
    HAny,
    HNot,
    HouseholdSize,
    Indicator,
    Member,
    PAll,
    PAny,
    PNot,
    Record,
    Relationship,
    RuleSet,
    Sex,
    SilosTouched,
    leaves,
)
from engine.support.vocabulary import CODES, ORDERED_TYPES, SILOS, level_rank

SEVERITIES = ("low", "medium", "high", "urgent")
RELATIONSHIPS = ("世帯主", "妻", "夫", "子", "父", "母", "孫", "兄弟姉妹", "祖父", "祖母", "その他")
INDICATOR_FIELDS = ("id", "title", "when", "description")
FLAG_FIELDS = ("id", "title", "severity", "silos", "version", "when", "description", "pattern")
PERSON_KEYS = ("all", "any", "not", "age", "record", "no_record", "relationship", "sex", "foreign_national")
HOUSEHOLD_KEYS = ("all", "any", "not", "member", "no_member", "household_size", "silos_touched", "distinct_values")
RECORD_KEYS = ("code", "value", "min", "max", "within_months")


class RuleProblem(BaseModel):
    file: str
    line: int
    rule_id: str | None = None
    field: str = ""
    message: str
    suggestion: str | None = None

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}"
        rule = f" rule {self.rule_id}" if self.rule_id else ""
        field = f" [{self.field}]" if self.field else ""
        hint = f" — {self.suggestion}" if self.suggestion else ""
        return f"{where}:{rule}{field} {self.message}{hint}"


class RulesInvalid(Exception):
    def __init__(self, problems: list[RuleProblem]):
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


def did_you_mean(word: str, choices) -> str | None:
    close = difflib.get_close_matches(str(word), [str(c) for c in choices], n=1, cutoff=0.6)
    return f"did you mean '{close[0]}'?" if close else None


class _Bad(Exception):
    """One problem found while walking a node; collected by the caller."""

    def __init__(self, node: yaml.Node, field: str, message: str, suggestion: str | None = None):
        self.node, self.field, self.message, self.suggestion = node, field, message, suggestion


# --- reading YAML safely (shared with engine.support.yamlfile) ------------------------------------
MAX_YAML_DEPTH = 50  # lists and mappings inside each other; no configuration comes near it
MAX_CONDITION_DEPTH = 20  # all/any/not inside each other in a rule's `when:` (documented in README)
CONDITION_DEPTH_HINT = (
    "simplify the condition: `not: {not: X}` is just X, and an `all:` inside an `all:` can be merged into it"
)


class YamlRefused(Exception):
    """Valid YAML that the engine does not read: nested too deeply, or an alias (`*name`).

    `steps` are the (parent node, key node or list index) pairs from the root down to the
    refused node, so that a caller can name the field (and the rule) it is in."""

    def __init__(self, mark, steps: list, message: str, suggestion: str):
        super().__init__(message)
        self.line = mark.line + 1
        self.steps = [(parent, index) for parent, index in steps if parent is not None and index is not None]
        self.message, self.suggestion = message, suggestion

    @property
    def path(self) -> tuple:
        return tuple(
            index.value if isinstance(index, yaml.ScalarNode) else index if isinstance(index, int) else "?"
            for _, index in self.steps
        )

    def parent(self, i: int) -> yaml.Node | None:
        """The node holding the i-th element of `path`."""
        return self.steps[i][0] if i < len(self.steps) else None


class _Composer(yaml.SafeLoader):
    """PyYAML's composer with a nesting limit (its recursion would otherwise end in a
    RecursionError) and without aliases (an alias bomb expands to millions of nodes)."""

    def __init__(self, text: str):
        super().__init__(text)
        self._trail: list = []

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            anchored = self.anchors.get(event.anchor)
            where = (
                f" (the value marked &{event.anchor} on line {anchored.start_mark.line + 1})"
                if anchored is not None
                else ""
            )
            raise YamlRefused(
                event.start_mark,
                self._trail + [(parent, index)],
                f"aliases are not supported: *{event.anchor} would repeat another value{where}",
                "write the value out in full where it is needed",
            )
        if len(self._trail) >= MAX_YAML_DEPTH:
            raise YamlRefused(
                self.peek_event().start_mark,
                self._trail + [(parent, index)],
                f"nested too deeply: more than {MAX_YAML_DEPTH} levels of lists and mappings inside each other",
                "check for unclosed or repeated brackets; no setting needs this much nesting",
            )
        self._trail.append((parent, index))
        try:
            return super().compose_node(parent, index)
        finally:
            self._trail.pop()


def compose_yaml(text: str) -> yaml.Node | None:
    """yaml.compose() with the limits of _Composer; raises yaml.YAMLError or YamlRefused."""
    loader = _Composer(text)
    try:
        return loader.get_single_node()
    finally:
        loader.dispose()


def key_problem(key: yaml.Node) -> str | None:
    """Why a mapping key is not a plain name (a list or mapping used as a key), or None."""
    if isinstance(key, yaml.ScalarNode):
        return None
    mark, end = key.start_mark, key.end_mark
    text = mark.buffer[mark.index : end.index] if mark.buffer is not None and end is not None else ""
    text = " ".join(text.split())
    text = text if len(text) <= 40 else text[:39] + "…"
    kind = "list" if isinstance(key, yaml.SequenceNode) else "mapping"
    return f"unknown field '{text}': a key must be a plain name, not a {kind}"


def tag_problem(node: yaml.Node) -> str | None:
    """Why a list or mapping carries a tag the engine never reads (`!!python/object/apply:…`), or None."""
    plain = {yaml.MappingNode: "tag:yaml.org,2002:map", yaml.SequenceNode: "tag:yaml.org,2002:seq"}.get(type(node))
    if plain is None or node.tag == plain:
        return None
    return f"cannot read this value (the tag {node.tag.replace('tag:yaml.org,2002:', '!!')} is not allowed)"


_constructor = yaml.SafeLoader("")


def _scalar(node: yaml.Node, field: str = "") -> Any:
    try:
        return _constructor.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError) as err:  # e.g. `title: 2024-02-30`, `id: !tag x`
        reason = getattr(err, "problem", None) or str(err)
        raise _Bad(node, field, f"cannot read this value ({reason}); put it in quotes") from err


def _mapping(node: yaml.Node, field: str, what: str) -> list[tuple[str, yaml.Node, yaml.Node]]:
    if not isinstance(node, yaml.MappingNode):
        raise _Bad(node, field, f"{what} must be a mapping (key: value lines)")
    if tag_problem(node):
        raise _Bad(node, field, tag_problem(node), "remove the tag")
    out, seen = [], {}
    for k, v in node.value:
        bad_key = key_problem(k)
        if bad_key:
            raise _Bad(k, field, bad_key, "write `name: value`")
        key = str(_scalar(k, field))
        if key in seen:
            raise _Bad(
                k,
                f"{field}.{key}".lstrip("."),
                f"duplicate key '{key}' (also on line {seen[key]}): the second would silently replace the first",
            )
        seen[key] = k.start_mark.line + 1
        out.append((key, k, v))
    return out


def _sequence(node: yaml.Node, field: str, what: str) -> list[yaml.Node]:
    if not isinstance(node, yaml.SequenceNode):
        raise _Bad(node, field, f"{what} must be a list (lines starting with '- ')")
    if tag_problem(node):
        raise _Bad(node, field, tag_problem(node), "remove the tag")
    return list(node.value)


def _int(node: yaml.Node, field: str, minimum: int = 0, maximum: int = 1_000_000_000) -> int:
    v = _scalar(node, field) if isinstance(node, yaml.ScalarNode) else None
    if isinstance(v, bool) or not isinstance(v, int):
        raise _Bad(node, field, f"must be a whole number, got {v!r}")
    if v < minimum:
        raise _Bad(node, field, f"must be {minimum} or more, got {v}")
    if v > maximum:
        raise _Bad(node, field, f"must be {maximum:,} or less, got {v:,}")
    return v


def _text(node: yaml.Node, field: str) -> str:
    v = _scalar(node, field) if isinstance(node, yaml.ScalarNode) else None
    if v is None or isinstance(v, (dict, list)) or str(v).strip() == "":
        raise _Bad(node, field, "must be a non-empty text")
    return str(v)


def _texts(node: yaml.Node, field: str) -> tuple[str, ...]:
    if isinstance(node, yaml.SequenceNode):
        if tag_problem(node):
            raise _Bad(node, field, tag_problem(node), "remove the tag")
        if not node.value:
            raise _Bad(
                node, field, "an empty list matches nothing (or, for value, everything): list at least one value"
            )
        return tuple(_text(n, field) for n in node.value)
    return (_text(node, field),)


def _range(node: yaml.Node, field: str, maximum: int = 1_000) -> tuple[int | None, int | None]:
    lo = hi = None
    for key, knode, vnode in _mapping(node, field, field):
        if key == "min":
            lo = _int(vnode, f"{field}.min", maximum=maximum)
        elif key == "max":
            hi = _int(vnode, f"{field}.max", maximum=maximum)
        else:
            raise _Bad(
                knode, f"{field}.{key}", f"unknown key '{key}' (use min and/or max)", did_you_mean(key, ("min", "max"))
            )
    if lo is None and hi is None:
        raise _Bad(node, field, "needs min and/or max")
    if lo is not None and hi is not None and lo > hi:
        raise _Bad(node, field, f"min {lo} is greater than max {hi}")
    return lo, hi


def _record(node: yaml.Node, field: str, negate: bool) -> Record:
    if isinstance(node, yaml.ScalarNode):
        items = [("code", node, node)]
    else:
        items = _mapping(node, field, field)
    parts: dict[str, yaml.Node] = {}
    for key, knode, vnode in items:
        if key not in RECORD_KEYS:
            raise _Bad(
                knode,
                f"{field}.{key}",
                f"unknown key '{key}' (allowed: {', '.join(RECORD_KEYS)})",
                did_you_mean(key, RECORD_KEYS),
            )
        parts[key] = vnode
    if "code" not in parts:
        raise _Bad(node, field, "needs a code, e.g. `record: care_level` or `record: {code: care_level, min: 要介護1}`")
    code = _text(parts["code"], f"{field}.code")
    if code not in CODES:
        raise _Bad(
            parts["code"],
            f"{field}.code",
            f"unknown code '{code}'",
            did_you_mean(code, CODES) or f"known codes: {', '.join(CODES)}",
        )
    spec = CODES[code]
    values: tuple[str, ...] = ()
    if "value" in parts:
        values = _texts(parts["value"], f"{field}.value")
        if spec.value_type in ("level", "category", "arrears") and spec.values:
            for v in values:
                if v not in spec.values:
                    raise _Bad(
                        parts["value"],
                        f"{field}.value",
                        f"'{v}' is not a value of {code}",
                        did_you_mean(v, spec.values) or f"values: {', '.join(spec.values)}",
                    )
        elif spec.value_type in ("amount", "flag"):
            raise _Bad(
                parts["value"],
                f"{field}.value",
                f"{code} has no value to match; use min/max"
                if spec.value_type == "amount"
                else f"{code} is a yes/no record; drop `value`",
            )
    bounds: dict[str, tuple[int, str]] = {}
    for key in ("min", "max"):
        if key not in parts:
            continue
        if spec.value_type not in ORDERED_TYPES:
            raise _Bad(
                parts[key],
                f"{field}.{key}",
                f"{code} values cannot be compared; {key} works for {', '.join(c for c, s in CODES.items() if s.value_type in ORDERED_TYPES)}",
            )
        raw = _scalar(parts[key], f"{field}.{key}")
        if spec.value_type == "level":
            rank = level_rank(spec, str(raw))
            if rank is None:
                raise _Bad(
                    parts[key],
                    f"{field}.{key}",
                    f"'{raw}' is not a level of {code}",
                    did_you_mean(str(raw), spec.values) or f"levels: {', '.join(spec.values)}",
                )
            bounds[key] = (rank, str(raw))
        else:
            bounds[key] = (_int(parts[key], f"{field}.{key}"), str(raw))
    if "min" in bounds and "max" in bounds and bounds["min"][0] > bounds["max"][0]:
        raise _Bad(node, field, f"min {bounds['min'][1]} is above max {bounds['max'][1]}")
    within = _int(parts["within_months"], f"{field}.within_months", maximum=1200) if "within_months" in parts else 0
    return Record(
        code=code,
        values=values,
        min=bounds.get("min", (None, None))[0],
        max=bounds.get("max", (None, None))[0],
        min_label=bounds.get("min", (None, None))[1],
        max_label=bounds.get("max", (None, None))[1],
        within_months=within,
        negate=negate,
    )


def _single_key(node: yaml.Node, field: str, keys: tuple[str, ...], what: str) -> tuple[str, yaml.Node, yaml.Node]:
    items = _mapping(node, field, what)
    if len(items) != 1:
        names = ", ".join(k for k, _, _ in items) or "nothing"
        raise _Bad(
            node,
            field,
            f"each condition has exactly one key ({', '.join(keys)}); found {names}. Put several conditions under `all:`",
        )
    key, knode, vnode = items[0]
    if key not in keys:
        raise _Bad(
            knode, f"{field}.{key}", f"unknown condition '{key}' (allowed: {', '.join(keys)})", did_you_mean(key, keys)
        )
    return key, knode, vnode


def _combinator(key: str, vnode: yaml.Node, field: str, parse: Callable, kinds: tuple[type, type, type], depth: int):
    all_t, any_t, not_t = kinds
    if key == "not":
        return not_t(item=parse(vnode, f"{field}.not", depth + 1))
    nodes = _sequence(vnode, f"{field}.{key}", key)
    if not nodes:
        raise _Bad(vnode, f"{field}.{key}", f"`{key}` needs at least one condition")
    items = tuple(parse(n, f"{field}.{key}[{i}]", depth + 1) for i, n in enumerate(nodes))
    return (all_t if key == "all" else any_t)(items=items)


def _check_depth(node: yaml.Node, field: str, depth: int) -> None:
    """depth = how many all/any/not the condition is inside (0 for the whole `when:`)."""
    if depth > MAX_CONDITION_DEPTH:
        raise _Bad(
            node,
            field.split(".", 1)[0],
            f"conditions are nested too deeply: more than {MAX_CONDITION_DEPTH} levels of all/any/not inside each other",
            CONDITION_DEPTH_HINT,
        )


def parse_person(node: yaml.Node, field: str, depth: int = 0):
    _check_depth(node, field, depth)
    key, knode, vnode = _single_key(node, field, PERSON_KEYS, "a person condition")
    f = f"{field}.{key}"
    if key in ("all", "any", "not"):
        return _combinator(key, vnode, field, parse_person, (PAll, PAny, PNot), depth)
    if key == "age":
        lo, hi = _range(vnode, f, maximum=150)
        return Age(min=lo, max=hi)
    if key in ("record", "no_record"):
        return _record(vnode, f, negate=(key == "no_record"))
    if key == "relationship":
        values = _texts(vnode, f)
        for v in values:
            if v not in RELATIONSHIPS:
                raise _Bad(
                    vnode,
                    f,
                    f"unknown 続柄 '{v}'",
                    did_you_mean(v, RELATIONSHIPS) or f"use one of {', '.join(RELATIONSHIPS)}",
                )
        return Relationship(values=values)
    if key == "sex":
        v = _text(vnode, f)
        if v not in ("M", "F", "U"):
            raise _Bad(vnode, f, f"sex must be M, F or U, got '{v}'")
        return Sex(value=v)
    v = _scalar(vnode, f) if isinstance(vnode, yaml.ScalarNode) else None
    if not isinstance(v, bool):
        raise _Bad(vnode, f, "foreign_national must be true or false")
    return Foreign(value=v)


def parse_household(node: yaml.Node, field: str, depth: int = 0):
    _check_depth(node, field, depth)
    key, knode, vnode = _single_key(node, field, HOUSEHOLD_KEYS, "a household condition")
    f = f"{field}.{key}"
    if key in ("all", "any", "not"):
        return _combinator(key, vnode, field, parse_household, (HAll, HAny, HNot), depth)
    if key in ("member", "no_member"):
        return Member(indicator=_text(vnode, f), negate=(key == "no_member"))
    if key == "household_size":
        lo, hi = _range(vnode, f)
        return HouseholdSize(min=lo, max=hi)
    if key == "silos_touched":
        lo, hi = _range(vnode, f)
        return SilosTouched(min=lo, max=hi)
    parts = {k: (kn, vn) for k, kn, vn in _mapping(vnode, f, key)}
    for k, (kn, _) in parts.items():
        if k not in ("record", "at_least"):
            raise _Bad(
                kn, f"{f}.{k}", f"unknown key '{k}' (use record and at_least)", did_you_mean(k, ("record", "at_least"))
            )
    if "record" not in parts or "at_least" not in parts:
        raise _Bad(vnode, f, "needs `record:` (which records) and `at_least:` (how many different values)")
    return DistinctValues(
        record=_record(parts["record"][1], f"{f}.record", False),
        at_least=_int(parts["at_least"][1], f"{f}.at_least", 1),
    )


def _find_member_line(node: yaml.Node, name: str) -> int:
    """Line of the first `member: name` below node (for reference errors)."""
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if _scalar(k) in ("member", "no_member") and isinstance(v, yaml.ScalarNode) and str(_scalar(v)) == name:
                return v.start_mark.line + 1
            line = _find_member_line(v, name)
            if line:
                return line
    elif isinstance(node, yaml.SequenceNode):
        for v in node.value:
            line = _find_member_line(v, name)
            if line:
                return line
    return 0


ID_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_]*$")


def _id(node: yaml.Node) -> str:
    value = _text(node, "id")
    if not ID_PATTERN.match(value):
        raise _Bad(node, "id", f"id '{value}' must be letters, digits and _ and start with a letter or digit")
    return value


def _severity(node: yaml.Node) -> str:
    severity = _text(node, "severity")
    if severity not in SEVERITIES:
        raise _Bad(
            node,
            "severity",
            f"unknown severity '{severity}' (low, medium, high, urgent)",
            did_you_mean(severity, SEVERITIES),
        )
    return severity


def _silos(node: yaml.Node) -> tuple[str, ...]:
    silos = _texts(node, "silos")
    for s in silos:
        if s not in SILOS:
            raise _Bad(node, "silos", f"unknown silo '{s}' (use {', '.join(SILOS)})", did_you_mean(s, SILOS))
    return silos


def _parse_entry(node, file: str, kind: str, problems: list[RuleProblem]):
    """One indicator or flag; appends problems and returns (model or its id, when node, refs).

    refs = (parsed `when`, its node) of a flag, for the indicator-reference check.

    Each field is checked on its own, so one entry can report several problems."""
    allowed = INDICATOR_FIELDS if kind == "indicators" else FLAG_FIELDS
    rule_id = None
    failed = False

    def report(bad: _Bad) -> None:
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
        except _Bad as bad:
            report(bad)
            return None

    items = attempt(_mapping, node, "", f"each entry of `{kind}`")
    if items is None:
        return None, None, None
    fields = {k: vn for k, _, vn in items}
    if "id" in fields:
        try:
            rule_id = str(_scalar(fields["id"]))
        except _Bad:
            rule_id = None  # reported below, when the id is checked
    for k, kn, _ in items:
        if k not in allowed:
            report(_Bad(kn, k, f"unknown field '{k}' (allowed: {', '.join(allowed)})", did_you_mean(k, allowed)))
    required = (
        ("id", "title", "when") if kind == "indicators" else ("id", "title", "severity", "silos", "version", "when")
    )
    missing = [k for k in required if k not in fields]
    if missing:
        report(_Bad(node, missing[0], f"missing field(s): {', '.join(missing)}"))
        return rule_id, None, None
    values = {
        "id": attempt(_id, fields["id"]),
        "title": attempt(_text, fields["title"], "title"),
        "description": str(attempt(_scalar, fields["description"], "description") or "")
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
        values["version"] = attempt(_int, fields["version"], "version", 1)
        values["pattern"] = attempt(_int, fields["pattern"], "pattern", 1) if "pattern" in fields else None
        values["when"] = attempt(parse_household, fields["when"], "when")
    refs = (values["when"], fields["when"]) if kind == "flags" and values["when"] is not None else None
    if failed:
        return rule_id, None, refs
    if kind == "indicators":
        return Indicator(**values), None, None
    return Flag(**values), fields["when"], refs


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
        message = (
            f"conditions are nested too deeply: more than {MAX_CONDITION_DEPTH} levels of all/any/not inside each other"
        )
        suggestion = CONDITION_DEPTH_HINT
    return RuleProblem(file=file, line=err.line, rule_id=rule_id, field=field, message=message, suggestion=suggestion)


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
    broken_indicators: set[str] = set()
    flag_refs: list = []  # (file, line, flag id, (when, node)) of every flag whose `when` parsed
    for path in files:
        name = str(path)
        try:
            root = compose_yaml(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            problems.append(
                RuleProblem(
                    file=name, line=0, message="rule files must be UTF-8 text", suggestion="save the file as UTF-8"
                )
            )
            continue
        except YamlRefused as err:
            problems.append(_refused_problem(name, err))
            continue
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None)
            problems.append(
                RuleProblem(
                    file=name,
                    line=(mark.line + 1) if mark else 0,
                    message=f"YAML syntax error: {getattr(err, 'problem', err)}",
                    suggestion="check indentation and that each `key: value` has a space after the colon",
                )
            )
            continue
        if root is None:
            continue
        try:
            sections = _mapping(root, "", "a rule file")
        except _Bad as bad:
            problems.append(
                RuleProblem(
                    file=name,
                    line=bad.node.start_mark.line + 1,
                    message=bad.message + " with `indicators:` and/or `flags:`",
                )
            )
            continue
        for key, knode, vnode in sections:
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
            if tag_problem(vnode):
                problems.append(
                    RuleProblem(
                        file=name,
                        line=vnode.start_mark.line + 1,
                        field=key,
                        message=tag_problem(vnode),
                        suggestion="remove the tag",
                    )
                )
                continue
            target = indicators if key == "indicators" else flags
            for entry in vnode.value:
                model, _, refs = _parse_entry(entry, name, key, problems)
                if refs is not None:
                    flag_refs.append(
                        (name, entry.start_mark.line + 1, model.id if isinstance(model, Flag) else model, refs)
                    )
                if model is None or isinstance(model, str):
                    if key == "indicators" and model:
                        broken_indicators.add(model)  # already reported; references to it are not
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
    for file, line, flag_id, (when, node) in flag_refs:
        for ref in (c for c in leaves(when) if isinstance(c, Member)):
            if ref.indicator not in indicators and ref.indicator not in broken_indicators:
                problems.append(
                    RuleProblem(
                        file=file,
                        line=_find_member_line(node, ref.indicator) or line,
                        rule_id=flag_id,
                        field="when.member",
                        message=f"unknown indicator '{ref.indicator}'",
                        suggestion=did_you_mean(ref.indicator, indicators)
                        or f"define it under `indicators:` (known: {', '.join(indicators) or 'none'})",
                    )
                )
    if problems:
        raise RulesInvalid(problems)
    if not flags:
        raise RulesInvalid(
            [RuleProblem(file=str(rules_dir), line=0, message="no flags defined: add a `flags:` section")]
        )
    canonical = json.dumps(
        {
            "i": {k: v.model_dump(exclude={"file", "line"}) for k, v in sorted(indicators.items())},
            "f": {k: v.model_dump(exclude={"file", "line"}) for k, v in sorted(flags.items())},
        },
        sort_keys=True,
        ensure_ascii=False,
    )
    return RuleSet(indicators=indicators, flags=flags, hash=hashlib.sha256(canonical.encode()).hexdigest()[:16])


def check_rules(rules_dir: Path) -> list[RuleProblem]:
    """All problems of the rule files (empty list = valid)."""
    try:
        load_rules(rules_dir)
    except RulesInvalid as err:
        return err.problems
    return []
