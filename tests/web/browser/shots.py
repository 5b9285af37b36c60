"""The screenshots of docs/img/ (`make screenshots`): a demo town (2,500 households, 14 simulated
days), served by the real app, photographed by Debian's chromium at 1280x900 — the login page, 今日,
a case, a meeting, the outcome form refused with its problems, and an agency's answer page before
and after answering. Japanese needs a CJK font (Debian: fonts-noto-cjk).

    .venv/bin/python -m tests.web.browser.shots [--out docs/img]
"""

from __future__ import annotations

import argparse
import hashlib
import sqlite3
import tempfile
from datetime import datetime
from pathlib import Path

from playwright.sync_api import sync_playwright
from typer.testing import CliRunner

from engine.cli.main import app as cli_app
from engine.support import clock
from tests.helpers.browser import launch, new_page
from tests.helpers.console import NAME, PASSWORD
from tests.helpers.mail import messages
from tests.helpers.paths import CONFIG_DIR, ROOT, RULES_DIR
from tests.helpers.web_server import served_in_thread
from tests.web.browser.conftest import TOKEN_IN_URL, Web, add_account, log_in, submit

START = datetime(2026, 11, 27, 9, 0, tzinfo=clock.TOKYO)
END = datetime(2026, 12, 11, 10, 0, tzinfo=clock.TOKYO)  # the demo's last day (START + 14)


def demo(ws: Path) -> None:
    args = ["demo", "--households", "2500", "--seed", "42", "--days", "14", "--workspace", str(ws)]
    with clock.pinned(START):
        r = CliRunner().invoke(cli_app, [*args, "--rules", str(RULES_DIR), "--config", str(CONFIG_DIR)])
    assert r.exit_code == 0, r.output


def open_lead_request(ws: Path) -> str:
    """The token of a lead request still open, read from the sent .eml."""
    conn = sqlite3.connect(ws / "engine.db")
    try:
        open_hashes = {
            h
            for (h,) in conn.execute(
                "SELECT token_hash FROM answer_links WHERE kind = 'lead_request' AND used_at IS NULL AND revoked_at IS NULL"
            )
        }
    finally:
        conn.close()
    for msg in messages(ws / "outbox").values():
        for token in TOKEN_IN_URL.findall(msg.get_body(("plain",)).get_content()):
            if hashlib.sha256(token.encode()).hexdigest() in open_hashes:
                return token
    raise AssertionError("no open lead request in the demo's outbox")


def owed(ws: Path) -> tuple[str, str, str]:
    """(meeting, case) whose outcome is not recorded (a meeting already held first), and an active case."""
    conn = sqlite3.connect(ws / "engine.db")
    try:
        meeting, case = conn.execute(
            "SELECT c.meeting_id, c.case_id FROM cases c JOIN meetings m ON m.meeting_id = c.meeting_id "
            "WHERE c.status = 'convened' ORDER BY m.held_on > ?, m.held_on, c.case_id LIMIT 1",
            (END.date().isoformat(),),
        ).fetchone()
        (active,) = conn.execute(
            "SELECT case_id FROM cases WHERE status = 'active' ORDER BY case_id LIMIT 1"
        ).fetchone()
    finally:
        conn.close()
    return meeting, case, active


def shoot(out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    with tempfile.TemporaryDirectory() as tmp:
        ws = Path(tmp) / "ws"
        demo(ws)
        add_account(ws)
        token = open_lead_request(ws)
        meeting, case, active = owed(ws)
        clock.pin(END)
        try:
            with served_in_thread(ws) as base, sync_playwright() as p:
                browser = launch(p)
                page = new_page(browser)

                def save(name: str) -> None:
                    path = out / f"{name}.png"
                    page.screenshot(path=str(path))
                    written.append(path)

                page.goto(f"{base}/login")
                page.fill("#name", NAME)
                save("login")
                log_in(page, Web(base), NAME, PASSWORD)
                save("today")
                page.goto(f"{base}/cases/{active}")
                save("case")
                page.goto(f"{base}/meetings/{meeting}")
                save("meeting")
                page.goto(f"{base}/meetings/{meeting}/cases/{case}/outcome")
                page.select_option("#decision", "plan")
                page.select_option("#lead", "")
                page.fill("input[name=role_action] >> nth=0", "介護サービスの利用調整")
                page.fill("input[name=role_due] >> nth=0", "R8.13.40")
                page.fill("#review_on", "2027-01-10")
                submit(page, "結果を記録する")
                save("outcome-errors")
                agency = new_page(browser)
                agency.goto(f"{base}/a/{token}")
                page = agency
                save("answer-open")
                agency.check("input[name=choice][value=accept]")
                submit(agency, "回答を送信する")
                save("answer-done")
                browser.close()
        finally:
            clock.unpin()
    return written


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "img")
    for path in shoot(parser.parse_args().out):
        print(f"{path} ({path.stat().st_size // 1024} kB)")


if __name__ == "__main__":
    main()
