"""/login and /logout. The login form's CSRF scope is a short-lived random value in its own
cookie (LOGIN_COOKIE, set with the form): the token is csrf_token(secret, "login:" + value), so a
form from another site, or a POST without the form's cookie, is refused. A failed login says the
same thing for an unknown name, a wrong password and a locked account."""

from __future__ import annotations

import secrets
import sqlite3

from fastapi import APIRouter, Form, Request
from fastapi.responses import RedirectResponse, Response

from engine.accounts import sessions, users
from engine.web.app import Ctx, Db, WebContext
from engine.web.render import render
from engine.web.security import RateLimiter, check_csrf, csrf_token
from engine.web.session import (
    COOKIE,
    Coordinator,
    User,
    check_form,
    clear_session_cookie,
    current_user,
    is_https,
    set_session_cookie,
)

router = APIRouter()

LOGIN_COOKIE = "engine_login"
LOGIN_COOKIE_MINUTES = 30
ATTEMPTS_PER_ADDRESS = 20  # POST /login per address and ATTEMPTS_WINDOW (whatever the names tried)
ATTEMPTS_WINDOW = 300.0  # seconds
FAILED = (
    f"ログインできませんでした。アカウント名とパスワードを確かめてください。"
    f"{users.MAX_FAILURES} 回続けて誤ると、アカウントは {users.LOCK_MINUTES} 分間ロックされます。"
)


def safe_next(target: str | None) -> str:
    """Where to go after login: a path of this site only (never another site, //host or /\\host)."""
    if not target or not target.startswith("/") or target.startswith(("//", "/\\")) or len(target) > 500:
        return "/"
    if any(ord(c) < 32 or c == "\\" for c in target):
        return "/"
    return target


def _limiter(request: Request) -> RateLimiter:
    state = request.app.state
    if not hasattr(state, "login_limiter"):
        state.login_limiter = RateLimiter(ATTEMPTS_PER_ADDRESS, ATTEMPTS_WINDOW)
    return state.login_limiter


def _address(request: Request) -> str:
    return request.client.host if request.client else ""


def _form(request: Request, ctx: WebContext, *, target: str, error: str = "", name: str = "", status: int = 200):
    value = secrets.token_urlsafe(24)
    response = render(
        request,
        "console/login.html.j2",
        status_code=status,
        csrf=csrf_token(ctx.secret, f"login:{value}"),
        next=target,
        error=error,
        account=name,
    )
    response.set_cookie(
        LOGIN_COOKIE,
        value,
        max_age=LOGIN_COOKIE_MINUTES * 60,
        httponly=True,
        samesite="strict",
        secure=is_https(request),
        path="/login",
    )
    return response


@router.get("/login")
def login_page(request: Request, next: str = "/", ctx: WebContext = Ctx, conn: sqlite3.Connection = Db) -> Response:
    if current_user(request, conn) is not None:
        return RedirectResponse(safe_next(next), status_code=303)
    return _form(request, ctx, target=safe_next(next))


@router.post("/login")
def login(
    request: Request,
    name: str = Form("", max_length=200),
    password: str = Form("", max_length=2000),
    csrf: str = Form("", max_length=200),
    next: str = Form("/", max_length=600),
    ctx: WebContext = Ctx,
    conn: sqlite3.Connection = Db,
) -> Response:
    _limiter(request).check(_address(request))
    value = request.cookies.get(LOGIN_COOKIE, "")
    check_csrf(request, ctx.secret, f"login:{value}", csrf if value else None)
    attempt = users.authenticate(conn, name, password, address=_address(request))
    if attempt.result != "ok" or attempt.session_id is None:
        return _form(request, ctx, target=safe_next(next), error=FAILED, name=name.strip()[:64], status=401)
    sessions.end(conn, request.cookies.get(COOKIE))  # a session id known before login is never reused
    response = RedirectResponse(safe_next(next), status_code=303)
    set_session_cookie(request, response, attempt.session_id)
    response.delete_cookie(LOGIN_COOKIE, path="/login", httponly=True, samesite="strict", secure=is_https(request))
    return response


@router.post("/logout")
def logout(
    request: Request, user: User = Coordinator, csrf: str = Form("", max_length=200), conn: sqlite3.Connection = Db
) -> Response:
    check_form(request, user, csrf)
    users.logout(conn, request.cookies.get(COOKIE), address=_address(request))
    response = RedirectResponse("/login", status_code=303)
    clear_session_cookie(request, response)
    return response
