"""The conditions of a rule's `when:`: person conditions (indicators) and household conditions
(flags), each key checked against the vocabulary of records, 続柄 and silos."""

from __future__ import annotations

from collections.abc import Callable

import yaml

from engine.rules.model import (
    Age,
    DistinctValues,
    Foreign,
    HAll,
    HAny,
    HNot,
    HouseholdSize,
    Member,
    PAll,
    PAny,
    PNot,
    Record,
    Relationship,
    Sex,
    SilosTouched,
)
from engine.rules.nodes import Bad, mapping, scalar, sequence, text, texts, whole_number
from engine.support.errors import did_you_mean
from engine.support.vocabulary import (
    ARREARS_LABELS,
    ARREARS_NAMES,
    CODE_NAMES,
    CODES,
    ORDERED_TYPES,
    code_of,
    level_rank,
    names_of,
    value_of,
)

RELATIONSHIPS = ("世帯主", "妻", "夫", "子", "父", "母", "孫", "兄弟姉妹", "祖父", "祖母", "その他")
PERSON_KEYS = ("all", "any", "not", "age", "record", "no_record", "relationship", "sex", "foreign_national")
HOUSEHOLD_KEYS = ("all", "any", "not", "member", "no_member", "household_size", "silos_touched", "distinct_values")
RECORD_KEYS = ("code", "value", "min", "max", "within_months")
MAX_CONDITION_DEPTH = (
    20  # all/any/not inside each other in a rule's `when:` (documented in docs/rules.md, 'Limits of a rule file')
)
CONDITION_DEPTH_MESSAGE = (
    f"conditions are nested too deeply: more than {MAX_CONDITION_DEPTH} levels of all/any/not inside each other"
)
CONDITION_DEPTH_HINT = (
    "simplify the condition: `not: {not: X}` is just X, and an `all:` inside an `all:` can be merged into it"
)


def _range(node: yaml.Node, field: str, maximum: int = 1_000) -> tuple[int | None, int | None]:
    lo = hi = None
    for key, knode, vnode in mapping(node, field, field):
        if key == "min":
            lo = whole_number(vnode, f"{field}.min", maximum=maximum)
        elif key == "max":
            hi = whole_number(vnode, f"{field}.max", maximum=maximum)
        else:
            raise Bad(
                knode, f"{field}.{key}", f"unknown key '{key}' (use min and/or max)", did_you_mean(key, ("min", "max"))
            )
    if lo is None and hi is None:
        raise Bad(node, field, "needs min and/or max")
    if lo is not None and hi is not None and lo > hi:
        raise Bad(node, field, f"min {lo} is greater than max {hi}")
    return lo, hi


def _value_hint(code: str, value: str) -> str:
    """The closest listed value (or Japanese name) of a fixed list, else the whole list."""
    spec = CODES[code]
    if spec.value_type == "arrears" and ":" in value:
        kind = value.partition(":")[0]
        return f"write the kind as the value and the months as min/max: `{{code: {code}, value: {kind}, min: 3}}`"
    if spec.value_type == "arrears":
        listed = ", ".join(f"{k} {label}" for k, label in ARREARS_LABELS.items())
        return did_you_mean(value, names_of(ARREARS_NAMES)) or f"values: {listed}"
    return did_you_mean(value, spec.values) or f"values: {', '.join(spec.values)}"


def _record(node: yaml.Node, field: str, negate: bool) -> Record:
    if isinstance(node, yaml.ScalarNode):
        items = [("code", node, node)]
    else:
        items = mapping(node, field, field)
    parts: dict[str, yaml.Node] = {}
    for key, knode, vnode in items:
        if key not in RECORD_KEYS:
            raise Bad(
                knode,
                f"{field}.{key}",
                f"unknown key '{key}' (allowed: {', '.join(RECORD_KEYS)})",
                did_you_mean(key, RECORD_KEYS),
            )
        parts[key] = vnode
    if "code" not in parts:
        raise Bad(node, field, "needs a code, e.g. `record: care_level` or `record: {code: care_level, min: 要介護1}`")
    code = str(code_of(text(parts["code"], f"{field}.code"), CODE_NAMES))  # 要介護・要支援認定 = care_level
    if code not in CODES:
        raise Bad(
            parts["code"],
            f"{field}.code",
            f"unknown code '{code}'",
            did_you_mean(code, names_of(CODE_NAMES)) or f"known codes: {', '.join(CODES)}",
        )
    spec = CODES[code]
    values: tuple[str, ...] = ()
    if "value" in parts:
        values = tuple(value_of(code, v) for v in texts(parts["value"], f"{field}.value"))  # 国保 = kokuho
        if spec.value_type in ("level", "category", "arrears") and spec.values:
            for v in values:
                if v not in spec.values:
                    raise Bad(
                        parts["value"],
                        f"{field}.value",
                        f"'{v}' is not a value of {code} ({spec.title})",
                        _value_hint(code, v),
                    )
        elif spec.value_type in ("amount", "flag"):
            raise Bad(
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
            raise Bad(
                parts[key],
                f"{field}.{key}",
                f"{code} values cannot be compared; {key} works for {', '.join(c for c, s in CODES.items() if s.value_type in ORDERED_TYPES)}",
            )
        raw = scalar(parts[key], f"{field}.{key}")
        if spec.value_type == "level":
            raw = value_of(code, str(raw))  # 要介護１ = 要介護1
            rank = level_rank(spec, raw)
            if rank is None:
                raise Bad(
                    parts[key],
                    f"{field}.{key}",
                    f"'{raw}' is not a level of {code}",
                    did_you_mean(str(raw), spec.values) or f"levels: {', '.join(spec.values)}",
                )
            bounds[key] = (rank, str(raw))
        else:
            bounds[key] = (whole_number(parts[key], f"{field}.{key}"), str(raw))
    if "min" in bounds and "max" in bounds and bounds["min"][0] > bounds["max"][0]:
        raise Bad(node, field, f"min {bounds['min'][1]} is above max {bounds['max'][1]}")
    within = (
        whole_number(parts["within_months"], f"{field}.within_months", maximum=1200) if "within_months" in parts else 0
    )
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
    items = mapping(node, field, what)
    if len(items) != 1:
        names = ", ".join(k for k, _, _ in items) or "nothing"
        raise Bad(
            node,
            field,
            f"each condition has exactly one key ({', '.join(keys)}); found {names}. Put several conditions under `all:`",
        )
    key, knode, vnode = items[0]
    if key not in keys:
        raise Bad(
            knode, f"{field}.{key}", f"unknown condition '{key}' (allowed: {', '.join(keys)})", did_you_mean(key, keys)
        )
    return key, knode, vnode


def _combinator(key: str, vnode: yaml.Node, field: str, parse: Callable, kinds: tuple[type, type, type], depth: int):
    all_t, any_t, not_t = kinds
    if key == "not":
        return not_t(item=parse(vnode, f"{field}.not", depth + 1))
    nodes = sequence(vnode, f"{field}.{key}", key)
    if not nodes:
        raise Bad(vnode, f"{field}.{key}", f"`{key}` needs at least one condition")
    items = tuple(parse(n, f"{field}.{key}[{i}]", depth + 1) for i, n in enumerate(nodes))
    return (all_t if key == "all" else any_t)(items=items)


def _check_depth(node: yaml.Node, field: str, depth: int) -> None:
    """depth = how many all/any/not the condition is inside (0 for the whole `when:`)."""
    if depth > MAX_CONDITION_DEPTH:
        raise Bad(
            node,
            field.split(".", 1)[0],
            CONDITION_DEPTH_MESSAGE,
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
        values = texts(vnode, f)
        for v in values:
            if v not in RELATIONSHIPS:
                raise Bad(
                    vnode,
                    f,
                    f"unknown 続柄 '{v}'",
                    did_you_mean(v, RELATIONSHIPS) or f"use one of {', '.join(RELATIONSHIPS)}",
                )
        return Relationship(values=values)
    if key == "sex":
        v = text(vnode, f)
        if v not in ("M", "F", "U"):
            raise Bad(vnode, f, f"sex must be M, F or U, got '{v}'")
        return Sex(value=v)
    v = scalar(vnode, f) if isinstance(vnode, yaml.ScalarNode) else None
    if not isinstance(v, bool):
        raise Bad(vnode, f, "foreign_national must be true or false")
    return Foreign(value=v)


def parse_household(node: yaml.Node, field: str, depth: int = 0):
    _check_depth(node, field, depth)
    key, knode, vnode = _single_key(node, field, HOUSEHOLD_KEYS, "a household condition")
    f = f"{field}.{key}"
    if key in ("all", "any", "not"):
        return _combinator(key, vnode, field, parse_household, (HAll, HAny, HNot), depth)
    if key in ("member", "no_member"):
        return Member(indicator=text(vnode, f), negate=(key == "no_member"))
    if key == "household_size":
        lo, hi = _range(vnode, f)
        return HouseholdSize(min=lo, max=hi)
    if key == "silos_touched":
        lo, hi = _range(vnode, f)
        return SilosTouched(min=lo, max=hi)
    parts = {k: (kn, vn) for k, kn, vn in mapping(vnode, f, key)}
    for k, (kn, _) in parts.items():
        if k not in ("record", "at_least"):
            raise Bad(
                kn, f"{f}.{k}", f"unknown key '{k}' (use record and at_least)", did_you_mean(k, ("record", "at_least"))
            )
    if "record" not in parts or "at_least" not in parts:
        raise Bad(vnode, f, "needs `record:` (which records) and `at_least:` (how many different values)")
    return DistinctValues(
        record=_record(parts["record"][1], f"{f}.record", False),
        at_least=whole_number(parts["at_least"][1], f"{f}.at_least", 1),
    )


def find_member_line(node: yaml.Node, name: str) -> int:
    """Line of the first `member: name` below node (for reference errors)."""
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            if scalar(k) in ("member", "no_member") and isinstance(v, yaml.ScalarNode) and str(scalar(v)) == name:
                return v.start_mark.line + 1
            line = find_member_line(v, name)
            if line:
                return line
    elif isinstance(node, yaml.SequenceNode):
        for v in node.value:
            line = find_member_line(v, name)
            if line:
                return line
    return 0
