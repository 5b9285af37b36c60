"""A real SMTP server on loopback (aiosmtpd) that accepts everything it is not told to refuse,
and the configuration that sends to it (the `sink` fixture of tests/conftest.py starts one)."""

from __future__ import annotations

import asyncio

from engine.config import Smtp, load_config
from tests.helpers.paths import CONFIG_DIR


class Sink:
    """Accepts everything, except recipients listed in `reject` (code, text)."""

    def __init__(self):
        self.messages: list[tuple[list[str], bytes]] = []
        self.reject: dict[str, tuple[int, str]] = {}
        self.data_delay = 0.0  # seconds to wait before answering DATA (a slow server)
        self.drop_data = 0  # this many DATA commands are answered by closing the connection
        self.in_data = 0  # DATA commands being answered now (a slow server still holding a message)

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


def smtp_config(rules, port: int):
    cfg = load_config(CONFIG_DIR, rules)
    return cfg.model_copy(
        update={
            "mail": cfg.mail.model_copy(
                update={"transport": "smtp", "smtp": Smtp(host="127.0.0.1", port=port, starttls=False, timeout=5)}
            )
        }
    )
