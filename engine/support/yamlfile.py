"""Read a YAML configuration file into plain data while remembering the line of every value,
so that a pydantic validation error (or a cross-check) can name file, line and field.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from engine.rules.loader import (
    RuleProblem,
    RulesInvalid,
    YamlRefused,
    compose_yaml,
    did_you_mean,
    key_problem,
    tag_problem,
)


class YamlFile(BaseModel):
    """The data of one file and the line (1-based) of each path in it."""

    file: str
    data: Any
    lines: dict[tuple, int]

    def line(self, path: tuple) -> int:
        """Line of `path`, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path:
            if path in self.lines:
                return self.lines[path]
            path = path[:-1]
        return self.lines.get((), 1)

    def problem(
        self, path: tuple, message: str, *, suggestion: str | None = None, entry_id: str | None = None
    ) -> RuleProblem:
        path = _real_path(self.data, tuple(path))
        field = ".".join(str(p) for p in path if not isinstance(p, int))
        return RuleProblem(
            file=self.file, line=self.line(path), rule_id=entry_id, field=field, message=message, suggestion=suggestion
        )


def _field(path: tuple) -> str:
    return ".".join(str(p) for p in path if not isinstance(p, int))


def _build(node: yaml.Node, path: tuple, lines: dict, problems: list[RuleProblem], file: str) -> Any:
    lines[path] = node.start_mark.line + 1
    if tag_problem(node):  # `!!python/object/apply:…` on a list or mapping: never constructed
        problems.append(
            RuleProblem(
                file=file,
                line=node.start_mark.line + 1,
                field=_field(path),
                message=tag_problem(node),
                suggestion="remove the tag",
            )
        )
        return None
    if isinstance(node, yaml.MappingNode):
        out: dict = {}
        for k, v in node.value:
            bad_key = key_problem(k)
            if bad_key:  # `? [reason, lead]`
                problems.append(
                    RuleProblem(
                        file=file,
                        line=k.start_mark.line + 1,
                        field=_field(path),
                        message=bad_key,
                        suggestion="write `name: value`",
                    )
                )
                continue
            key = str(k.value)
            if key in out:
                problems.append(
                    RuleProblem(
                        file=file,
                        line=k.start_mark.line + 1,
                        field=_field(path + (key,)),
                        message=f"duplicate key '{key}' (also on line {lines[path + (key,)]}): the second would silently replace the first",
                    )
                )
                continue
            out[key] = _build(v, path + (key,), lines, problems, file)
            lines[path + (key,)] = k.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(v, path + (i,), lines, problems, file) for i, v in enumerate(node.value)]
    try:
        return yaml.SafeLoader("").construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError) as err:
        if node.tag == "tag:yaml.org,2002:timestamp":  # 2026-02-30: the field's own check says what is wrong
            return node.value
        problems.append(
            RuleProblem(
                file=file,
                line=node.start_mark.line + 1,
                field=_field(path),
                message=f"cannot read this value ({getattr(err, 'problem', None) or err}); put it in quotes",
            )
        )
        return None


def read_yaml(path: Path, problems: list[RuleProblem]) -> YamlFile | None:
    """Parse `path`; on a syntax or encoding error append a problem and return None."""
    name = str(path)
    if not path.is_file():
        problems.append(
            RuleProblem(
                file=name,
                line=0,
                message="file not found",
                suggestion="copy it from the engine's configs/ folder and adapt it",
            )
        )
        return None
    try:
        root = compose_yaml(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        problems.append(
            RuleProblem(
                file=name, line=0, message="configuration files must be UTF-8 text", suggestion="save the file as UTF-8"
            )
        )
        return None
    except YamlRefused as err:  # nested too deeply, or an alias
        field = ".".join(str(p) for p in err.path if isinstance(p, str) and p != "?")
        problems.append(
            RuleProblem(
                file=name,
                line=err.line,
                field=field if len(field) <= 60 else field[:59] + "…",
                message=err.message,
                suggestion=err.suggestion,
            )
        )
        return None
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
        return None
    lines: dict[tuple, int] = {}
    data = _build(root, (), lines, problems, name) if root is not None else {}
    return YamlFile(file=name, data=data, lines=lines)


def validate(
    doc: YamlFile, model: type[BaseModel], problems: list[RuleProblem], *, path: tuple = (), id_key: str = "id"
):
    """Validate doc.data[path] against `model`; each pydantic error becomes a located problem."""
    data = doc.data
    for p in path:
        data = data[p]
    try:
        return model.model_validate(data)
    except ValidationError as err:
        for e in err.errors():
            loc = path + tuple(e["loc"])
            entry_id = _entry_id(doc.data, loc, id_key)
            suggestion = None
            if e["type"] == "extra_forbidden":
                owner = _model_at(model, tuple(e["loc"])[:-1])
                allowed = list(owner.model_fields) if owner else []
                suggestion = did_you_mean(loc[-1], allowed) or (f"allowed: {', '.join(allowed)}" if allowed else None)
                message = f"unknown field '{loc[-1]}'"
            elif e["type"] == "missing":
                message = f"missing field '{loc[-1]}'"
            else:
                message = e["msg"].removeprefix("Value error, ")
                if "input" in e and not isinstance(e["input"], (dict, list)):
                    message += f" (got {e['input']!r})"
            problems.append(doc.problem(loc, message, suggestion=suggestion, entry_id=entry_id))
        return None


def _real_path(data: Any, loc: tuple) -> tuple:
    """`loc` without the union tags pydantic adds: an element that is a real key (or index) of
    the data is kept even if it looks like a tag (a key `areas[0]`)."""
    out = []
    for p in loc:
        if isinstance(data, dict) and p in data:
            data = data[p]
        elif isinstance(data, list) and isinstance(p, int) and not isinstance(p, bool) and -len(data) <= p < len(data):
            data = data[p]
        elif _is_type_tag(p):
            continue
        else:
            data = None
        out.append(p)
    return tuple(out)


def _is_type_tag(p) -> bool:
    """pydantic adds the union member it tried to the location ('tuple[str, ...]', "literal['any']")."""
    return isinstance(p, str) and ("[" in p or p.startswith(("function-", "literal")))


def _entry_id(data: Any, loc: tuple, id_key: str) -> str | None:
    """The id of the list entry a location is inside (for `rule lead_8050` in messages)."""
    found = None
    for p in loc:
        try:
            data = data[p]
        except (KeyError, IndexError, TypeError):
            break
        if isinstance(data, dict) and isinstance(data.get(id_key), (str, int)):
            found = str(data[id_key])
    return found


def _model_at(model: type[BaseModel], loc: tuple) -> type[BaseModel] | None:
    """The pydantic model class that a location points into (for listing allowed fields)."""
    import typing

    current: Any = model
    for p in loc:
        if isinstance(p, int) or p not in getattr(current, "model_fields", {}):
            continue  # a list index, a dict key (slots.support) or a union tag
        ann = current.model_fields[p].annotation
        current = _inner_model(ann, typing)
        if current is None:
            return None
    return current if isinstance(current, type) and issubclass(current, BaseModel) else None


def _inner_model(ann, typing):
    if isinstance(ann, type) and issubclass(ann, BaseModel):
        return ann
    for arg in typing.get_args(ann):
        found = _inner_model(arg, typing)
        if found is not None:
            return found
    return None


__all__ = ["YamlFile", "read_yaml", "validate", "RuleProblem", "RulesInvalid"]
