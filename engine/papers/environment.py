"""The papers' Jinja2 environment: templates from configs/templates/ first (local overrides), then
the engine's own (engine/templates/), sandboxed, with autoescape for HTML and for whatever an HTML
template includes."""

from __future__ import annotations

import functools
from pathlib import Path

import jinja2
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import BaseModel

from engine.config import Config

TEMPLATES = Path(__file__).resolve().parents[1] / "templates"


def environment(config: Config) -> jinja2.Environment:
    """Templates from configs/templates/ first (local overrides), then the engine's own. One
    environment per templates folder and process (a notice per reminder must not rebuild it;
    jinja2 still reloads a template whose file changed)."""
    return _environment(config.templates_dir)


HTML_INCLUDE = "html:"  # the name under which a template included by an HTML template is compiled


def is_html(name: str) -> bool:
    return name.startswith(HTML_INCLUDE) or name.endswith((".html", ".html.j2"))


class _Loader(jinja2.BaseLoader):
    """The folders' templates, also under the name `html:NAME` (the same file, compiled with autoescape)."""

    def __init__(self, inner: jinja2.BaseLoader):
        self.inner = inner

    def get_source(self, environment, template):
        return self.inner.get_source(environment, template.removeprefix(HTML_INCLUDE))

    def list_templates(self):
        return self.inner.list_templates()


class _Papers(ImmutableSandboxedEnvironment):
    """Autoescape is decided per template name, and an included template is compiled once under
    its own name: notice.html.j2 including notice.txt.j2 got its text unescaped (a link, a tracking
    image or a hidden span in an action text reached the HTML part). Whatever an HTML template
    includes, extends or imports is therefore loaded as `html:NAME` and escaped too; the text
    parts, rendered under the plain name, stay unescaped."""

    def join_path(self, template: str, parent: str) -> str:
        return HTML_INCLUDE + template if is_html(parent) and not is_html(template) else template

    def is_safe_attribute(self, obj, attr: str, value) -> bool:
        """A declared field of a pydantic model (the papers' Agenda and what it holds) is data, and
        safe to read; everything else (methods, `__class__`, `model_copy`, a list's `append`) goes
        through the sandbox's own checks, which cost more than rendering the papers once did."""
        return (isinstance(obj, BaseModel) and attr in _fields(type(obj))) or super().is_safe_attribute(
            obj, attr, value
        )


@functools.cache
def _fields(model: type[BaseModel]) -> frozenset[str]:
    return frozenset(model.model_fields)  # pydantic builds the mapping anew at every read


@functools.lru_cache(maxsize=8)
def _environment(templates_dir: Path | None) -> jinja2.Environment:
    loaders = [jinja2.FileSystemLoader(str(templates_dir))] if templates_dir else []
    loaders.append(jinja2.FileSystemLoader(str(TEMPLATES)))
    # sandboxed: templates in the configuration folder are files anyone who can edit configs/ may
    # change; they must not reach Python (e.g. `lipsum.__globals__['os']`) as the operator
    return _Papers(
        loader=_Loader(jinja2.ChoiceLoader(loaders)),
        autoescape=is_html,
        undefined=jinja2.StrictUndefined,
        keep_trailing_newline=True,
    )
