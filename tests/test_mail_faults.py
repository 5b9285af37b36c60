"""Issue 5, mail faults: the outbox against a loopback SMTP server that misbehaves on command.

Two servers share one fault plan (`Plan`): an aiosmtpd Controller whose handler misbehaves at
MAIL / RCPT / end of DATA, and `RawSmtp`, a socket server in a thread speaking just enough SMTP
for what aiosmtpd cannot do (421 in the greeting, a reply to the DATA command itself, a drop
between 354 and the body). Faults: refused connection, 421 / drop / slowness in the greeting,
421 and 451 at MAIL FROM / RCPT TO / DATA, 550 for one recipient, 554 at DATA, a server slower
than the client timeout, a drop during DATA (before and after the body), a server that accepts
and drops before QUIT, a malformed 250 after the body.

The guarantees checked for every fault: a temporary fault keeps the message pending and retries
it with the documented backoff (nothing is sent before next_attempt_at) until max_attempts; a
permanent one is `failed` with the SMTP code, listed by `engine outbox --status failed`, logged
(mail_failed) and in the coordinator's next digest, and `--retry-failed` queues it again;
nothing arrives twice unless the engine marked it possible_duplicate. Time moves through the
`now=` of send_pending; only the slow server waits for a real (0.5 s) timeout. Three engine bugs
this file found are fixed and kept by the tests at the end.
"""

from __future__ import annotations

import asyncio
import email
import email.parser
import email.policy
import json
import random
import shutil
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, replace
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from zoneinfo import ZoneInfo

import pytest
from aiosmtpd.controller import Controller
from typer.testing import CliRunner

from engine.casework.sweep import daily_sweep
from engine.cli.main import app
from engine.config.files import Smtp
from engine.outbox.mail import BACKOFF_MINUTES, retry, send_pending
from engine.papers.notices import Notice, queue_notice
from engine.workflows.cycle import nightly_cycle
from tests.conftest import ROOT
from tests.town import ON, add_household, person

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
runner = CliRunner()


# --- the misbehaving servers ------------------------------------------------------------------


@dataclass
class Fault:
    """One misbehaviour. stage: greeting | mail | rcpt | data_cmd (the reply to DATA itself) |
    data_body (after 354, before the body) | data_end (the reply after the body) | after_accept
    (right after 250 to a message). action: reply (code, text; 421 also closes) | drop (close
    the connection, no reply) | slow (wait `delay` seconds, then carry on normally)."""

    stage: str
    action: str = "reply"
    code: int | str = 451  # a str for a malformed code
    text: str = "4.3.0 try again later"
    times: int | None = 1  # None: every time
    skip: int = 0  # let this many events at the stage pass first (the 3rd message's DATA: skip=2)
    rcpt: str | None = None  # only for this recipient
    store: bool = False  # data_end: the server has kept the message (it will be delivered) whatever it answers
    delay: float = 0.0


class Plan:
    """The faults switched on, and what the server delivered."""

    def __init__(self):
        self.lock = threading.Lock()
        self.faults: list[Fault] = []
        self.deliveries: list[tuple[list[str], bytes]] = []
        self.delivered: list[str] = []  # the X-Engine-Key of each delivery
        self.connections = 0

    def add(self, *faults: Fault) -> None:
        with self.lock:
            self.faults += [replace(f) for f in faults]

    def clear(self) -> None:
        with self.lock:
            self.faults = []

    def fire(self, stage: str, rcpt: str | None = None) -> Fault | None:
        """Every matching fault counts the event towards its skip; the first one due fires."""
        with self.lock:
            due = None
            for f in self.faults:
                if f.stage != stage or f.times == 0 or (f.rcpt and f.rcpt != rcpt):
                    continue
                if f.skip:
                    f.skip -= 1
                elif due is None:
                    due = f
            if due is not None and due.times is not None:
                due.times -= 1
            return due

    def deliver(self, rcpts: list[str], data: bytes) -> None:
        key = email.parser.BytesHeaderParser().parsebytes(data)["X-Engine-Key"]
        with self.lock:
            self.deliveries.append((list(rcpts), data))
            self.delivered.append(key)

    def keys(self) -> Counter:
        """Deliveries per X-Engine-Key."""
        with self.lock:
            return Counter(self.delivered)

    def text_of(self, key: str) -> str:
        for _, data in self.deliveries:
            msg = email.message_from_bytes(data, policy=email.policy.default)
            if msg["X-Engine-Key"] == key:
                return msg.get_body(("plain",)).get_content()
        raise AssertionError(f"{key} was not delivered")


class RawSmtp:
    """A thread per connection speaking just enough SMTP to misbehave anywhere."""

    stages = {"greeting", "ehlo", "mail", "rcpt", "data_cmd", "data_body", "data_end", "after_accept"}

    def __init__(self, plan: Plan, port: int = 0):
        self.plan = plan
        self.listener = socket.socket()
        self.listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.listener.bind(("127.0.0.1", port))
        self.listener.listen(16)
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.stopped = threading.Event()
        self.socks: list[socket.socket] = []
        self.thread = threading.Thread(target=self._accept, daemon=True)
        self.thread.start()

    def _accept(self) -> None:
        while not self.stopped.is_set():
            try:
                sock, _ = self.listener.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with self.plan.lock:
                self.plan.connections += 1
            self.socks.append(sock)
            threading.Thread(target=self._guarded, args=(sock,), daemon=True).start()

    def _guarded(self, sock: socket.socket) -> None:
        try:
            sock.settimeout(5)
            self._session(sock)
        except OSError:
            pass
        finally:
            sock.close()

    @staticmethod
    def _act(f: Fault | None, say) -> str:
        """go (carry on normally) | refused (answered, session goes on) | close"""
        if f is None:
            return "go"
        if f.action == "slow":
            time.sleep(f.delay)
            return "go"
        if f.action == "drop":
            return "close"
        say(f"{f.code} {f.text}")
        return "close" if f.code == 421 else "refused"

    def _session(self, sock: socket.socket) -> None:
        plan, rf = self.plan, sock.makefile("rb")

        def say(*lines: str) -> None:
            sock.sendall("".join(line + "\r\n" for line in lines).encode())

        f = plan.fire("greeting")
        if f and f.action != "slow":
            if f.action == "reply":
                say(f"{f.code} {f.text}")
            return
        if f:
            time.sleep(f.delay)
        say("220 faults.test ESMTP")
        rcpts: list[str] = []
        while True:
            line = rf.readline(65536)
            if not line:
                return
            cmd = line.decode("utf-8", "replace").rstrip("\r\n")
            verb = cmd.split(" ", 1)[0].upper()
            if verb in ("EHLO", "HELO") and (f := plan.fire("ehlo")):
                if self._act(f, say) == "close":
                    return
                if f.action == "slow":
                    say("250 faults.test")
            elif verb == "EHLO":
                say("250-faults.test", "250-8BITMIME", "250-SMTPUTF8", "250 SIZE 10485760")
            elif verb == "HELO":
                say("250 faults.test")
            elif verb in ("RSET", "NOOP"):
                rcpts = [] if verb == "RSET" else rcpts
                say("250 OK")
            elif verb == "QUIT":
                say("221 bye")
                return
            elif verb == "MAIL":
                rcpts = []
                act = self._act(plan.fire("mail"), say)
                if act == "close":
                    return
                if act == "go":
                    say("250 OK")
            elif verb == "RCPT":
                address = cmd[cmd.find("<") + 1 : cmd.find(">")]
                act = self._act(plan.fire("rcpt", address), say)
                if act == "close":
                    return
                if act == "go":
                    rcpts.append(address)
                    say("250 OK")
            elif verb == "DATA":
                if not rcpts:
                    say("503 5.5.1 no valid recipients")
                    continue
                act = self._act(plan.fire("data_cmd", rcpts[0]), say)
                if act == "close":
                    return
                if act == "refused":
                    rcpts = []
                    continue
                dropped = plan.fire("data_body", rcpts[0])
                say("354 end data with <CR><LF>.<CR><LF>")
                if dropped:
                    return  # the connection drops before the body is received
                body = []
                while True:
                    chunk = rf.readline(1 << 20)
                    if not chunk:
                        return
                    if chunk == b".\r\n":
                        break
                    body.append(chunk[1:] if chunk.startswith(b"..") else chunk)
                data = b"".join(body)
                f = plan.fire("data_end", rcpts[0])
                if f is None:
                    plan.deliver(rcpts, data)
                    say("250 2.0.0 accepted")
                    if plan.fire("after_accept"):
                        return  # accepted, then the connection drops before QUIT
                elif f.action == "drop":
                    if f.store:
                        plan.deliver(rcpts, data)
                    return  # the body was received; the reply never comes
                elif f.action == "slow":
                    plan.deliver(rcpts, data)  # the server has it and answers too late
                    time.sleep(f.delay)
                    say("250 2.0.0 accepted (late)")
                else:
                    if f.store:
                        plan.deliver(rcpts, data)
                    say(f"{f.code} {f.text}")
                    if f.code == 421:
                        return
                rcpts = []
            else:
                say("502 5.5.2 not implemented")

    def stop(self) -> None:
        self.stopped.set()
        self.listener.close()
        self.thread.join(2)
        for s in self.socks:
            try:
                s.close()
            except OSError:
                pass


class AioFaults:
    """aiosmtpd handler misbehaving at MAIL, RCPT, after the body of DATA and after accepting."""

    def __init__(self, plan: Plan):
        self.plan = plan

    @staticmethod
    async def _act(server, f: Fault) -> str | None:
        if f.action == "slow":
            await asyncio.sleep(f.delay)
            return None
        if f.action == "drop":
            server.transport.close()
            return "421 closing"
        if f.code == 421:
            asyncio.get_running_loop().call_soon(server.transport.close)
        return f"{f.code} {f.text}"

    async def handle_MAIL(self, server, session, envelope, address, mail_options):
        f = self.plan.fire("mail")
        if f and (reply := await self._act(server, f)):
            return reply
        envelope.mail_from = address
        envelope.mail_options.extend(mail_options)
        return "250 OK"

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        f = self.plan.fire("rcpt", address)
        if f and (reply := await self._act(server, f)):
            return reply
        envelope.rcpt_tos.append(address)
        envelope.rcpt_options.extend(rcpt_options)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        f = self.plan.fire("data_end", envelope.rcpt_tos[0] if envelope.rcpt_tos else None)
        if f and f.action == "drop":
            if f.store:
                self.plan.deliver(envelope.rcpt_tos, envelope.content)
            server.transport.close()
            return "421 closing"
        if f and f.action == "slow":
            self.plan.deliver(envelope.rcpt_tos, envelope.content)
            await asyncio.sleep(f.delay)
            return "250 accepted (late)"
        if f:
            return await self._act(server, f)
        self.plan.deliver(envelope.rcpt_tos, envelope.content)
        if self.plan.fire("after_accept"):
            asyncio.get_running_loop().call_soon(server.transport.close)
        return "250 Message accepted for delivery"


class AioSmtp:
    stages = {"mail", "rcpt", "data_end", "after_accept"}

    def __init__(self, plan: Plan, port: int = 0):
        self.plan = plan
        self.controller = Controller(AioFaults(plan), hostname="127.0.0.1", port=port or free_port())
        self.controller.start()
        self.port = self.controller.port

    def stop(self) -> None:
        self.controller.stop()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def start():
    """start("raw" | "aiosmtpd", port=0) → a running server with a fresh Plan; stopped after the test."""
    running = []

    def _start(kind: str = "raw", port: int = 0):
        server = RawSmtp(Plan(), port) if kind == "raw" else AioSmtp(Plan(), port)
        running.append(server)
        return server

    yield _start
    for server in running:
        server.stop()


# --- helpers ----------------------------------------------------------------------------------


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


def cli(workspace, *args: str):
    result = runner.invoke(app, [*args, "--workspace", str(workspace)])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.output  # never a traceback
    return result


def assert_shown(conn, workspace, key: str, code: int | str) -> None:
    """A failed message is in `engine outbox --status failed` with its code, and in the audit log."""
    listed = cli(workspace, "outbox", "--status", "failed")
    assert listed.exit_code == 0
    line = next((ln for ln in listed.output.splitlines() if key in ln), None)
    assert line is not None and "failed" in line and str(code) in line, listed.output
    as_json = json.loads(cli(workspace, "outbox", "--status", "failed", "--json").stdout)
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


def cases(faults: dict[str, Fault], kinds=("raw", "aiosmtpd")):
    """(server kind, fault) for every server that can produce the fault."""
    return [
        pytest.param(kind, fault, id=f"{name}-{kind}")
        for name, fault in faults.items()
        for kind in kinds
        if fault.stage in (RawSmtp.stages if kind == "raw" else AioSmtp.stages)
    ]


TEMPORARY = {
    f"{code}-at-{stage}": Fault(
        stage,
        code=code,
        text="4.3.2 service not available, closing" if code == 421 else "4.3.0 try again later",
        times=None,
    )
    for stage in ("mail", "rcpt", "data_cmd", "data_end")
    for code in (421, 451)
}
PERMANENT = {
    "550-one-recipient": Fault("rcpt", code=550, text="5.1.1 mailbox unavailable", times=None),
    "554-at-data-command": Fault("data_cmd", code=554, text="5.7.1 transaction failed", times=None),
    "554-after-the-body": Fault("data_end", code=554, text="5.6.0 message content rejected", times=None),
}
UNCERTAIN = {  # (fault, copies the server ends up with)
    "drop-at-data-command": (Fault("data_cmd", "drop"), 1),
    "drop-before-the-body": (Fault("data_body", "drop"), 1),
    "drop-after-the-body-not-kept": (Fault("data_end", "drop"), 1),
    "drop-after-the-body-kept": (Fault("data_end", "drop", store=True), 2),
    "slow-data-past-the-timeout": (Fault("data_end", "slow", delay=1.0), 2),
    "slow-mail-from-past-the-timeout": (Fault("mail", "slow", delay=1.0), 1),
}


# --- temporary faults: pending, growing backoff, nothing early, given up after max_attempts ----


@pytest.mark.parametrize("kind,fault", cases(TEMPORARY))
def test_temporary_fault_is_retried_with_backoff_then_given_up_and_shown(kind, fault, conn, workspace, cfg, start):
    server = start(kind)
    c = smtp(cfg, server.port)
    server.plan.add(fault)
    (key,) = queue_messages(conn, c, ["houkatsu_chuo"])
    now = T0
    for attempt in range(1, c.mail.max_attempts):
        result = send_pending(conn, c, workspace, now=now)
        assert (result.sent, result.deferred, result.failed) == (0, 1, 0)
        m = row(conn, key)
        assert m.status == "pending" and m.attempts == attempt and str(fault.code) in m.last_error
        assert not m.dup  # the server answered: nothing can have been delivered
        assert m.next_at - now == timedelta(minutes=BACKOFF_MINUTES[attempt - 1])
        early = send_pending(conn, c, workspace, now=m.next_at - timedelta(seconds=1))  # one second early
        assert (early.sent, early.deferred, early.failed) == (0, 0, 0) and row(conn, key).attempts == attempt
        now = m.next_at
    last = send_pending(conn, c, workspace, now=now)
    assert last.failed == 1
    m = row(conn, key)
    assert m.status == "failed" and m.attempts == c.mail.max_attempts
    assert f"gave up after {c.mail.max_attempts} attempts" in m.last_error and str(fault.code) in m.last_error
    assert not server.plan.deliveries
    assert send_pending(conn, c, workspace, now=now + timedelta(days=1)).deferred == 0  # failed is not retried silently
    assert_shown(conn, workspace, key, fault.code)
    # the cause is fixed: --retry-failed queues it again and it goes out once
    server.plan.clear()
    assert "1 failed message(s) queued again" in cli(workspace, "outbox", "--retry-failed").output
    assert (row(conn, key).status, row(conn, key).attempts) == ("pending", 0)
    assert send_pending(conn, c, workspace, now=now + timedelta(days=1)).sent == 1
    assert server.plan.keys() == Counter({key: 1}) and row(conn, key).status == "sent"


@pytest.mark.parametrize(
    "kind,fault", cases({"451-at-data": TEMPORARY["451-at-data_end"], "421-at-mail": TEMPORARY["421-at-mail"]})
)
def test_a_temporary_fault_in_a_batch_defers_only_that_message(kind, fault, conn, workspace, cfg, start):
    server = start(kind)
    c = smtp(cfg, server.port)
    server.plan.add(replace(fault, times=1, skip=2))  # the 3rd message
    keys = queue_messages(conn, c, AGENCIES[:5])
    result = send_pending(conn, c, workspace, now=T0)
    assert (result.sent, result.deferred, result.failed) == (4, 1, 0)
    assert server.plan.keys() == Counter({k: 1 for k in keys if k != keys[2]})
    m = row(conn, keys[2])
    assert (
        m.status == "pending"
        and m.attempts == 1
        and not m.dup
        and m.next_at == T0 + timedelta(minutes=BACKOFF_MINUTES[0])
    )
    assert send_pending(conn, c, workspace, now=T0 + timedelta(minutes=4)).sent == 0
    assert send_pending(conn, c, workspace, now=T0 + timedelta(minutes=5)).sent == 1
    assert server.plan.keys() == Counter({k: 1 for k in keys}) and not marked(conn)


# --- no connection at all: the run waits, no attempt used, nothing failed ---------------------

UNAVAILABLE = {
    "refused-connection": None,
    "421-in-the-greeting": Fault("greeting", code=421, text="4.3.2 too busy, try later", times=None),
    "554-in-the-greeting": Fault("greeting", code=554, text="5.3.2 no SMTP service here", times=None),
    "closed-without-greeting": Fault("greeting", "drop", times=None),
    "greeting-past-the-timeout": Fault("greeting", "slow", delay=0.8, times=1),
    "554-to-ehlo-and-helo": Fault("ehlo", code=554, text="5.7.1 you are blocked", times=None),
    "421-to-ehlo": Fault("ehlo", code=421, text="4.3.2 shutting down", times=None),
}


@pytest.mark.parametrize("fault", UNAVAILABLE.values(), ids=UNAVAILABLE.keys())
def test_server_unavailable_keeps_the_run_queued_without_using_attempts(fault, conn, workspace, cfg, start):
    port = free_port()
    server = start("raw", port) if fault else None
    if server:
        server.plan.add(fault)
    c = smtp(cfg, port, timeout=0.5)
    keys = queue_messages(conn, c, AGENCIES[:4])
    now = T0
    runs = 1 if fault and fault.action == "slow" else 6  # more runs than max_attempts
    for _ in range(runs):
        result = send_pending(conn, c, workspace, now=now)
        assert result.sent == 0 and result.failed == 0 and result.server_unavailable
        if (
            fault and fault.action == "reply" and not (fault.stage == "ehlo" and fault.code == 421)
        ):  # smtplib then tries HELO on the closed connection
            assert str(fault.code) in result.server_unavailable
        assert set(statuses(conn).values()) == {"pending"}
        assert sum(row(conn, k).attempts for k in keys) == 0 and not marked(conn)
        assert row(conn, keys[0]).next_at == now + timedelta(minutes=BACKOFF_MINUTES[0])
        now += timedelta(hours=1)
    if server:
        assert server.plan.connections == runs  # one try per run, not one per message
        assert not server.plan.deliveries
        server.plan.clear()
    else:
        server = start("raw", port)  # the server comes back on its port
    # a dispatch before the first message's next attempt leaves it alone but sends the others
    back = send_pending(conn, c, workspace, now=now - timedelta(hours=1) + timedelta(minutes=1))
    assert back.sent == 3 and row(conn, keys[0]).status == "pending"
    assert send_pending(conn, c, workspace, now=now).sent == 1
    assert server.plan.keys() == Counter({k: 1 for k in keys}) and not marked(conn)
    assert all(row(conn, k).attempts == 1 for k in keys)


def test_server_going_away_in_the_middle_of_a_batch_leaves_the_rest_queued(conn, workspace, cfg, start):
    server = start("raw")
    c = smtp(cfg, server.port)
    # the 2nd message's MAIL FROM gets 421 (the server closes); reconnecting meets 421 in the greeting
    server.plan.add(Fault("mail", code=421, skip=1), Fault("greeting", code=421, skip=1))
    keys = queue_messages(conn, c, AGENCIES[:5])
    result = send_pending(conn, c, workspace, now=T0)
    assert result.sent == 1 and result.deferred == 4 and result.failed == 0 and "421" in result.server_unavailable
    assert [row(conn, k).attempts for k in keys] == [1, 1, 0, 0, 0] and statuses(conn)[keys[0]] == "sent"
    assert all(row(conn, k).status == "pending" for k in keys[1:])
    later = send_pending(conn, c, workspace, now=T0 + timedelta(minutes=5))
    assert later.sent == 4 and server.plan.keys() == Counter({k: 1 for k in keys}) and not marked(conn)


# --- permanent failures: failed, shown (CLI, audit, digest), --retry-failed -----------------------


@pytest.mark.parametrize("kind,fault", cases(PERMANENT))
def test_permanent_failure_is_shown_to_the_coordinator_and_can_be_retried(
    kind, fault, conn, workspace, cfg, rules, start
):
    server = start(kind)
    c = smtp(cfg, server.port)
    victim = "kikan_soudan"
    server.plan.add(replace(fault, rcpt=email_of(c, victim)))
    keys = queue_messages(conn, c, AGENCIES[:5])
    key = keys[AGENCIES.index(victim)]
    result = send_pending(conn, c, workspace, now=T0)
    assert (result.sent, result.failed, result.deferred) == (4, 1, 0)
    m = row(conn, key)
    assert (
        m.status == "failed" and m.attempts == 1 and str(fault.code) in m.last_error and m.next_at is None and not m.dup
    )
    assert server.plan.keys() == Counter({k: 1 for k in keys if k != key})
    assert send_pending(conn, c, workspace, now=T0 + timedelta(days=1)).sent == 0  # never silently retried
    assert_shown(conn, workspace, key, fault.code)
    assert_in_digest(conn, workspace, rules, c, server, DIGEST_DAY, [key], T0 + timedelta(days=1))
    # fixed (say the address in agencies.yaml): queued again with --retry-failed, goes out once
    server.plan.clear()
    assert "1 failed message(s) queued again" in cli(workspace, "outbox", "--retry-failed").output
    assert send_pending(conn, c, workspace, now=T0 + timedelta(days=1)).sent == 1
    assert server.plan.keys() == Counter({k: 1 for k in keys} | {f"digest:{DIGEST_DAY}": 1})


def test_retry_of_one_failed_key_through_the_cli(conn, workspace, cfg, start):
    server = start("raw")
    c = smtp(cfg, server.port)
    server.plan.add(PERMANENT["550-one-recipient"])  # every recipient
    keys = queue_messages(conn, c, AGENCIES[:2])
    assert send_pending(conn, c, workspace, now=T0).failed == 2
    server.plan.clear()
    assert "1 failed message(s) queued again" in cli(workspace, "outbox", "--retry", keys[1]).output
    assert [row(conn, k).status for k in keys] == ["failed", "pending"]
    wrong = cli(workspace, "outbox", "--retry", "faulttest:99")
    assert wrong.exit_code == 1 and "not failed messages" in wrong.output
    assert send_pending(conn, c, workspace, now=T0).sent == 1 and server.plan.keys() == Counter({keys[1]: 1})


# --- uncertain: drops and slowness while the message is handed over ---------------------------


@pytest.mark.parametrize(
    "kind,fault,copies",
    [
        pytest.param(kind, f, n, id=f"{name}-{kind}")
        for name, (f, n) in UNCERTAIN.items()
        for kind in ("raw", "aiosmtpd")
        if f.stage in (RawSmtp.stages if kind == "raw" else AioSmtp.stages)
    ],
)
def test_drop_or_timeout_during_the_handover_is_retried_and_never_an_unmarked_duplicate(
    kind, fault, copies, conn, workspace, cfg, start
):
    server = start(kind)
    c = smtp(cfg, server.port, timeout=0.5)
    server.plan.add(replace(fault, skip=1))  # the 2nd message
    keys = queue_messages(conn, c, AGENCIES[:3])
    result = send_pending(conn, c, workspace, now=T0)
    if fault.stage in ("mail", "data_cmd"):
        # before the body: the server has nothing, so the message goes again at once on a new
        # connection, once, and is not reported as a possible duplicate
        assert (result.sent, result.deferred, result.failed) == (3, 0, 0)
        assert server.plan.keys() == Counter({k: 1 for k in keys}) and not any(row(conn, k).dup for k in keys)
        return
    assert (result.sent, result.deferred, result.failed) == (2, 1, 0)
    m = row(conn, keys[1])
    assert m.status == "pending" and m.attempts == 1 and m.next_at == T0 + timedelta(minutes=BACKOFF_MINUTES[0])
    if copies > 1:  # the server has it: the engine must say it may arrive twice
        assert m.dup
    assert send_pending(conn, c, workspace, now=T0 + timedelta(minutes=4)).sent == 0  # backoff
    assert send_pending(conn, c, workspace, now=T0 + timedelta(minutes=5)).sent == 1
    assert server.plan.keys() == Counter({keys[0]: 1, keys[1]: copies, keys[2]: 1})
    assert set(statuses(conn).values()) == {"sent"}
    assert_no_silent_outcome(conn, server)
    if m.dup:  # and `engine outbox` shows it
        listed = cli(workspace, "outbox").output
        assert any(keys[1] in ln and "重複の可能性" in ln for ln in listed.splitlines())


def test_uncertain_on_the_last_attempt_is_failed_marked_and_shown(conn, workspace, cfg, rules, start):
    server = start("raw")
    c = smtp(cfg, server.port, max_attempts=2)
    server.plan.add(Fault("data_end", "drop", store=True, times=None))
    (key,) = queue_messages(conn, c, ["houkatsu_kita"])
    send_pending(conn, c, workspace, now=T0)
    send_pending(conn, c, workspace, now=T0 + timedelta(minutes=5))
    m = row(conn, key)
    assert m.status == "failed" and m.dup and "gave up after 2 attempts" in m.last_error
    assert_shown(conn, workspace, key, "gave up")
    server.plan.clear()
    assert_in_digest(conn, workspace, rules, c, server, DIGEST_DAY, [key], T0 + timedelta(hours=1))
    cli(workspace, "outbox", "--retry-failed")
    assert send_pending(conn, c, workspace, now=T0 + timedelta(hours=1)).sent == 1
    assert server.plan.keys()[key] == 3 and row(conn, key).dup  # three copies, all announced
    assert_no_silent_outcome(conn, server)


@pytest.mark.parametrize("kind", ["raw", "aiosmtpd"])
def test_server_that_accepts_then_drops_before_quit(kind, conn, workspace, cfg, start):
    server = start(kind)
    c = smtp(cfg, server.port)
    server.plan.add(Fault("after_accept", "drop", times=None))
    (key,) = queue_messages(conn, c, ["houkatsu_chuo"])
    result = send_pending(conn, c, workspace, now=T0)
    assert result.sent == 1 and row(conn, key).status == "sent" and not row(conn, key).dup
    # with more messages on the connection: each one arrives, none is lost or sent twice unmarked
    keys = queue_messages(conn, c, AGENCIES[:4], prefix="batch")
    now = run_until_done(conn, c, workspace, T0)
    assert set(statuses(conn).values()) == {"sent"} and now <= T0 + timedelta(days=4)
    assert server.plan.keys() == Counter({k: 1 for k in [key, *keys]})
    assert_no_silent_outcome(conn, server)


# --- engine bugs found by this file, fixed in engine/outbox/mail.py (SmtpTransport step by step, send_pending's datetime()) ---


BEFORE_DATA = {  # the 2nd message never reaches DATA: the server cannot have it
    "next-after-421-at-rcpt": Fault("rcpt", code=421, text="4.3.2 closing"),  # hits the 1st message
    "next-after-accept-then-drop": Fault("after_accept", "drop"),  # after the 1st message
    "drop-at-mail-from": Fault("mail", "drop", skip=1),
    "drop-at-rcpt-to": Fault("rcpt", "drop", skip=1),
}


@pytest.mark.parametrize("kind", ["raw", "aiosmtpd"])
@pytest.mark.parametrize("fault", BEFORE_DATA.values(), ids=BEFORE_DATA.keys())
def test_a_message_that_never_reached_data_is_not_a_possible_duplicate(fault, kind, conn, workspace, cfg, start):
    server = start(kind)
    c = smtp(cfg, server.port)
    server.plan.add(fault)
    keys = queue_messages(conn, c, AGENCIES[:3])
    send_pending(conn, c, workspace, now=T0)
    # the server never had it before the connection went: sent again on a new one, once, unmarked
    # (the 421-at-RCPT message itself is deferred, certainly not delivered, and unmarked too)
    assert server.plan.keys()[keys[1]] <= 1
    assert not any(row(conn, k).dup for k in keys), [(k, row(conn, k).last_error) for k in keys if row(conn, k).dup]


MALFORMED = {  # the server has the message and says so, in a reply smtplib cannot read
    "overlong-250-line": Fault("data_end", code=250, text="2.0.0 queued as " + "x" * 9000, store=True),
    "unparsable-250": Fault("data_end", code="25O", text="2.0.0 queued", store=True),
}


@pytest.mark.parametrize("fault", MALFORMED.values(), ids=MALFORMED.keys())
def test_a_malformed_reply_after_the_body_is_uncertain(fault, conn, workspace, cfg, start):
    server = start("raw")
    c = smtp(cfg, server.port)
    server.plan.add(fault)
    (key,) = queue_messages(conn, c, ["houkatsu_chuo"])
    send_pending(conn, c, workspace, now=T0)
    server.plan.clear()
    retry(conn)
    run_until_done(conn, c, workspace, T0)
    assert server.plan.keys()[key] == 2
    assert_no_silent_outcome(conn, server)


def test_backoff_holds_whatever_the_time_zone_of_the_dispatch_clock(conn, workspace, cfg, start):
    server = start("raw")
    c = smtp(cfg, server.port)
    server.plan.add(replace(TEMPORARY["451-at-data_end"], times=1))
    (key,) = queue_messages(conn, c, ["houkatsu_chuo"])
    first = datetime(2026, 11, 30, 22, 58, tzinfo=UTC)  # 07:58 on 1 December in Japan
    assert send_pending(conn, c, workspace, now=first).deferred == 1
    assert row(conn, key).next_at == first + timedelta(minutes=5)
    early = (first + timedelta(minutes=2)).astimezone(TOKYO)  # 08:00 JST, 3 minutes before the next attempt
    assert send_pending(conn, c, workspace, now=early).sent == 0


# --- nothing twice: many dispatches with faults switched on and off ---------------------------

RANDOM_FAULTS = {
    "raw": [
        Fault("greeting", code=421),
        Fault("greeting", "drop"),
        Fault("mail", code=451),
        Fault("mail", code=421),
        Fault("rcpt", code=451),
        Fault("rcpt", code=421),
        Fault("rcpt", code=550),
        Fault("data_cmd", code=451),
        Fault("data_cmd", code=554),
        Fault("data_cmd", "drop"),
        Fault("data_body", "drop"),
        Fault("data_end", code=451),
        Fault("data_end", code=421),
        Fault("data_end", code=554),
        Fault("data_end", "drop"),
        Fault("data_end", "drop", store=True),
        Fault("after_accept", "drop"),
    ],
    "aiosmtpd": [
        Fault("mail", code=451),
        Fault("mail", code=421),
        Fault("rcpt", code=451),
        Fault("rcpt", code=550),
        Fault("data_end", code=451),
        Fault("data_end", code=554),
        Fault("data_end", "drop"),
        Fault("data_end", "drop", store=True),
        Fault("after_accept", "drop"),
    ],
}
# faults where the server answers for certain: after recovery every message arrives exactly once
# (a connection closed before the body is certain too: the message goes again on a new one)
CERTAIN = [f for f in RANDOM_FAULTS["raw"] if f.action == "reply"] + [
    Fault("greeting", "drop"),
    Fault("after_accept", "drop"),
]


def churn(conn, cfg, workspace, server, menu: list[Fault], seed: int, rounds: int) -> list[str]:
    """`rounds` dispatches; before each, three new messages are queued and 0-2 faults switched on
    (random stage, position, repetition); now moves by 1 minute (inside every backoff), 20 minutes
    or 3 hours; every 7th round the failures are queued again. Then faults off, everything out.
    Returns the keys queued."""
    rnd = random.Random(seed)
    now, keys = T0, []
    for n in range(rounds):
        keys += queue_messages(conn, cfg, rnd.sample(AGENCIES, 3), prefix=f"r{n:02d}")
        server.plan.clear()
        if rnd.random() < 0.8:
            for f in rnd.sample(menu, rnd.choice((1, 1, 2))):
                server.plan.add(
                    replace(
                        f,
                        skip=rnd.randrange(4),
                        times=rnd.choice((1, 1, 2, None)),
                        rcpt=email_of(cfg, rnd.choice(AGENCIES))
                        if int(f.code) >= 500 and f.stage in ("rcpt", "data_cmd", "data_end")
                        else None,
                    )
                )
        before = server.plan.keys()
        due = {
            k
            for (k,) in conn.execute(
                "SELECT message_key FROM outbox WHERE status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= ?)",
                (now.isoformat(),),
            )
        }
        send_pending(conn, cfg, workspace, now=now)
        assert (
            set((server.plan.keys() - before).keys()) <= due
        )  # only what was due: nothing before its next attempt, nothing already sent
        assert not [k for k, s in statuses(conn).items() if s == "sending"]
        if n % 7 == 6:
            retry(conn)  # the coordinator queues the failures again
        now += rnd.choice((timedelta(minutes=1), timedelta(minutes=20), timedelta(hours=3)))
    server.plan.clear()
    retry(conn)
    run_until_done(conn, cfg, workspace, now)
    return keys


@pytest.mark.parametrize("kind", ["raw", "aiosmtpd"])
def test_nothing_is_sent_twice_unmarked_over_many_dispatches_with_faults_on_and_off(kind, conn, workspace, cfg, start):
    server = start(kind)
    c = smtp(cfg, server.port)
    keys = churn(conn, c, workspace, server, RANDOM_FAULTS[kind], seed=5, rounds=40)
    got = server.plan.keys()
    assert set(statuses(conn).values()) == {"sent"} and set(got) == set(keys)
    duplicated = {k for k, n in got.items() if n > 1}
    assert duplicated <= marked(conn), f"unmarked duplicates: {duplicated - marked(conn)}"
    assert all(got[k] == 1 for k in keys if k not in marked(conn))


def test_faults_the_server_answers_for_certain_never_cause_a_duplicate(conn, workspace, cfg, start):
    server = start("raw")
    c = smtp(cfg, server.port)
    keys = churn(conn, c, workspace, server, CERTAIN, seed=11, rounds=40)
    assert server.plan.keys() == Counter({k: 1 for k in keys}) and not marked(conn)
    assert set(statuses(conn).values()) == {"sent"}


def test_without_faults_every_message_goes_exactly_once_however_often_dispatched(conn, workspace, cfg, start):
    server = start("aiosmtpd")
    c = smtp(cfg, server.port)
    keys = queue_messages(conn, c, AGENCIES)
    for i in range(10):
        send_pending(conn, c, workspace, now=T0 + timedelta(hours=i))
    assert server.plan.keys() == Counter({k: 1 for k in keys}) and not marked(conn)


# --- the full scenario --------------------------------------------------------------------------


@pytest.fixture
def town(conn):
    add_household(
        conn, "H8050", person(82, "世帯主", ("care_level", "要介護2"), sex="M"), person(52, "子", sex="M"), area="中央"
    )
    add_household(conn, "HHIKI", person(48, "世帯主", sex="M"), area="北部")
    return conn


def test_full_scenario_faults_in_the_middle_of_a_batch_then_recovery(town, workspace, cfg, rules, start):
    conn = town
    server = start("raw")
    c = smtp(cfg, server.port)
    nightly_cycle(conn, workspace, rules, c, ON)
    used = {a for (a,) in conn.execute("SELECT agency_id FROM outbox")}
    spare = [a for a in AGENCIES if a not in used]
    assert len(spare) >= 6
    notices = queue_messages(conn, c, spare[:6])
    order = [
        k
        for (k,) in conn.execute(
            "SELECT message_key FROM outbox WHERE status = 'pending' ORDER BY queued_at, message_key"
        )
    ]
    assert len(order) >= 8, order
    agency = dict(conn.execute("SELECT message_key, agency_id FROM outbox"))
    # run 1: the 3rd message's DATA gets 451; the 5th is dropped after its body (the server keeps it);
    # reconnecting for the 6th meets 421 in the greeting: the rest waits
    server.plan.add(
        Fault("data_end", code=451, skip=2),
        Fault("data_end", "drop", store=True, skip=4),
        Fault("greeting", code=421, skip=2),
    )
    first = send_pending(conn, c, workspace, now=T0)
    assert first.sent == 3 and "421" in first.server_unavailable
    assert [statuses(conn)[k] for k in order[:5]] == ["sent", "sent", "pending", "sent", "pending"]
    assert row(conn, order[2]).last_error.startswith("451") and not row(conn, order[2]).dup
    assert row(conn, order[4]).dup  # the server may have it: said so
    assert all(row(conn, k).status == "pending" and row(conn, k).attempts == 0 for k in order[5:])
    # run 2, two minutes later: the deferred ones wait for their backoff; one agency now rejects its mailbox
    victim = next(k for k in order[6:] if k in notices)  # its agency has no other message
    server.plan.clear()
    server.plan.add(
        Fault("rcpt", code=550, text="5.1.1 mailbox unavailable", rcpt=email_of(c, agency[victim]), times=None)
    )
    second = send_pending(conn, c, workspace, now=T0 + timedelta(minutes=2))
    assert second.failed == 1 and second.sent == len(order) - 6 - 1
    assert [k for k in order if statuses(conn)[k] == "pending"] == [order[2], order[4], order[5]]
    assert [server.plan.keys()[k] for k in order[2:6]] == [0, 1, 1, 0]
    # run 3, after the backoff: everything due goes
    third = send_pending(conn, c, workspace, now=T0 + timedelta(minutes=10))
    assert third.sent == 3 and not [k for k, s in statuses(conn).items() if s == "pending"]
    # the coordinator sees the failure: outbox, audit log, the next digest
    assert_shown(conn, workspace, victim, 550)
    assert_in_digest(conn, workspace, rules, c, server, DIGEST_DAY, [victim], T0 + timedelta(hours=1))
    # in the end: each message delivered exactly once, or failed and shown, or possible_duplicate and shown
    got = server.plan.keys()
    for key in order:
        status, m = statuses(conn)[key], row(conn, key)
        if status == "failed":
            assert key == victim and got[key] == 0
        elif m.dup:
            assert status == "sent" and 1 <= got[key] <= 2
        else:
            assert status == "sent" and got[key] == 1, key
    assert marked(conn) == {order[4]}
    assert_no_silent_outcome(conn, server)
    listed = cli(workspace, "outbox").output
    assert any(order[4] in ln and "重複の可能性" in ln for ln in listed.splitlines())


# --- the `engine send` command against the faults -------------------------------------------------


def test_engine_send_reports_faults_without_traceback(conn, workspace, cfg, start, tmp_path, monkeypatch):
    server = start("raw")
    monkeypatch.delenv("ENGINE_SMTP_USER", raising=False)
    monkeypatch.delenv("ENGINE_SMTP_PASSWORD", raising=False)
    configs = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", configs)
    (configs / "mail.yaml").write_text(
        "transport: smtp\nsender: shien-kaigi@city.example.lg.jp\nmax_attempts: 5\n"
        f"smtp:\n  host: 127.0.0.1\n  port: {server.port}\n  starttls: false\n  timeout: 2\n",
        encoding="utf-8",
    )
    keys = queue_messages(conn, cfg, AGENCIES[:3])
    args = ["send", "--force", "--config", str(configs), "--rules", str(ROOT / "configs" / "rules")]
    server.plan.add(Fault("greeting", code=421, text="4.3.2 too busy", times=1))
    busy = cli(workspace, *args)
    assert busy.exit_code == 1 and "421" in busy.output and "stay queued" in busy.output
    assert set(statuses(conn).values()) == {"pending"}
    conn.execute("UPDATE outbox SET next_attempt_at = NULL")  # the next day (the CLI dispatches on the real clock)
    conn.commit()
    server.plan.add(
        Fault("rcpt", code=550, text="5.1.1 mailbox unavailable", rcpt=email_of(cfg, AGENCIES[1]), times=None)
    )
    sent = cli(workspace, *args)
    assert sent.exit_code == 0 and "2 sent, 0 deferred, 1 failed" in sent.output
    assert server.plan.keys() == Counter({keys[0]: 1, keys[2]: 1})
    assert_shown(conn, workspace, keys[1], 550)
