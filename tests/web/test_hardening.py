"""What an attack review of the web surface found (issue 13), each kept closed: bodies too large
are refused before anything reads them; a locked account costs the same password check as any
failure; FastAPI's validation errors do not echo the input; a bug's 500 page keeps the security
headers; an agenda version number too large for SQLite is a 400, not a crash."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from engine.accounts import passwords, users
from engine.web.app import db
from engine.web.security import HEADERS, MAX_BODY
from tests.helpers.console import NAME, PASSWORD, add_coordinator, login

pytestmark = pytest.mark.regression("issue 13: attack review of the web surface")


def test_a_body_over_the_limit_is_refused_before_it_is_read(client):
    huge = {"note": "A" * (MAX_BODY + 1)}
    for path in ("/a/" + "0" * 64, "/login", "/logout"):
        r = client.post(path, data=huge)
        assert r.status_code == 413 and "大きすぎます" in r.text, path
        assert r.headers["Content-Security-Policy"] == HEADERS["Content-Security-Policy"]
    chunked = client.post("/login", content=iter([b"a=" + b"A" * MAX_BODY, b"A" * 10]))  # no Content-Length
    assert chunked.status_code == 413
    assert client.post("/a/" + "0" * 64, data={"note": "A" * 100}).status_code == 404  # a normal body goes on


def test_a_locked_account_costs_the_same_password_check_as_any_failure(conn, monkeypatch):
    add_coordinator(conn)
    for _ in range(users.MAX_FAILURES):
        users.authenticate(conn, NAME, "wrong password here")
    checks = []
    real = passwords.verify
    monkeypatch.setattr(
        passwords, "verify", lambda stored, given: checks.append(stored is not None) or real(stored, given)
    )
    assert users.authenticate(conn, NAME, "wrong password here").result == "locked"
    assert users.authenticate(conn, "nobody", "wrong password here").result == "failed"
    assert checks == [True, False]  # the locked account's own hash, and the dummy one for an unknown name


def test_a_validation_error_is_a_page_that_does_not_echo_the_input(client):
    secret = "my-secret-password-" + "x" * 3000
    r = client.post("/login", data={"name": "<script>alert(1)</script>" * 20, "password": secret, "csrf": "x"})
    assert r.status_code == 400 and r.headers["content-type"].startswith("text/html")
    assert "my-secret-password" not in r.text and "<script>alert" not in r.text
    assert "入力の形式が正しくありません" in r.text


def test_a_bug_shows_our_500_page_with_the_security_headers(app, coordinator):
    def broken():
        raise RuntimeError("a bug")
        yield

    with TestClient(app, base_url="http://127.0.0.1:8300", raise_server_exceptions=False) as c:
        login(c, NAME, PASSWORD)
        app.dependency_overrides[db] = broken  # logged in: now the case list's connection fails
        r = c.get("/cases")
    assert r.status_code == 500 and "処理中にエラーが発生しました" in r.text and "a bug" not in r.text
    for name, value in HEADERS.items():
        assert r.headers[name] == value


def test_an_agenda_version_too_large_for_sqlite_is_refused(console):
    r = console.get("/meetings/M-20261204-1000-S/agendas/houkatsu_chuo/v99999999999999999999999")
    assert r.status_code == 400 and r.headers["Content-Security-Policy"] == HEADERS["Content-Security-Policy"]
