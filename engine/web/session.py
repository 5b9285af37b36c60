"""Who is logged in to the console: the session cookie, the `Coordinator` dependency of every
console route, and the CSRF token of a session's forms.

- The cookie (COOKIE) holds a random 256-bit session id; HttpOnly, SameSite=Strict, Path=/, and
  Secure when the request came over https (behind the reverse proxy: uvicorn takes the scheme
  from X-Forwarded-Proto sent by 127.0.0.1, docs/web.md).
- A browser without a live session is sent to /login?next=<the page> (303), for a POST too.
- Changes a console request makes are written under the account's name with {"via": "console"}
  in the entry's detail (`acting`), which no CLI command writes: a CLI --by with the same
  name is told apart from a login.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from urllib.parse import quote

from fastapi import Depends, HTTPException, Request
from fastapi.responses import Response
from pydantic import BaseModel

from engine.accounts import sessions
from engine.store.lifecycle import acting_via
from engine.web.app import Ctx, Db, WebContext
from engine.web.security import check_csrf, csrf_token

COOKIE = "engine_session"
VIA = "console"


class User(BaseModel):
    """The coordinator behind a request."""

    name: str
    role: str
    session_scope: str  # the CSRF scope of this session's forms ("session:<sha256 of its id>")


def is_https(request: Request) -> bool:
    return request.url.scheme == "https"


def set_session_cookie(request: Request, response: Response, session_id: str) -> None:
    response.set_cookie(
        COOKIE,
        session_id,
        httponly=True,
        samesite="strict",
        secure=is_https(request),
        path="/",
        max_age=sessions.LIFETIME_HOURS * 3600,
    )


def clear_session_cookie(request: Request, response: Response) -> None:
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict", secure=is_https(request))


def login_redirect(request: Request) -> HTTPException:
    """303 to the login page, which comes back to this page (GET) after login."""
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    where = "/login" if request.method != "GET" or target == "/" else f"/login?next={quote(target, safe='')}"
    return HTTPException(status_code=303, headers={"location": where})


def current_user(request: Request, conn: sqlite3.Connection) -> User | None:
    found = sessions.find(conn, request.cookies.get(COOKIE))
    if found is None:
        return None
    return User(name=found.name, role=found.role, session_scope=f"session:{found.id_hash}")


def require_coordinator(request: Request, conn: sqlite3.Connection = Db) -> User:
    """The logged-in coordinator; without a live session, a redirect to the login page."""
    user = current_user(request, conn)
    if user is None or user.role != "coordinator":
        raise login_redirect(request)
    return user


Coordinator = Depends(require_coordinator)


def _ctx(request: Request) -> WebContext:
    return request.app.state.ctx


def form_csrf(request: Request, user: User) -> str:
    """The CSRF token for the forms of this user's session."""
    return csrf_token(_ctx(request).secret, user.session_scope)


def check_form(request: Request, user: User, given: str | None) -> None:
    """403 unless `given` is this session's CSRF token (and the POST comes from our origin)."""
    check_csrf(request, _ctx(request).secret, user.session_scope, given)


@contextmanager
def acting(user: User) -> Iterator[str]:
    """Around a console change: yields the actor to pass to the engine's functions (the account
    name); every audit entry written inside carries {"via": "console"}."""
    with acting_via(VIA):
        yield user.name


__all__ = ["COOKIE", "Coordinator", "Ctx", "User", "acting", "check_form", "form_csrf", "page", "require_coordinator"]


def page(request: Request, user: User, template: str, *, status_code: int = 200, **values) -> Response:
    """A console page: the `template` with the nav (the user, and the CSRF token of its forms)."""
    from engine.web.render import render

    return render(request, template, status_code=status_code, user=user, csrf=form_csrf(request, user), **values)
