"""Logging in to the console (TestClient): the login form's CSRF, the session cookie's flags, the
same answer for every failure, lock-out and idle time-out on the pinned clock, no console page
without a session, logout, and the audit entries of each."""

from __future__ import annotations

import json
import re
from datetime import timedelta

import pytest

from engine.accounts import sessions, users
from engine.support import clock
from engine.web.console.login import FAILED, LOGIN_COOKIE
from engine.web.session import COOKIE
from tests.helpers.console import NAME, PASSWORD, form_token, login

PAGES = ("/", "/cases", "/cases/C-2026-00001")


def later(minutes: float) -> None:
    clock.pin(clock.now() + timedelta(minutes=minutes))


def events(conn) -> list[tuple]:
    return conn.execute("SELECT actor, event, detail FROM audit_log WHERE event LIKE 'log%' ORDER BY seq").fetchall()


@pytest.mark.parametrize("path", PAGES)
def test_a_console_page_without_a_session_goes_to_login(client, path):
    r = client.get(path, follow_redirects=False)
    assert r.status_code == 303
    assert r.headers["location"].startswith("/login")
    if path != "/":
        assert "next=" in r.headers["location"]


def test_a_post_without_a_session_goes_to_login(client):
    r = client.post("/logout", data={"csrf": "x"}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"


def test_login_lands_on_the_page_asked_for(client, coordinator, convened):
    first = client.get("/cases/C-2026-00001", follow_redirects=False).headers["location"]
    page = client.get(first)
    r = client.post(
        "/login",
        data={"name": NAME, "password": PASSWORD, "csrf": form_token(page.text), "next": "/cases/C-2026-00001"},
        follow_redirects=False,
    )
    assert r.status_code == 303 and r.headers["location"] == "/cases/C-2026-00001"
    assert client.get("/cases/C-2026-00001").status_code == 200


@pytest.mark.parametrize("target", ["//evil.example/x", "https://evil.example/", "/\\evil.example", "javascript:x"])
def test_next_never_leaves_the_site(client, coordinator, target):
    r = login(client, next=target)
    assert r.status_code == 303 and r.headers["location"] == "/"


def test_session_cookie_flags(client, coordinator):
    r = login(client)
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith(f"{COOKIE}="))
    flags = {part.strip().lower() for part in cookie.split(";")}
    assert "httponly" in flags and "samesite=strict" in flags and "path=/" in flags
    assert "secure" not in flags  # plain http on loopback: a Secure cookie would never come back


def test_session_cookie_is_secure_over_https(app, coordinator):
    from fastapi.testclient import TestClient

    with TestClient(app, base_url="https://console.example.lg.jp") as c:
        r = login(c)
    cookie = next(c for c in r.headers.get_list("set-cookie") if c.startswith(f"{COOKIE}="))
    assert "secure" in {part.strip().lower() for part in cookie.split(";")}


def test_every_failure_says_the_same(client, coordinator):
    unknown = login(client, name="nobody")
    wrong = login(client, password="not the password")
    assert unknown.status_code == wrong.status_code == 401
    assert FAILED in unknown.text and FAILED in wrong.text
    for _ in range(users.MAX_FAILURES):
        login(client, password="not the password")
    locked = login(client)  # the right password, but locked
    assert locked.status_code == 401 and FAILED in locked.text
    assert COOKIE not in client.cookies


def test_lock_out_after_five_failures_and_open_again_after_15_minutes(client, coordinator, conn):
    for _ in range(users.MAX_FAILURES):
        assert login(client, password="not the password").status_code == 401
    assert login(client).status_code == 401
    later(users.LOCK_MINUTES)
    assert login(client).status_code == 303
    assert client.get("/").status_code == 200


def test_login_without_the_form_token_is_refused(client, coordinator):
    client.get("/login")
    r = client.post("/login", data={"name": NAME, "password": PASSWORD}, follow_redirects=False)
    assert r.status_code == 403


def test_login_without_the_form_cookie_is_refused(client, coordinator):
    token = form_token(client.get("/login").text)
    client.cookies.delete(LOGIN_COOKIE, path="/login")
    client.cookies.clear()
    r = client.post("/login", data={"name": NAME, "password": PASSWORD, "csrf": token}, follow_redirects=False)
    assert r.status_code == 403


def test_login_from_another_site_is_refused(client, coordinator):
    token = form_token(client.get("/login").text)
    r = client.post(
        "/login",
        data={"name": NAME, "password": PASSWORD, "csrf": token},
        headers={"origin": "https://evil.example"},
        follow_redirects=False,
    )
    assert r.status_code == 403


def test_logins_from_one_address_are_rate_limited(client, coordinator):
    from engine.web.console.login import ATTEMPTS_PER_ADDRESS

    codes = [login(client, name=f"guess{i}").status_code for i in range(ATTEMPTS_PER_ADDRESS + 1)]
    assert codes[:-1] == [401] * ATTEMPTS_PER_ADDRESS and codes[-1] == 429


def test_idle_time_out_sends_back_to_login(console):
    later(sessions.IDLE_MINUTES - 1)
    assert console.get("/").status_code == 200
    later(sessions.IDLE_MINUTES)
    r = console.get("/", follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"].startswith("/login")


def test_logout_needs_the_session_token_then_ends_the_session(console, conn):
    old = console.cookies[COOKIE]
    assert console.post("/logout", data={}, follow_redirects=False).status_code == 403
    assert console.post("/logout", data={"csrf": "0" * 64}, follow_redirects=False).status_code == 403
    token = form_token(console.get("/").text)
    r = console.post("/logout", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 303 and r.headers["location"] == "/login"
    assert conn.execute("SELECT COUNT(*) FROM sessions").fetchone()[0] == 0
    console.cookies.set(COOKIE, old)  # the old cookie, replayed
    assert console.get("/", follow_redirects=False).status_code == 303


def test_audit_entries_for_login_and_logout(console, conn):
    console.post("/logout", data={"csrf": form_token(console.get("/").text)})
    login(console, password="not the password")
    login(console, name="nobody")
    got = [(actor, event, json.loads(detail)["via"]) for actor, event, detail in events(conn)]
    assert got == [
        (NAME, "login", "console"),
        (NAME, "logout", "console"),
        (NAME, "login_failed", "console"),
        ("web", "login_failed", "console"),
    ]
    text = "\n".join(conn.iterdump())
    assert PASSWORD not in text and "not the password" not in text and "nobody" not in text


def test_the_token_of_one_session_does_not_work_for_another(client, coordinator, conn):
    login(client)
    token = form_token(client.get("/").text)
    client.cookies.clear()
    login(client)
    r = client.post("/logout", data={"csrf": token}, follow_redirects=False)
    assert r.status_code == 403


def test_a_login_page_needs_no_script(client):
    html = client.get("/login").text
    assert not re.search(r"<script|\son\w+=|style=", html, re.I)
