"""Send the outbox: transport `file` (.eml files in <workspace>/outbox/) or `smtp`.

Each message is marked `sending` (committed) before it is handed to the transport and `sent`
after. A message found still `sending` at the next run crashed in between: the server may or
may not have accepted it. It is sent again with the same Message-ID (so mail clients can fold
the two) and marked possible_duplicate, which `engine outbox` reports — the one duplicate window
is shown, never hidden. The file transport has no such window: the file name is the key.

Recipients come only from the agency registry, looked up at send time.
"""

from __future__ import annotations

import json
import os
import smtplib
import socket
import sqlite3
from datetime import datetime, timedelta, timezone
from email.message import EmailMessage
from email.utils import format_datetime, make_msgid
from pathlib import Path

from pydantic import BaseModel

from engine.config import Config

BACKOFF_MINUTES = (5, 15, 60, 240, 720)


class TemporaryFailure(Exception):
    """Worth retrying later (connection refused, timeout, 4xx)."""


class Uncertain(TemporaryFailure):
    """The connection broke or timed out while the message was being handed over: the server may
    have accepted it. Retried, and reported as a possible duplicate."""


class ServerUnavailable(TemporaryFailure):
    """No connection at all: the rest of the run's messages wait for the next run."""


class PermanentFailure(Exception):
    """Retrying will not help (5xx, unknown agency)."""


class SendResult(BaseModel):
    sent: int = 0
    failed: int = 0  # permanently, shown to the coordinator
    deferred: int = 0  # temporary failure, stays queued with a later attempt time
    possible_duplicates: int = 0  # found in the crash window and sent again


def message_id(key: str, domain: str) -> str:
    safe = "".join(ch if ch.isalnum() or ch in ".-" else "." for ch in key)
    return f"<{safe}@{domain}>"


def build_message(config: Config, key: str, subject: str, parts: dict, recipient: str) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = config.mail.sender
    msg["To"] = recipient
    msg["Subject"] = subject
    msg["Message-ID"] = message_id(key, config.mail.sender.split("@", 1)[1])
    msg["Date"] = format_datetime(datetime.now(timezone.utc))
    msg["X-Engine-Key"] = key
    msg.set_content(parts["text"])
    msg.add_alternative(parts["html"], subtype="html")
    if parts.get("ics"):
        msg.add_attachment(parts["ics"].encode("utf-8"), maintype="text", subtype="calendar", filename="invite.ics", params={"method": "REQUEST"})
    return msg


class FileTransport:
    """Writes <outbox>/<key>.eml atomically; an existing file means already sent."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def send(self, msg: EmailMessage, recipient: str, key: str) -> None:
        self.folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        path = self.folder / (key.replace(":", "_") + ".eml")
        if path.exists():
            return
        tmp = path.with_suffix(".tmp")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as f:
            f.write(msg.as_bytes())
        os.replace(tmp, path)

    def close(self) -> None:
        pass


class SmtpTransport:
    """One connection per run, opened on first use; STARTTLS and login as configured."""

    def __init__(self, config: Config):
        self.settings = config.mail.smtp
        self.conn: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        try:
            conn = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
            if s.starttls:
                conn.starttls()
            user = os.environ.get(s.username_env or "", "")
            if user:
                conn.login(user, os.environ.get(s.password_env or "", ""))
            return conn
        except smtplib.SMTPResponseException as err:
            raise (PermanentFailure if 500 <= err.smtp_code < 600 else TemporaryFailure)(f"{err.smtp_code} {err.smtp_error!r}") from err
        except (OSError, smtplib.SMTPException) as err:
            raise ServerUnavailable(f"cannot connect to {s.host}:{s.port}: {err}") from err

    def send(self, msg: EmailMessage, recipient: str, key: str) -> None:
        if self.conn is None:
            self.conn = self._connect()
        try:
            self.conn.send_message(msg, to_addrs=[recipient])
        except smtplib.SMTPRecipientsRefused as err:
            code, text = next(iter(err.recipients.values()))
            raise (PermanentFailure if 500 <= code < 600 else TemporaryFailure)(f"{code} {text!r}") from err
        except smtplib.SMTPResponseException as err:
            self._drop()
            raise (PermanentFailure if 500 <= err.smtp_code < 600 else TemporaryFailure)(f"{err.smtp_code} {err.smtp_error!r}") from err
        except (OSError, smtplib.SMTPException, socket.timeout) as err:
            self._drop()
            raise Uncertain(f"{type(err).__name__}: {err}" if str(err) else type(err).__name__) from err

    def _drop(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()
            finally:
                self.conn = None

    def close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.quit()
            except (OSError, smtplib.SMTPException):
                pass
            self.conn = None


def transport_for(config: Config, workspace: Path):
    return SmtpTransport(config) if config.mail.transport == "smtp" else FileTransport(Path(workspace) / "outbox")


def send_pending(conn: sqlite3.Connection, config: Config, workspace: Path, *, transport=None, now: datetime | None = None) -> SendResult:
    """Send every due message once; see the module docstring for the crash window."""
    now = now or datetime.now(timezone.utc)
    transport = transport or transport_for(config, workspace)
    result = SendResult()
    with conn:
        crashed = conn.execute("UPDATE outbox SET status = 'pending', possible_duplicate = 1 WHERE status = 'sending'").rowcount
    result.possible_duplicates = crashed
    due = conn.execute(
        "SELECT message_key, agency_id, subject, parts, attempts FROM outbox WHERE status = 'pending' AND (next_attempt_at IS NULL OR next_attempt_at <= ?) ORDER BY queued_at, message_key",
        (now.isoformat(timespec="seconds"),),
    ).fetchall()
    try:
        for key, agency_id, subject, parts, attempts in due:
            agency = config.agencies.get(agency_id)
            if agency is None:
                _mark(conn, key, "failed", attempts, f"agency '{agency_id}' is no longer in agencies.yaml: nobody to send to")
                result.failed += 1
                continue
            with conn:
                conn.execute("UPDATE outbox SET status = 'sending', attempts = attempts + 1 WHERE message_key = ?", (key,))
            try:
                transport.send(build_message(config, key, subject, json.loads(parts), agency.email), agency.email, key)
            except TemporaryFailure as err:
                if attempts + 1 >= config.mail.max_attempts:
                    _mark(conn, key, "failed", attempts + 1, f"gave up after {attempts + 1} attempts: {err}")
                    result.failed += 1
                else:
                    wait = BACKOFF_MINUTES[min(attempts, len(BACKOFF_MINUTES) - 1)]
                    _mark(conn, key, "pending", attempts + 1, str(err), next_at=(now + timedelta(minutes=wait)).isoformat(timespec="seconds"))
                    if isinstance(err, Uncertain):
                        with conn:
                            conn.execute("UPDATE outbox SET possible_duplicate = 1 WHERE message_key = ?", (key,))
                    result.deferred += 1
                if isinstance(err, ServerUnavailable):
                    result.deferred += len(due) - due.index((key, agency_id, subject, parts, attempts)) - 1
                    break  # do not wait out the timeout once per message
                continue
            except PermanentFailure as err:
                _mark(conn, key, "failed", attempts + 1, str(err))
                result.failed += 1
                continue
            with conn:
                conn.execute("UPDATE outbox SET status = 'sent', sent_at = ?, sent_to = ?, last_error = NULL WHERE message_key = ?", (datetime.now(timezone.utc).isoformat(timespec="seconds"), agency.email, key))
            result.sent += 1
    finally:
        transport.close()
    return result


def _mark(conn: sqlite3.Connection, key: str, status: str, attempts: int, error: str, next_at: str | None = None) -> None:
    with conn:
        conn.execute("UPDATE outbox SET status = ?, attempts = ?, last_error = ?, next_attempt_at = ? WHERE message_key = ?", (status, attempts, error[:500], next_at, key))
