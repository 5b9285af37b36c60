"""Load: 50 agencies answer from their links at the same moment, against the real `engine web` (its
own process), while the nightly cycle runs again and again in a third process on the same
workspace. Nothing is lost, nothing fails with 5xx (a busy database waits), and each answer is
recorded once: ten of the links are posted twice at once, and the second POST gets 回答済み.

The workspace is a small demo town (2,500 households, 14 simulated days, which leaves open lead
requests, actions and attendance questions); the links are read from the sent .eml files. Each
agency comes through the reverse proxy with its own address (X-Forwarded-For, which uvicorn
believes from 127.0.0.1), as the per-address rate limit expects."""

from __future__ import annotations

import hashlib
import json
import os
import re
import subprocess
import sys
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import date
from pathlib import Path

import httpx
import pytest
from typer.testing import CliRunner

from engine.cli.main import app as cli_app
from engine.links.tokens import TOKEN_TEXT
from engine.store.db import connect
from tests.helpers.mail import messages
from tests.helpers.paths import CONFIG_DIR, RULES_DIR
from tests.helpers.web_server import served_by_engine_web

ANSWERS = 50
TWICE = 10  # links posted twice at once
END = date(2026, 12, 11)  # the demo's last day (2026-11-27 + 14): the workspace lives on it
NOW = f"{END.isoformat()}T10:00:00+09:00"
TOKEN = re.compile(r"/a/(" + TOKEN_TEXT + ")")
CSRF = re.compile(r'name="csrf_token" value="([^"]*)"')
CHOICE = re.compile(r'name="choice" value="([^"]*)"')

# the nightly cycle, in a loop, in its own process: `engine run --no-send` until told to stop
NIGHTLY_LOOP = """
import sys
from pathlib import Path
from typer.testing import CliRunner
from engine.cli.main import app
ws, rules, config, day, started, stop = sys.argv[1:]
runner, cycles = CliRunner(), 0
Path(started).touch()
while not (cycles and Path(stop).exists()):
    r = runner.invoke(app, ["run", "--no-send", "--workspace", ws, "--rules", rules, "--config", config, "--date", day])
    if r.exit_code != 0:
        sys.exit(f"cycle {cycles + 1}: {r.output} {r.exception!r}")
    cycles += 1
print(cycles)
"""


@pytest.fixture(scope="module")
def town(tmp_path_factory) -> Path:
    ws = tmp_path_factory.mktemp("load") / "ws"
    args = ["demo", "--households", "2500", "--seed", "42", "--days", "14", "--workspace", str(ws)]
    r = CliRunner().invoke(cli_app, [*args, "--rules", str(RULES_DIR), "--config", str(CONFIG_DIR)])
    assert r.exit_code == 0, r.output
    return ws


def open_links(ws: Path) -> list[tuple[str, dict]]:
    """(token, its answer_links row) of every link in the outbox still open on END, questions of
    every kind first, so that lead requests and actions are in the 50 and not only attendance."""
    tokens = {
        hashlib.sha256(t.encode()).hexdigest(): t
        for msg in messages(ws / "outbox").values()
        for t in TOKEN.findall(msg.get_body(("plain",)).get_content())
    }
    conn = connect(ws, readonly=True)
    conn.row_factory = __import__("sqlite3").Row
    try:
        rows = conn.execute(
            "SELECT * FROM answer_links WHERE used_at IS NULL AND revoked_at IS NULL AND expires_on >= ? "
            "ORDER BY kind = 'attendance', link_id",
            (END.isoformat(),),
        ).fetchall()
    finally:
        conn.close()
    return [(tokens[r["token_hash"]], dict(r)) for r in rows if r["token_hash"] in tokens]


def answer(base: str, token: str, address: str, posts: int, barrier: threading.Barrier) -> list[tuple[int, str]]:
    """One agency: open the page, pick the first choice (accept, done, stable, attend), then `posts`
    POSTs at the same moment as every other agency's."""
    headers = {"X-Forwarded-For": address}
    with httpx.Client(base_url=base, headers=headers, timeout=20) as client:
        page = client.get(f"/a/{token}")
        if page.status_code != 200:
            barrier.abort()
            raise AssertionError((token[:6], page.status_code, page.text[:300]))
        form = {"csrf_token": CSRF.search(page.text)[1], "choice": CHOICE.search(page.text)[1]}
        barrier.wait()
        with ThreadPoolExecutor(posts) as pool:
            sent = list(pool.map(lambda _: client.post(f"/a/{token}", data=form), range(posts)))
        after = client.get(f"/a/{token}")  # where the 303 leads
    return [(r.status_code, r.text) for r in sent] + [(after.status_code, after.text)]


def test_fifty_agencies_answer_at_once_while_the_nightly_cycle_runs(town, tmp_path):
    links = open_links(town)
    assert len(links) >= ANSWERS, len(links)
    links = links[:ANSWERS]
    kinds = {row["kind"] for _, row in links}
    assert {"attendance", "lead_request"} <= kinds, kinds
    started, stop = tmp_path / "started", tmp_path / "stop"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")} | {"ENGINE_NOW": NOW}
    nightly = subprocess.Popen(
        [sys.executable, "-c", NIGHTLY_LOOP, str(town), str(RULES_DIR), str(CONFIG_DIR), END.isoformat()]
        + [str(started), str(stop)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    served = None
    try:
        with served_by_engine_web(town, NOW) as served:
            deadline = time.monotonic() + 60
            while not started.exists():  # the nightly loop has begun its first cycle
                assert nightly.poll() is None and time.monotonic() < deadline, nightly.communicate()
                time.sleep(0.02)
            barrier = threading.Barrier(ANSWERS, timeout=60)  # one that fails to open its page breaks it
            with ThreadPoolExecutor(ANSWERS) as pool:
                futures = [
                    pool.submit(
                        answer, served.base, token, f"10.13.{i // 200}.{i % 200 + 1}", 2 if i < TWICE else 1, barrier
                    )
                    for i, (token, _) in enumerate(links)
                ]
                failed = [e for e in (f.exception() for f in futures) if e is not None]
                if failed:  # the first real failure, not the broken barrier it caused in the others
                    raise next((e for e in failed if not isinstance(e, threading.BrokenBarrierError)), failed[0])
                results = [f.result() for f in futures]
            stop.touch()
            out, err = nightly.communicate(timeout=120)
        assert nightly.returncode == 0, err
        assert int(out.strip()) >= 1
        assert "Traceback" not in served.output, served.output
    except BaseException:
        print("engine web printed:\n", served.output if served else "(not started)")  # the server's traceback
        raise
    finally:
        if nightly.poll() is None:
            nightly.kill()
            nightly.communicate()

    codes = [code for sent in results for code, _ in sent]
    assert not [c for c in codes if c >= 500], codes
    for i, (*sent, after) in enumerate(results):
        if i < TWICE:  # the same link twice at once: one recorded, the other told 回答済み
            assert sorted(c for c, _ in sent) == [303, 409], sent
            assert "回答済み" in next(text for c, text in sent if c == 409)
        else:
            assert [c for c, _ in sent] == [303], sent
        assert after[0] == 200 and "回答済み" in after[1]

    conn = connect(town, readonly=True)
    try:
        ids = [row["link_id"] for _, row in links]
        used = conn.execute(
            f"SELECT link_id, answer FROM answer_links WHERE used_at IS NOT NULL AND link_id IN ({','.join('?' * len(ids))})",
            ids,
        ).fetchall()
        audited = [
            json.loads(detail)["link_id"]
            for (detail,) in conn.execute("SELECT detail FROM audit_log WHERE event = 'answered_via_link'")
        ]
        for _, row in links:  # the answer itself, in the engine's state
            if row["kind"] == "attendance":
                state = conn.execute(
                    "SELECT answer FROM attendance WHERE meeting_id = ? AND agency_id = ?",
                    (row["ref"], row["agency_id"]),
                ).fetchone()
                assert state == ("attend",), row
            elif row["kind"] == "lead_request":
                state = conn.execute(
                    "SELECT status FROM lead_requests WHERE request_id = ?", (int(row["ref"]),)
                ).fetchone()
                assert state[0] == "accepted", row
            elif row["kind"] == "action":
                state = conn.execute(
                    "SELECT status FROM case_actions WHERE action_id = ?", (int(row["ref"]),)
                ).fetchone()
                assert state[0] == "done", row
    finally:
        conn.close()
    assert sorted(i for i, _ in used) == sorted(ids)  # nothing lost
    assert sorted(i for i in audited if i in ids) == sorted(ids)  # each in the audit log exactly once
