"""Server-side rendering of the web pages: Jinja2 with autoescape, templates in
engine/templates/web/. Every page gets the CSRF token of its scope when one is given."""

from __future__ import annotations

from pathlib import Path

from fastapi import Request
from fastapi.responses import HTMLResponse
from jinja2 import FileSystemLoader, StrictUndefined, select_autoescape
from jinja2.sandbox import ImmutableSandboxedEnvironment

from engine.support.dates import wareki_with_weekday

TEMPLATES = Path(__file__).resolve().parents[1] / "templates" / "web"

ENV = ImmutableSandboxedEnvironment(
    loader=FileSystemLoader(TEMPLATES),
    autoescape=select_autoescape(default=True, default_for_string=True),
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)
ENV.filters["wareki"] = wareki_with_weekday


def render(request: Request, name: str, *, status_code: int = 200, **values) -> HTMLResponse:
    """The page `name` rendered with `values` (and the request, for links)."""
    body = ENV.get_template(name).render(request=request, status_code=status_code, **values)
    return HTMLResponse(body, status_code=status_code)
