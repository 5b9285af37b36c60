"""The FastAPI app of `engine web`: the workspace, rules and configuration are bound when it is
made (`create_app`), never taken from a request. Routers are added in ROUTERS; each route opens
its own connection (`db`) and calls the plain functions that do the work."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from engine.config.bound import Bound
from engine.store.db import connect
from engine.web.render import render
from engine.web.security import HEADERS, BodyLimit, SecurityHeaders, web_secret

STATIC = Path(__file__).parent / "static"


@dataclass
class WebContext(Bound):
    """What the app works on, fixed when it starts."""

    workspace: Path
    rules_dir: Path
    config_dir: Path

    @cached_property
    def secret(self) -> bytes:
        return web_secret(self.workspace)


def context(request: Request) -> WebContext:
    return request.app.state.ctx


def db(request: Request) -> Iterator[sqlite3.Connection]:
    """A connection to the workspace for one request."""
    conn = connect(context(request).workspace, any_thread=True)  # opened and used in different worker threads
    try:
        yield conn
    finally:
        conn.close()


Ctx = Depends(context)
Db = Depends(db)


def create_app(workspace: Path, rules_dir: Path, config_dir: Path) -> FastAPI:
    ctx = WebContext(Path(workspace).resolve(), Path(rules_dir).resolve(), Path(config_dir).resolve())
    ctx.config, ctx.secret  # noqa: B018 - load (and refuse a broken configuration) before serving
    app = FastAPI(docs_url=None, redoc_url=None, openapi_url=None)
    app.state.ctx = ctx
    app.add_middleware(SecurityHeaders)
    app.add_middleware(BodyLimit)  # outermost: before anything reads the body
    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/healthz", include_in_schema=False)
    def healthz() -> PlainTextResponse:
        return PlainTextResponse("ok")

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> HTMLResponse:
        if exc.status_code == 303 and exc.headers and "location" in exc.headers:  # a redirect raised (login)
            return HTMLResponse("", status_code=303, headers=exc.headers)
        message = exc.detail if isinstance(exc.detail, str) and exc.status_code != 404 else ERRORS.get(exc.status_code)
        return render(
            request, "error.html.j2", status_code=exc.status_code, message=message or "エラーが発生しました。"
        )

    @app.exception_handler(RequestValidationError)
    async def invalid(request: Request, exc: RequestValidationError) -> HTMLResponse:
        # never FastAPI's JSON, which echoes the input (a password typed in a too long field)
        return render(request, "error.html.j2", status_code=400, message="入力の形式が正しくありません。")

    @app.exception_handler(Exception)
    async def failed(request: Request, exc: Exception) -> HTMLResponse:
        # a bug: a page of our own, with the security headers (this handler runs outside their middleware)
        page = render(request, "error.html.j2", status_code=500, message="処理中にエラーが発生しました。")
        page.headers.update(HEADERS)
        return page

    for router in routers():
        app.include_router(router)
    return app


ERRORS = {404: "お探しのページは見つかりません。", 405: "この操作はできません。"}


def routers() -> list:
    """The routers of the console and of the agencies' answer pages (added as they are built)."""
    from engine.web import answers, console

    return [console.router, answers.router]
