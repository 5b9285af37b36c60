"""What the mail-fault tests assert and how they drive the outbox: a configuration sending to a faulty
server, messages queued for it, each message's row, and the guarantees checked after every fault (a
failed message is shown to the coordinator, nothing left half-way, nothing arrives twice unmarked)."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

from engine.casework.sweep import daily_sweep
from engine.cli.main import app
from engine.config import Smtp
from engine.outbox import send_pending
from engine.papers.notices import Notice, queue_notice
from tests.helpers.cli import runner

T0 = datetime(2026, 11, 30, 0, 0, tzinfo=UTC)  # Monday 09:00 in Japan
DIGEST_DAY = date(2026, 11, 30)  # a business day: the sweep queues the coordinator's digest
TOKYO = ZoneInfo("Asia/Tokyo")
AGENCIES = [
    "houkatsu_chuo",
    "houkatsu_kita",
    "houkatsu_minami",
    "houkatsu_higashi",
    "kikan_soudan",
    "kodomo_center",
    "fukushi_jimusho",
    "kyoiku_iinkai",
]


def smtp(cfg, port: int, *, timeout: float = 2.0, max_attempts: int = 5):
    mail = cfg.mail.model_copy(
        update={
            "transport": "smtp",
            "max_attempts": max_attempts,
            "smtp": Smtp(host="127.0.0.1", port=port, starttls=False, timeout=timeout),
        }
    )
    return cfg.model_copy(update={"mail": mail})


def queue_messages(conn, cfg, agencies: list[str], prefix: str = "faulttest") -> list[str]:
    """One notice per agency, keys in the order the dispatch sends them."""
    keys = []
    for i, agency in enumerate(agencies):
        key = f"{prefix}:{i:02d}"
        assert queue_notice(
            conn,
            cfg,
            Notice(key=key, kind="faulttest", recipient=agency, title="送信障害の試験", lines=[f"試験メール {i}"]),
        )
        keys.append(key)
    conn.commit()
    return keys


def row(conn, key: str) -> SimpleNamespace:
    status, attempts, error, next_at, dup = conn.execute(
        "SELECT status, attempts, last_error, next_attempt_at, possible_duplicate FROM outbox WHERE message_key = ?",
        (key,),
    ).fetchone()
    return SimpleNamespace(
        status=status,
        attempts=attempts,
        last_error=error or "",
        next_at=datetime.fromisoformat(next_at) if next_at else None,
        dup=bool(dup),
    )


def statuses(conn) -> dict[str, str]:
    return dict(conn.execute("SELECT message_key, status FROM outbox"))


def marked(conn) -> set[str]:
    return {k for (k,) in conn.execute("SELECT message_key FROM outbox WHERE possible_duplicate = 1")}


def email_of(cfg, agency: str) -> str:
    return cfg.agencies[agency].email


def engine_cli(workspace, *args: str):
    """`engine ARGS --workspace W`, never ending in a traceback."""
    result = runner.invoke(app, [*args, "--workspace", str(workspace)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output  # never a traceback
    return result


def assert_shown(conn, workspace, key: str, code: int | str) -> None:
    """A failed message is in `engine outbox --status failed` with its code, and in the audit log."""
    listed = engine_cli(workspace, "outbox", "--status", "failed")
    assert listed.exit_code == 0
    line = next((ln for ln in listed.output.splitlines() if key in ln), None)
    assert line is not None and "送信失敗" in line and str(code) in line, listed.output
    as_json = json.loads(engine_cli(workspace, "outbox", "--status", "failed", "--json").stdout)
    assert any(m["message_key"] == key and str(code) in m["last_error"] for m in as_json["messages"])
    logged = [
        json.loads(d or "{}") for (d,) in conn.execute("SELECT detail FROM audit_log WHERE event = 'mail_failed'")
    ]
    assert any(d.get("message_key") == key for d in logged)


def assert_in_digest(conn, workspace, rules, cfg, server, day: date, keys: list[str], now: datetime) -> None:
    """The coordinator's digest of `day` names every failed key, and reaches the coordinator."""
    assert daily_sweep(conn, rules, cfg, day).digest
    digest_key = f"digest:{day.isoformat()}"
    parts = json.loads(conn.execute("SELECT parts FROM outbox WHERE message_key = ?", (digest_key,)).fetchone()[0])
    for key in keys:
        assert key in parts["text"] and key in parts["html"]
    assert send_pending(conn, cfg, workspace, now=now).sent >= 1
    received = server.plan.text_of(digest_key)
    assert "送信に失敗したメール" in received and all(k in received for k in keys)


def assert_no_silent_outcome(conn, server) -> None:
    """Nothing left half-way (sending), every sent message arrived, and a message arrived more
    than once only if the engine marked it possible_duplicate."""
    got, rows = server.plan.keys(), statuses(conn)
    assert "sending" not in rows.values()
    duplicated = {k for k, n in got.items() if n > 1}
    assert duplicated <= marked(conn), f"sent twice without the possible_duplicate mark: {duplicated - marked(conn)}"
    assert all(got[k] >= 1 for k, s in rows.items() if s == "sent")


def run_until_done(conn, cfg, workspace, now: datetime, runs: int = 8) -> datetime:
    for _ in range(runs):
        now += timedelta(days=1)
        send_pending(conn, cfg, workspace, now=now)
        if not conn.execute("SELECT 1 FROM outbox WHERE status = 'pending'").fetchone():
            break
    return now
