"""How a message leaves: built as an e-mail (message_id, build_message) and handed to a transport,
`file` (.eml files in <workspace>/outbox/, the file name is the key) or `smtp` (one connection
per run, each step of MAIL, RCPT, DATA classified by what the server can have). A transport raises
TemporaryFailure (retried later), Uncertain (the server may have it: reported as a possible
duplicate), ServerUnavailable (nothing goes this run) or PermanentFailure.
"""

from __future__ import annotations

import os
import re
import smtplib
import ssl
from email.utils import format_datetime
from pathlib import Path

from engine.config import Config, Smtp
from engine.outbox.mime import Mail
from engine.support import clock
from engine.support.private_files import fsync_folder, write_private

LEADING_DOT = re.compile(rb"(?m)^\.")


class TemporaryFailure(Exception):
    """Worth retrying later (connection refused, timeout, 4xx)."""


class Uncertain(TemporaryFailure):
    """The connection broke or timed out while the message was being handed over: the server may
    have accepted it. Retried, and reported as a possible duplicate."""


class ServerUnavailable(TemporaryFailure):
    """No connection at all: the rest of the run's messages wait for the next run."""


class PermanentFailure(Exception):
    """Retrying will not help (5xx, unknown agency)."""


class _NotHandedOver(Exception):
    """The connection failed (dropped, timed out, garbled) before the body was sent: the server
    has nothing. Retried at once on a new connection if the old one was reused."""


def _failure(code: int, text: bytes | str, where: str) -> Exception:
    """A clear answer of the server: 5xx permanent, anything else temporary."""
    reply = text.decode("utf-8", "replace") if isinstance(text, bytes) else str(text)
    return (PermanentFailure if 500 <= code < 600 else TemporaryFailure)(f"{code} {reply} ({where})")


def _starttls(conn: smtplib.SMTP, context: ssl.SSLContext, where: str) -> None:
    try:
        conn.starttls(context=context)
    except smtplib.SMTPNotSupportedError as err:
        raise ServerUnavailable(
            f"{where} does not offer STARTTLS, so nothing was sent (without it the mail and the login would cross "
            "the network unencrypted); ask the mail server's administrator, or use implicit_tls on port 465"
        ) from err


def _refusal(err: BaseException, s: Smtp, where: str) -> ServerUnavailable | None:
    """What a failure while opening the session means for the run (nothing was sent), or None to
    let the error through as it is."""
    if isinstance(err, ServerUnavailable) or not isinstance(err, Exception):
        return None
    if isinstance(err, ssl.SSLCertVerificationError):
        return ServerUnavailable(
            f"the certificate of {where} was refused ({err.verify_message}), so nothing was sent; check smtp.host, "
            "or set smtp.ca_file in mail.yaml to the CA that signed it if it is the municipality's own"
        )
    if isinstance(err, smtplib.SMTPAuthenticationError):
        return ServerUnavailable(
            f"the mail server refused the login ({err.smtp_code}): check the variables {s.username_env} and {s.password_env}"
        )
    if isinstance(err, smtplib.SMTPResponseException):
        return ServerUnavailable(f"the mail server refused the session: {err.smtp_code} {err.smtp_error!r}")
    if isinstance(err, (OSError, smtplib.SMTPException)):
        return ServerUnavailable(f"cannot connect to {where}: {err}")
    return None


def message_id(key: str, domain: str) -> str:
    safe = "".join(ch if ch.isalnum() or ch in ".-" else "." for ch in key)
    return f"<{safe}@{domain}>"


def build_message(config: Config, key: str, subject: str, parts: dict, recipient: str) -> Mail:
    """The e-mail (engine/outbox/mime.py); ValueError if a header would carry a line break."""
    headers = [
        ("From", config.mail.sender),
        ("To", recipient),
        ("Subject", subject),
        ("Message-ID", message_id(key, config.mail.sender.split("@", 1)[1])),
        ("Date", format_datetime(clock.now())),
        ("X-Engine-Key", key),
    ]
    return Mail(headers, parts)


class FileTransport:
    """Writes <outbox>/<key>.eml atomically; an existing file means already sent. The file name
    is the key, so there is no duplicate window: the dispatch commits its marks for a group of
    messages at a time (`group`), and the folder is synced once a group (`flush`), before the
    group's `sent` marks are committed."""

    group = 64

    def __init__(self, folder: Path):
        self.folder = Path(folder)
        self.unsynced = False

    def delivered(self, key: str) -> bool:
        """The message's file is in the folder: a run killed after writing it and before its `sent`
        mark did deliver it (the folder is synced by the next `flush`, before the mark is committed)."""
        if not self._path(key).is_file():
            return False
        self.unsynced = True
        return True

    def _path(self, key: str) -> Path:
        return self.folder / (key.replace(":", "_") + ".eml")

    def send(self, msg: Mail, recipient: str, key: str) -> None:
        path = self._path(key)
        self.unsynced = True  # a file already there (a killed run's) is synced too before it counts as sent
        if path.exists():
            return
        write_private(path, msg.as_bytes(), durable=True, sync_folder=False)

    def flush(self) -> None:
        if self.unsynced:
            fsync_folder(self.folder)
            self.unsynced = False

    def close(self) -> None:
        self.flush()


class SmtpTransport:
    """One connection per run, opened on first use: TLS (STARTTLS or implicit) with the certificate
    and host name verified, then the login if configured. A login never goes over a connection
    that is not encrypted; a certificate that fails the check sends nothing."""

    def __init__(self, config: Config):
        self.settings = config.mail.smtp
        self.conn: smtplib.SMTP | None = None

    def _connect(self) -> smtplib.SMTP:
        s = self.settings
        where = f"{s.host}:{s.port}"
        if s.login_without_tls:
            raise ServerUnavailable(
                "TLS is off in mail.yaml but a login is configured (smtp.username_env/password_env): no password "
                "is sent unencrypted, so nothing was sent; set smtp.starttls or smtp.implicit_tls to true"
            )
        try:
            context = s.tls_context() if s.encrypted else None
        except OSError as err:
            raise ServerUnavailable(f"cannot use the CA file {s.ca_file} (smtp.ca_file in mail.yaml): {err}") from err
        conn = None
        try:
            if s.implicit_tls:
                conn = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout, context=context)
            else:
                conn = smtplib.SMTP(s.host, s.port, timeout=s.timeout)
                if context is not None:
                    _starttls(conn, context, where)
            user = os.environ.get(s.username_env or "", "")
            if user:
                conn.login(user, os.environ.get(s.password_env or "", ""))
            conn.ehlo_or_helo_if_needed()  # a server refusing EHLO refuses the session: nothing waits on one message
            return conn
        except BaseException as err:
            if conn is not None:
                conn.close()
            refusal = _refusal(err, s, where)
            if refusal is None:
                raise
            raise refusal from err

    def send(self, msg: Mail, recipient: str, key: str) -> None:
        """MAIL, RCPT and DATA step by step, so that each failure is classified by what the
        server can have: nothing before the body went out (a certain failure, retried or failed
        by its code), or maybe the message after it (Uncertain: reported as a possible
        duplicate). A connection the server closed since the last message is reopened once."""
        while True:
            fresh = self.conn is None
            if fresh:
                self.conn = self._connect()
            try:
                self._envelope(msg["From"], recipient)
                break
            except _NotHandedOver as err:
                self._drop()
                if fresh:  # a new connection failed too: wait for the next attempt
                    raise TemporaryFailure(str(err)) from err
        self._data(msg)

    def _envelope(self, sender: str, recipient: str) -> None:
        """MAIL FROM, RCPT TO and the DATA command: nothing of the message has been sent yet."""
        conn = self.conn
        options = ["BODY=8BITMIME"] if conn.has_extn("8bitmime") else []  # the text parts are UTF-8, 8bit
        steps = (
            ("MAIL", lambda: conn.mail(sender, options), (250,)),
            ("RCPT", lambda: conn.rcpt(recipient), (250, 251)),
            ("DATA", lambda: conn.docmd("data"), (354,)),
        )
        try:
            for command, step, ok in steps:
                code, text = step()
                if code not in ok:
                    self._drop()
                    raise _failure(code, text, f"at {command}")
        except (
            smtplib.SMTPResponseException
        ) as err:  # a reply smtplib could not read (checked first: it is an OSError too)
            raise _NotHandedOver(
                f"unreadable reply from the server before the message was sent: {err.smtp_code} {err.smtp_error!r}"
            ) from err
        except OSError as err:  # disconnected, timed out, reset (smtplib's errors are OSErrors)
            raise _NotHandedOver(f"{type(err).__name__}: {err}" if str(err) else type(err).__name__) from err

    def _data(self, msg: Mail) -> None:
        """The body, then the server's verdict. Anything but a clear 250 or 4xx/5xx reply after
        the body went out (a drop, a timeout, a reply smtplib cannot read) is Uncertain."""
        body = msg.as_bytes(policy=msg.policy.clone(linesep="\r\n"))
        body = LEADING_DOT.sub(b"..", body)  # dot-stuffing (RFC 5321 4.5.2)
        if not body.endswith(b"\r\n"):
            body += b"\r\n"
        try:
            self.conn.send(body + b".\r\n")
            code, text = self.conn.getreply()
        except (OSError, smtplib.SMTPException) as err:
            self._drop()
            raise Uncertain(f"{type(err).__name__}: {err}" if str(err) else type(err).__name__) from err
        if code == 250:
            return
        self._drop()
        if 400 <= code < 600:
            raise _failure(code, text, "after the message")
        raise Uncertain(f"unreadable reply after the message: {code} {text!r}")

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
