"""Reading the values of a rule file's YAML nodes: mappings, lists, numbers and texts, each
checked where it is written. A value that is wrong raises Bad (the node, its field, what is
wrong and a suggestion), which the loader turns into a located RuleProblem."""

from __future__ import annotations

from typing import Any

import yaml

from engine.support.yamlfile import KEY_HINT, TAG_HINT, duplicate_key, key_problem, tag_problem, unreadable_value


class Bad(Exception):
    """One problem found while walking a node; collected by the caller."""

    def __init__(self, node: yaml.Node, field: str, message: str, suggestion: str | None = None):
        self.node, self.field, self.message, self.suggestion = node, field, message, suggestion


_constructor = yaml.SafeLoader("")


def scalar(node: yaml.Node, field: str = "") -> Any:
    try:
        return _constructor.construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError) as err:  # e.g. `title: 2024-02-30`, `id: !tag x`
        raise Bad(node, field, unreadable_value(err)) from err


def untagged(node: yaml.Node, field: str) -> None:
    """Refuse a list or mapping with a tag (`!!python/object/apply:…`)."""
    if tag_problem(node):
        raise Bad(node, field, tag_problem(node), TAG_HINT)


def mapping(node: yaml.Node, field: str, what: str) -> list[tuple[str, yaml.Node, yaml.Node]]:
    if not isinstance(node, yaml.MappingNode):
        raise Bad(node, field, f"{what} must be a mapping (key: value lines)")
    untagged(node, field)
    out, seen = [], {}
    for k, v in node.value:
        bad_key = key_problem(k)
        if bad_key:
            raise Bad(k, field, bad_key, KEY_HINT)
        key = str(scalar(k, field))
        if key in seen:
            raise Bad(k, f"{field}.{key}".lstrip("."), duplicate_key(key, seen[key]))
        seen[key] = k.start_mark.line + 1
        out.append((key, k, v))
    return out


def sequence(node: yaml.Node, field: str, what: str) -> list[yaml.Node]:
    if not isinstance(node, yaml.SequenceNode):
        raise Bad(node, field, f"{what} must be a list (lines starting with '- ')")
    untagged(node, field)
    return list(node.value)


def whole_number(node: yaml.Node, field: str, minimum: int = 0, maximum: int = 1_000_000_000) -> int:
    v = scalar(node, field) if isinstance(node, yaml.ScalarNode) else None
    if isinstance(v, bool) or not isinstance(v, int):
        raise Bad(node, field, f"must be a whole number, got {v!r}")
    if v < minimum:
        raise Bad(node, field, f"must be {minimum} or more, got {v}")
    if v > maximum:
        raise Bad(node, field, f"must be {maximum:,} or less, got {v:,}")
    return v


def text(node: yaml.Node, field: str) -> str:
    v = scalar(node, field) if isinstance(node, yaml.ScalarNode) else None
    if v is None or isinstance(v, (dict, list)) or str(v).strip() == "":
        raise Bad(node, field, "must be a non-empty text")
    return str(v)


def texts(node: yaml.Node, field: str) -> tuple[str, ...]:
    if isinstance(node, yaml.SequenceNode):
        untagged(node, field)
        if not node.value:
            raise Bad(node, field, "an empty list matches nothing (or, for value, everything): list at least one value")
        return tuple(text(n, field) for n in node.value)
    return (text(node, field),)
