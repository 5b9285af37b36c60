"""The one safe YAML reader of the rule and configuration files.

Safe: PyYAML's safe loader, with a nesting limit (its recursion would otherwise end in a
RecursionError), without aliases (an alias bomb expands to millions of nodes) and without tags
on lists and mappings (`!!python/object/apply:…`). Located: every value keeps its line, so that
a pydantic validation error (or a cross-check) can name file, line and field.

The rule loader walks the composed nodes itself (compose_file); configuration files are read
into plain data with their lines (read_yaml) and validated against pydantic models (validate).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ValidationError

from engine.rules.problems import RuleProblem
from engine.support.errors import EngineError, Problem, did_you_mean
from engine.support.yamlhints import hint, is_type_tag, worth_telling

MAX_YAML_DEPTH = 50  # lists and mappings inside each other; no configuration comes near it
# a rule, configuration or outcome file larger than this is refused before it is parsed: the
# largest real one (a directory of a few thousand places) is well under 2 MB, and PyYAML needs
# about 25 times a file's size in memory and minutes for tens of megabytes
MAX_YAML_BYTES = 4 * 1024 * 1024
TAG_HINT = "remove the tag"
KEY_HINT = "write `name: value`"


class YamlRefused(EngineError):
    """A file the engine does not read: not UTF-8, not YAML, or valid YAML nested too deeply or
    with an alias (`*name`).

    `steps` are the (parent node, key node or list index) pairs from the root down to the
    refused node, so that a caller can name the field (and the rule) it is in."""

    def __init__(self, line: int, message: str, suggestion: str, steps: list = ()):
        super().__init__(message, [Problem(line=line, message=message, suggestion=suggestion)])
        self.line = line
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
    """PyYAML's composer with a nesting limit and without aliases."""

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
                event.start_mark.line + 1,
                f"aliases are not supported: *{event.anchor} would repeat another value{where}",
                "write the value out in full where it is needed",
                self._trail + [(parent, index)],
            )
        if len(self._trail) >= MAX_YAML_DEPTH:
            raise YamlRefused(
                self.peek_event().start_mark.line + 1,
                f"nested too deeply: more than {MAX_YAML_DEPTH} levels of lists and mappings inside each other",
                "check for unclosed or repeated brackets; no setting needs this much nesting",
                self._trail + [(parent, index)],
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


def compose_file(path: Path, kind: str) -> yaml.Node | None:
    """The node tree of a file (None if it is empty); raises YamlRefused if the engine does not read it.
    `kind` names the files in the message for a file that is not UTF-8 ("rule", "configuration")."""
    size = path.stat().st_size
    if size > MAX_YAML_BYTES:
        raise YamlRefused(
            0,
            f"the file is {size / 1024 / 1024:.1f} MB: {kind} files are read up to {MAX_YAML_BYTES // 1024 // 1024} MB",
            "check that this is the right file; split a very large directory of places by area into fewer, shorter entries",
        )
    try:
        return compose_yaml(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise YamlRefused(0, f"{kind} files must be UTF-8 text", "save the file as UTF-8") from None
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        raise YamlRefused(
            (mark.line + 1) if mark else 0,
            f"YAML syntax error: {getattr(err, 'problem', err)}",
            "check indentation and that each `key: value` has a space after the colon",
        ) from None


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


def duplicate_key(key: str, first_line: int) -> str:
    return f"duplicate key '{key}' (also on line {first_line}): the second would silently replace the first"


def unreadable_value(err: Exception) -> str:
    """A scalar YAML cannot construct (`2024-02-30`, `!tag x`)."""
    return f"cannot read this value ({getattr(err, 'problem', None) or err}); put it in quotes"


class YamlFile(BaseModel):
    """The data of one file, the line (1-based) of each path in it, and the text as written of each
    value YAML read as something other than text (8050, no, 2026-04-01), for the hints of validate."""

    file: str
    data: Any
    lines: dict[tuple, int]
    written: dict[tuple, str] = {}

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
        return RuleProblem(
            file=self.file,
            line=self.line(path),
            rule_id=entry_id,
            entry=_entry_word(path),
            field=_field(path),
            message=message,
            suggestion=suggestion,
        )


def _entry_word(path: tuple) -> str:
    """What the entry a path is inside is called in a message: the list holding it, in the
    singular (agencies → agency, figures → figure, places → place); any list of rules → rule."""
    for key, index in zip(path, path[1:]):
        if isinstance(key, str) and isinstance(index, int):
            if key.endswith("rules"):
                return "rule"
            return key[:-3] + "y" if key.endswith("ies") else key.removesuffix("s")
    return "entry"


def _field(path: tuple) -> str:
    return ".".join(str(p) for p in path if not isinstance(p, int))


def _problem(file: str, at: yaml.Node, path: tuple, message: str, suggestion: str | None = None) -> RuleProblem:
    return RuleProblem(
        file=file, line=at.start_mark.line + 1, field=_field(path), message=message, suggestion=suggestion
    )


def _build(node: yaml.Node, path: tuple, lines: dict, problems: list[RuleProblem], file: str, written: dict) -> Any:
    lines[path] = node.start_mark.line + 1
    if tag_problem(node):  # `!!python/object/apply:…` on a list or mapping: never constructed
        problems.append(_problem(file, node, path, tag_problem(node), TAG_HINT))
        return None
    if isinstance(node, yaml.MappingNode):
        out: dict = {}
        for k, v in node.value:
            bad_key = key_problem(k)
            if bad_key:  # `? [reason, lead]`
                problems.append(_problem(file, k, path, bad_key, KEY_HINT))
                continue
            key = str(k.value)
            if key in out:
                problems.append(_problem(file, k, path + (key,), duplicate_key(key, lines[path + (key,)])))
                continue
            out[key] = _build(v, path + (key,), lines, problems, file, written)
            lines[path + (key,)] = k.start_mark.line + 1
        return out
    if isinstance(node, yaml.SequenceNode):
        return [_build(v, path + (i,), lines, problems, file, written) for i, v in enumerate(node.value)]
    try:
        value = yaml.SafeLoader("").construct_object(node, deep=True)
    except (yaml.YAMLError, ValueError) as err:
        if node.tag == "tag:yaml.org,2002:timestamp":  # 2026-02-30: the field's own check says what is wrong
            return node.value
        problems.append(_problem(file, node, path, unreadable_value(err)))
        return None
    if not isinstance(value, str):
        written[path] = node.value
    return value


def read_yaml(path: Path, problems: list[RuleProblem]) -> YamlFile | None:
    """Parse `path`; if the file is missing or unreadable append a problem and return None."""
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
        root = compose_file(path, "configuration")
    except YamlRefused as err:
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
    lines: dict[tuple, int] = {}
    written: dict[tuple, str] = {}
    data = _build(root, (), lines, problems, name, written) if root is not None else {}
    return YamlFile(file=name, data=data, lines=lines, written=written)


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
        for e in worth_telling(data, err.errors()):
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
                suggestion = hint(e, doc.written.get(_real_path(doc.data, loc)))
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
        elif is_type_tag(p):
            continue
        else:
            data = None
        out.append(p)
    return tuple(out)


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
