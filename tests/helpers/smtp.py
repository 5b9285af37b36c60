"""A real SMTP server on loopback (aiosmtpd) that accepts everything it is not told to refuse,
and the configuration that sends to it (the `sink` fixture of tests/conftest.py starts one
without TLS; `tls_sink` starts one with STARTTLS or implicit TLS and, if asked, a login)."""

from __future__ import annotations

import asyncio
import ssl
from contextlib import contextmanager

from aiosmtpd.controller import Controller
from aiosmtpd.smtp import AuthResult

from engine.config import Smtp, load_config
from tests.helpers.paths import CONFIG_DIR
from tests.helpers.served import free_port


class Sink:
    """Accepts everything, except recipients listed in `reject` (code, text)."""

    def __init__(self):
        self.messages: list[tuple[list[str], bytes]] = []
        self.reject: dict[str, tuple[int, str]] = {}
        self.data_delay = 0.0  # seconds to wait before answering DATA (a slow server)
        self.drop_data = 0  # this many DATA commands are answered by closing the connection
        self.in_data = 0  # DATA commands being answered now (a slow server still holding a message)
        self.logins: list[tuple[str, str]] = []  # (user, password) the server was given, TLS or not

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):
        if address in self.reject:
            code, text = self.reject[address]
            return f"{code} {text}"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):
        if self.drop_data:
            self.drop_data -= 1
            server.transport.close()  # the connection drops during DATA: nothing delivered
            return "421 closing"
        self.in_data += 1
        try:
            if self.data_delay:
                await asyncio.sleep(self.data_delay)
            self.messages.append((list(envelope.rcpt_tos), envelope.content))  # delivered, even if the client gave up
            return "250 Message accepted for delivery"
        finally:  # also when the server drops the handler because the client hung up
            self.in_data -= 1


def smtp_config(rules, port: int, **smtp):
    """The shipped configuration sending by SMTP to 127.0.0.1:port (no TLS unless `smtp` says so)."""
    cfg = load_config(CONFIG_DIR, rules)
    settings = Smtp(**{"host": "127.0.0.1", "port": port, "starttls": False, "timeout": 5, **smtp})
    return cfg.model_copy(update={"mail": cfg.mail.model_copy(update={"transport": "smtp", "smtp": settings})})


@contextmanager
def tls_sink(context: ssl.SSLContext | None, *, implicit: bool = False, login: tuple[str, str] | None = None):
    """A Sink on loopback presenting `context`'s certificate, by STARTTLS (offered, and required
    before MAIL) or, with `implicit`, from the first byte (SMTPS); context None: no TLS at all.
    With `login` (user, password) it accepts that login, recorded in handler.logins: over TLS only,
    unless there is no TLS (a server that would take a password in clear). Yields (handler, port)."""
    handler = Sink()

    def authenticator(server, session, envelope, mechanism, auth_data):
        handler.logins.append((auth_data.login.decode(), auth_data.password.decode()))
        return AuthResult(success=(auth_data.login.decode(), auth_data.password.decode()) == login)

    kwargs: dict = {}
    if context is not None:
        kwargs = {"ssl_context": context} if implicit else {"tls_context": context, "require_starttls": True}
    if login:
        # aiosmtpd counts only STARTTLS as TLS: with implicit TLS every byte is encrypted anyway
        kwargs |= {"authenticator": authenticator, "auth_require_tls": context is not None and not implicit}
    controller = Controller(handler, hostname="127.0.0.1", port=free_port(), **kwargs)
    controller.start()
    try:
        yield handler, controller.port
    finally:
        controller.stop()
