"""`engine demo` on a small town (400 households, seed 3), and the scan of what it e-mailed."""

from __future__ import annotations

import json

from engine.cli.main import app
from tests.helpers.cli import runner
from tests.helpers.paths import RULES_DIR


def demo(workspace, *extra, days=0):
    """The first night only (days=0), unless a simulated span is asked for."""
    result = runner.invoke(
        app,
        [
            "demo",
            "--households",
            "400",
            "--seed",
            "3",
            "--date",
            "2026-11-27",
            "--workspace",
            str(workspace),
            "--rules",
            str(RULES_DIR),
            "--json",
            "--days",
            str(days),
            *extra,
        ],
    )
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def assert_no_personal_data_mailed(ws) -> None:
    """Every e-mail in the outbox, scanned for every name, kana, address and birth date of the town."""
    import email
    import email.policy
    import sqlite3

    db = sqlite3.connect(ws / "engine.db")
    secrets = {
        v
        for row in db.execute(
            "SELECT p.name, p.kana, h.address, p.birth_date FROM persons p JOIN households h USING (household_id)"
        )
        for v in row
        if v
    }
    # family and given names alone, from 3 characters (2-character kana such as リー occur in ordinary words: アウトリーチ)
    secrets |= {
        n
        for row in db.execute("SELECT name, kana FROM persons")
        for full in row
        if full
        for n in full.split()
        if len(n) >= 3
    }
    assert len(secrets) > 1000
    mails = list((ws / "outbox").glob("*.eml"))
    assert mails
    for path in mails:
        msg = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
        text = "\n".join(str(msg[h]) for h in ("Subject", "To", "From")) + "\n".join(
            p.get_content() for p in msg.walk() if p.get_content_maintype() == "text"
        )
        hits = [s for s in secrets if s in text]
        assert not hits, f"{hits[:5]} in {path.name}"
