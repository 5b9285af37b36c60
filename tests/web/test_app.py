"""The web surface's shared policy (engine/web/security.py): headers on every answer, CSRF, rate
limits, errors in Japanese, the secret kept owner-only."""

from __future__ import annotations

import stat

import pytest
from fastapi import HTTPException
from starlette.requests import Request

from engine.support import clock
from engine.web.security import HEADERS, RateLimiter, check_csrf, csrf_token, web_secret


def test_every_answer_carries_the_security_headers(client):
    for path in ("/healthz", "/static/console.css", "/no-such-page"):
        r = client.get(path)
        for name, value in HEADERS.items():
            assert r.headers[name] == value, (path, name)
    assert "script-src" not in HEADERS["Content-Security-Policy"]  # default-src 'none': no script at all
    assert "'unsafe-inline'" not in HEADERS["Content-Security-Policy"]


def test_an_unknown_page_is_told_in_japanese(client):
    r = client.get("/no-such-page")
    assert r.status_code == 404 and "お探しのページは見つかりません" in r.text


def test_the_stylesheet_is_served_locally(client):
    r = client.get("/static/console.css")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/css")


def _request(origin: str | None = None) -> Request:
    headers = [(b"host", b"127.0.0.1:8300")] + ([(b"origin", origin.encode())] if origin else [])
    return Request(
        {
            "type": "http",
            "method": "POST",
            "scheme": "http",
            "path": "/",
            "headers": headers,
            "server": ("127.0.0.1", 8300),
            "query_string": b"",
        }
    )


def test_csrf_token_is_bound_to_its_scope_and_origin(workspace):
    secret = web_secret(workspace)
    good = csrf_token(secret, "session:abc")
    check_csrf(_request(), secret, "session:abc", good)
    check_csrf(_request("http://127.0.0.1:8300"), secret, "session:abc", good)
    for origin, scope, given in (
        (None, "session:other", good),  # another session's form
        (None, "session:abc", None),  # no token
        (None, "session:abc", good[:-1] + ("1" if good[-1] == "0" else "0")),  # tampered
        ("http://evil.example", "session:abc", good),  # right token, another site
    ):
        with pytest.raises(HTTPException) as err:
            check_csrf(_request(origin), secret, scope, given)
        assert err.value.status_code == 403


@pytest.mark.regression("issue 13: found by the browser tests, every form of the console refused in chromium")
def test_origin_null_from_our_own_no_referrer_pages_is_judged_by_sec_fetch_site(workspace):
    """A page sent with Referrer-Policy: no-referrer makes chromium post its same-site form with
    `Origin: null`; the browser's Sec-Fetch-Site then tells our own form from another site's."""
    secret = web_secret(workspace)
    good = csrf_token(secret, "session:abc")

    def request(**headers) -> Request:
        r = _request()
        r.scope["headers"] += [(k.replace("_", "-").encode(), v.encode()) for k, v in headers.items()]
        return r

    check_csrf(request(origin="null", sec_fetch_site="same-origin"), secret, "session:abc", good)
    check_csrf(request(origin="null"), secret, "session:abc", good)  # no Fetch metadata: the token decides
    for headers in ({"origin": "null", "sec_fetch_site": "cross-site"}, {"sec_fetch_site": "same-site"}):
        with pytest.raises(HTTPException) as err:
            check_csrf(request(**headers), secret, "session:abc", good)
        assert err.value.status_code == 403
    with pytest.raises(HTTPException):
        check_csrf(request(origin="null", sec_fetch_site="same-origin"), secret, "session:abc", None)


def test_the_web_secret_is_made_once_and_owner_only(workspace):
    first = web_secret(workspace)
    assert web_secret(workspace) == first and len(first) >= 43
    assert stat.S_IMODE((workspace / "web" / "secret").stat().st_mode) == 0o600


def test_rate_limit_counts_a_sliding_window_on_the_one_clock(monkeypatch):
    t = [1000.0]
    monkeypatch.setattr(clock, "monotonic", lambda: t[0])
    limit = RateLimiter(3, 60)
    assert [limit.allow("a") for _ in range(4)] == [True, True, True, False]
    assert limit.allow("b")  # per key
    t[0] += 61
    assert limit.allow("a")
    with pytest.raises(HTTPException) as err:
        for _ in range(5):
            limit.check("a")
    assert err.value.status_code == 429


def test_every_web_template_compiles_in_the_web_environment():
    from jinja2.sandbox import ImmutableSandboxedEnvironment

    from engine.web.render import ENV

    assert isinstance(ENV, ImmutableSandboxedEnvironment) and ENV.autoescape
    names = ENV.list_templates()
    assert "base.html.j2" in names and len(names) > 5
    for name in names:
        ENV.get_template(name)
