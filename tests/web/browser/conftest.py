"""The browser tests: the real app under uvicorn on a free loopback port (a thread of this process,
so clock.pin moves its clock too), driven by Debian's headless chromium through Playwright's sync
API — one browser per module. Chromium missing is a failure with the reason, never a skip: CI
installs it (.ci/run)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime

import pytest
from typer.testing import CliRunner

from engine.cli.main import app as cli_app
from engine.links.tokens import TOKEN_TEXT
from engine.support import clock
from tests.helpers.browser import NoChromium, launch, new_page
from tests.helpers.console import NAME, PASSWORD
from tests.helpers.mail import messages
from tests.helpers.paths import CONFIG_DIR, RULES_DIR
from tests.helpers.web_server import served_in_thread

HOSTILE = '<script>alert("x")</script><img src=x onerror=alert(1)>'


@pytest.fixture(scope="module")
def browser():
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        try:
            b = launch(p)
        except NoChromium as err:
            pytest.fail(str(err), pytrace=False)
        yield b
        b.close()


@dataclass
class Web:
    """The served workspace: its base URL, and what every page opened in it showed."""

    base: str
    dialogs: list[str] = field(default_factory=list)  # alert/confirm/prompt that fired (there must be none)
    errors: list[str] = field(default_factory=list)  # uncaught page errors (there is no script at all)
    pages: list = field(default_factory=list)

    def page(self, browser):
        """A new browser (own cookies) watching for dialogs and script errors."""
        page = new_page(browser)
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        page.on("pageerror", lambda e: self.errors.append(str(e)))
        self.pages.append(page)
        return page

    def url(self, path: str) -> str:
        return self.base + path


@pytest.fixture
def web(workspace, conn):
    """The app served on the test's workspace (make the database first: `conn`, `convened`, …)."""
    with served_in_thread(workspace) as base:
        served = Web(base)
        yield served
        for page in served.pages:
            page.context.close()


def add_account(workspace, name: str = NAME, password: str = PASSWORD) -> None:
    """`engine users add NAME --role coordinator`, the password piped in on stdin."""
    r = CliRunner().invoke(
        cli_app,
        ["users", "add", name, "--role", "coordinator", "--workspace", str(workspace), "--by", "admin"],
        input=password + "\n",
    )
    assert r.exit_code == 0, r.output


def log_in(page, web: Web, name: str = NAME, password: str = PASSWORD, path: str = "/"):
    """Open a console page, get sent to the login form, fill it in and submit it."""
    page.goto(web.url(path))
    assert re.search(r"/login\?next=", page.url) or page.url.endswith("/login"), page.url
    page.fill("#name", name)
    page.fill("#password", password)
    submit(page, "ログイン")
    return page


def submit(page, button: str):
    """Click the button named `button` and wait for the page it leads to; its response (after any redirect)."""
    with page.expect_navigation() as navigation:
        page.get_by_role("button", name=button).click()
    return navigation.value


MONDAY = datetime(2026, 12, 7, 9, 0, tzinfo=clock.TOKYO)  # the first business day after the meeting of 12-04
LINK = re.compile(r"https?://[^\s<>\"]+/a/" + TOKEN_TEXT)
TOKEN_IN_URL = re.compile(r"/a/(" + TOKEN_TEXT + ")")


def everything(conn) -> dict[str, list]:
    """Every row of every table."""
    tables = [t for (t,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name")]
    return {t: conn.execute(f"SELECT * FROM {t}").fetchall() for t in tables}  # noqa: S608 - names from sqlite_master


def nightly_and_dispatch(workspace, day) -> None:
    """`engine run --date DAY`: the nightly cycle, then the dispatch (configs/mail.yaml: the file transport)."""
    r = CliRunner().invoke(
        cli_app,
        ["run", "--workspace", str(workspace), "--rules", str(RULES_DIR), "--config", str(CONFIG_DIR)]
        + ["--date", day.isoformat()],
    )
    assert r.exit_code == 0, r.output


def link_in_outbox(workspace, key_prefix: str, case_id: str) -> str:
    """The answer link of the sent e-mail `key_prefix…` about `case_id`, read from its .eml file."""
    found = []
    for msg in messages(workspace / "outbox").values():
        text = msg.get_body(("plain",)).get_content()
        if str(msg["X-Engine-Key"]).startswith(key_prefix) and case_id in text:
            found += LINK.findall(text)
    assert len(found) == 1, found
    return found[0]
