"""SMTP servers on loopback that misbehave on command, sharing one fault plan (`Plan`): an aiosmtpd
Controller whose handler misbehaves at MAIL / RCPT / end of DATA, and `RawSmtp`, a socket server in a
thread speaking just enough SMTP for what aiosmtpd cannot do (421 in the greeting, a reply to the DATA
command itself, a drop between 354 and the body). The `start` fixture of tests/outbox/conftest.py
starts them."""

from __future__ import annotations

import asyncio
import email
import email.parser
import email.policy
import socket
import threading
import time
from collections import Counter
from dataclasses import dataclass, replace

import pytest
from aiosmtpd.controller import Controller

from tests.helpers.served import free_port


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


def cases(faults: dict[str, Fault], kinds=("raw", "aiosmtpd")):
    """(server kind, fault) for every server that can produce the fault."""
    return [
        pytest.param(kind, fault, id=f"{name}-{kind}")
        for name, fault in faults.items()
        for kind in kinds
        if fault.stage in (RawSmtp.stages if kind == "raw" else AioSmtp.stages)
    ]
