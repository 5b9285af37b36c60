"""Logging in to the console in tests (TestClient, no browser)."""

from __future__ import annotations

import re

PASSWORD = "correct horse battery staple"
NAME = "山田"


def form_token(html: str) -> str:
    """The CSRF token of the (first) form on a page."""
    found = re.search(r'name="csrf" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def answer_form_token(html: str) -> str:
    """The CSRF token of an answer page's form (an agency's link, /a/TOKEN)."""
    found = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert found, html[:500]
    return found.group(1)


def login(client, name: str = NAME, password: str = PASSWORD, next: str = "/"):
    """POST the login form as a browser would (the form's page first, for its cookie and token)."""
    page = client.get(f"/login?next={next}")
    return client.post(
        "/login",
        data={"name": name, "password": password, "csrf": form_token(page.text), "next": next},
        follow_redirects=False,
    )


def add_coordinator(conn, name: str = NAME, password: str = PASSWORD) -> str:
    from engine.accounts import users

    users.add(conn, name, "coordinator", password, by="admin")
    return name
