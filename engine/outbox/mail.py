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
import re
import smtplib
import socket
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from pydantic import BaseModel

from engine.config.files import Agency, Config
from engine.papers.agenda import household_locked
from engine.store.lifecycle import Log
from engine.support import clock
from engine.support.private_files import write_private

BACKOFF_MINUTES = (5, 15, 60, 240, 720)
LEADING_DOT = re.compile(rb"(?m)^\.")
TOKYO = ZoneInfo("Asia/Tokyo")


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


class SendResult(BaseModel):
    busy: bool = False  # another dispatch was running: this one sent nothing
    server_unavailable: str | None = None  # no connection or login: everything waits for the next run
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
    msg["Date"] = format_datetime(clock.now())
    msg["X-Engine-Key"] = key
    msg.set_content(parts["text"])
    msg.add_alternative(parts["html"], subtype="html")
    if parts.get("ics"):
        method = parts.get("ics_method", "REQUEST")
        msg.add_attachment(
            parts["ics"].encode("utf-8"),
            maintype="text",
            subtype="calendar",
            filename="invite.ics" if method == "REQUEST" else "cancel.ics",
            params={"method": method},
        )
    return msg


class FileTransport:
    """Writes <outbox>/<key>.eml atomically; an existing file means already sent."""

    def __init__(self, folder: Path):
        self.folder = Path(folder)

    def send(self, msg: EmailMessage, recipient: str, key: str) -> None:
        path = self.folder / (key.replace(":", "_") + ".eml")
        if path.exists():
            return
        write_private(path, msg.as_bytes(), durable=True)

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
            conn.ehlo_or_helo_if_needed()  # a server refusing EHLO refuses the session: nothing waits on one message
            return conn
        except smtplib.SMTPAuthenticationError as err:
            raise ServerUnavailable(
                f"the mail server refused the login ({err.smtp_code}): check the variables {s.username_env} and {s.password_env}"
            ) from err
        except smtplib.SMTPResponseException as err:
            raise ServerUnavailable(f"the mail server refused the session: {err.smtp_code} {err.smtp_error!r}") from err
        except (OSError, smtplib.SMTPException) as err:
            raise ServerUnavailable(f"cannot connect to {s.host}:{s.port}: {err}") from err

    def send(self, msg: EmailMessage, recipient: str, key: str) -> None:
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

    def _data(self, msg: EmailMessage) -> None:
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


def recipient(config: Config, agency_id: str) -> Agency | None:
    """The registry entry a message goes to: an agency of agencies.yaml, or the coordinator
    (lifecycle.yaml's coordinator_email). Nothing else can ever be a recipient."""
    if agency_id == "coordinator":
        return Agency.model_construct(
            id="coordinator",
            name="多機関協働事業 コーディネーター",
            kind="多機関協働事業者",
            silo="",
            areas=("全域",),
            email=config.lifecycle.coordinator_email,
            member=True,
            capacity=1,
        )
    return config.agencies.get(agency_id)


def transport_for(config: Config, workspace: Path):
    return SmtpTransport(config) if config.mail.transport == "smtp" else FileTransport(Path(workspace) / "outbox")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


LOCK_STALE = timedelta(minutes=15)  # a live dispatch refreshes the lock before every message


def _take_lock(conn: sqlite3.Connection, token: str, now: datetime) -> tuple[bool, bool]:
    """(got the dispatch lock, the previous holder died without releasing it).

    One dispatch at a time: a second one (say `engine run` while the 08:00 flow runs) finds
    the lock held by a live process and sends nothing. A lock not refreshed for 15 minutes is
    stale whoever holds it (a pid reused after a reboot, a container with a new host name)."""
    host, pid = socket.gethostname(), os.getpid()
    with conn:
        conn.execute("BEGIN IMMEDIATE")
        row = conn.execute("SELECT host, pid, taken_at FROM dispatch_lock WHERE name = 'outbox'").fetchone()
        fresh = row is not None and datetime.fromisoformat(row[2]) > clock.now() - LOCK_STALE
        if row and fresh and (row[0] != host or _alive(row[1])):
            return False, False
        conn.execute(
            "INSERT OR REPLACE INTO dispatch_lock VALUES ('outbox', ?, ?, ?, ?)", (host, pid, token, clock.stamp())
        )
    return True, row is not None


def _release_lock(conn: sqlite3.Connection, token: str) -> None:
    with conn:
        conn.execute("DELETE FROM dispatch_lock WHERE name = 'outbox' AND token = ?", (token,))


def has_newer_version(conn: sqlite3.Connection, key: str) -> bool:
    """Is there a later version (…:vN) of this agenda or routing notice in the outbox?"""
    stem, sep, version = key.rpartition(":v")
    if not sep or not version.isdigit():
        return False
    prefix = stem + ":v"
    return (
        conn.execute(
            "SELECT 1 FROM outbox WHERE substr(message_key, 1, ?) = ? AND CAST(substr(message_key, ?) AS INTEGER) > ?",
            (len(prefix), prefix, len(prefix) + 1, int(version)),
        ).fetchone()
        is not None
    )


def _stale_reason(conn: sqlite3.Connection, config: Config, key: str, now: datetime) -> str | None:
    """Why a queued message must no longer go out, checked just before sending."""
    if has_newer_version(conn, key):
        return "a newer version replaced it"
    kind, _, rest = key.partition(":")
    tokyo_day = now.astimezone(TOKYO).date().isoformat()
    if kind == "agenda":
        held_on = conn.execute("SELECT held_on FROM meetings WHERE meeting_id = ?", (rest.split(":")[0],)).fetchone()
        if held_on and held_on[0] < tokyo_day:
            return "the meeting has been held"
    ref = rest.split(":")[0]
    if kind == "lead_request":
        row = conn.execute("SELECT status FROM lead_requests WHERE request_id = ?", (ref,)).fetchone()
        if not row or row[0] != "pending":
            return "the request has been answered or withdrawn"
    if kind == "reminder":
        row = conn.execute(
            "SELECT a.status, a.due_on, c.household_id FROM case_actions a JOIN cases c ON c.case_id = a.case_id WHERE a.action_id = ?",
            (ref,),
        ).fetchone()
        if not row or row[0] != "open":
            return "the action is done or cancelled"
        if key.split(":")[2] == "due" and row[1] < tokyo_day:
            return "the due date has passed: the overdue reminder replaces it"
        if not key.endswith(":locked") and household_locked(conn, config, row[2], tokyo_day):
            return "the household is locked (DV): the reminder goes without the action's wording"
    if kind == "checkpoint":
        row = conn.execute("SELECT status FROM checkpoints WHERE checkpoint_id = ?", (ref,)).fetchone()
        if not row or row[0] != "asked":
            return "the checkpoint has been answered or cancelled"
    if kind == "routing":
        case_id = rest.split(":")[0]
        row = conn.execute("SELECT status, is_open, household_id FROM cases WHERE case_id = ?", (case_id,)).fetchone()
        if not row or row[0] != "routed" or not row[1]:
            return "the case is no longer routed to a silo conference"
        if household_locked(conn, config, row[2], tokyo_day):
            return "the household is locked (DV): no notice by e-mail"
    return None


LIFECYCLE_KINDS = ("lead_request", "lead_withdrawn", "reminder", "checkpoint")


def consent_current(conn: sqlite3.Connection, key: str, day: str) -> bool:
    """Every person concerned by the message's case (the members in its flags' evidence, else the
    whole household) has a consent record valid on `day`: only then may a non-member hear of it."""
    case_id, _ = case_of(conn, key)
    if case_id is None:
        return False
    members: set[str] = set()
    for (evidence,) in conn.execute(
        "SELECT f.evidence FROM case_flags c JOIN flags f ON f.flag_id = c.flag_id WHERE c.case_id = ?", (case_id,)
    ):
        members |= set(json.loads(evidence).get("members", []))
    if not members:
        members = {
            p
            for (p,) in conn.execute(
                "SELECT p.person_id FROM persons p JOIN cases c ON c.household_id = p.household_id WHERE c.case_id = ?",
                (case_id,),
            )
        }
    return bool(members) and all(
        conn.execute(
            "SELECT 1 FROM records WHERE person_id = ? AND code = 'consent' AND start_date <= ? AND (end_date IS NULL OR end_date >= ?)",
            (pid, day, day),
        ).fetchone()
        for pid in members
    )


def _recover(conn: sqlite3.Connection) -> int:
    """Messages left 'sending' by a dispatch that died: the server may have them. Send them again
    (marked possible_duplicate), unless a newer version replaced them meanwhile."""
    rows = conn.execute("SELECT message_key FROM outbox WHERE status = 'sending'").fetchall()
    with conn:
        for (key,) in rows:
            conn.execute(
                "UPDATE outbox SET status = ?, possible_duplicate = 1 WHERE message_key = ?",
                ("superseded" if has_newer_version(conn, key) else "pending", key),
            )
    return len(rows)


def send_pending(
    conn: sqlite3.Connection, config: Config, workspace: Path, *, transport=None, now: datetime | None = None
) -> SendResult:
    """Send every due message once; see the module docstring for the crash window."""
    now = now or clock.now()
    result = SendResult()
    token = uuid.uuid4().hex
    got, holder_died = _take_lock(conn, token, now)
    if not got:
        result.busy = True
        return result
    transport = transport or transport_for(config, workspace)
    # the database runs with synchronous=NORMAL, where a power cut may undo the last commits:
    # the dispatch's 'sending' and 'sent' marks must be on disk before the next step, or a
    # message could go twice without being reported as a possible duplicate
    conn.execute("PRAGMA synchronous=FULL")
    try:
        result.possible_duplicates = _recover(conn)
        due = conn.execute(
            # datetime(): times are compared as instants whatever their UTC offset (the scheduled
            # dispatch stores +00:00, a dispatch for another day runs at 08:00+09:00)
            "SELECT message_key, agency_id, subject, parts, attempts, members_only FROM outbox WHERE status = 'pending' AND (next_attempt_at IS NULL OR datetime(next_attempt_at) <= datetime(?)) ORDER BY queued_at, message_key",
            (now.isoformat(timespec="seconds"),),
        ).fetchall()
        for i, (key, agency_id, subject, parts, attempts, members_only) in enumerate(due):
            agency = recipient(config, agency_id)
            if agency is None:
                _mark(
                    conn,
                    key,
                    "failed",
                    attempts,
                    f"agency '{agency_id}' is no longer in agencies.yaml: nobody to send to",
                )
                result.failed += 1
                continue
            if members_only and not agency.member:
                _mark(
                    conn,
                    key,
                    "failed",
                    attempts,
                    f"{agency_id} is not a registered member of the 支援会議 in agencies.yaml: 支援会議 papers are not sent to it",
                )
                result.failed += 1
                continue
            if (
                not agency.member
                and key.split(":")[0] in LIFECYCLE_KINDS
                and not consent_current(conn, key, now.astimezone(TOKYO).date().isoformat())
            ):
                _mark(
                    conn,
                    key,
                    "failed",
                    attempts,
                    f"{agency_id} is not a registered member of the 支援会議 and the household's consent is not current: nothing about the case may be sent to it (社会福祉法106条の6)",
                )
                result.failed += 1
                continue
            stale = _stale_reason(conn, config, key, now)
            if stale:
                with conn:
                    conn.execute(
                        "UPDATE outbox SET status = 'superseded', last_error = ? WHERE message_key = ? AND status = 'pending'",
                        (stale, key),
                    )
                continue
            with conn:
                conn.execute(
                    "UPDATE dispatch_lock SET taken_at = ? WHERE name = 'outbox' AND token = ?", (clock.stamp(), token)
                )
                claimed = conn.execute(
                    "UPDATE outbox SET status = 'sending', attempts = attempts + 1 WHERE message_key = ? AND status = 'pending'",
                    (key,),
                ).rowcount
            if not claimed:
                continue  # superseded or sent meanwhile
            try:
                message = build_message(config, key, subject, json.loads(parts), agency.email)
            except (ValueError, TypeError) as err:  # e.g. a line break in a subject: nothing was handed over
                _mark(
                    conn,
                    key,
                    "failed",
                    attempts,
                    f"the message cannot be built ({err}); check the names and places in conference.yaml and agencies.yaml, then `engine outbox --retry-failed`",
                )
                result.failed += 1
                continue
            try:
                transport.send(message, agency.email, key)
            except ServerUnavailable as err:
                # nothing was handed over: not an attempt of this message; the whole run waits
                _mark(
                    conn, key, "pending", attempts, str(err), next_at=_utc(now + timedelta(minutes=BACKOFF_MINUTES[0]))
                )
                result.deferred += len(due) - i
                result.server_unavailable = str(err)
                break
            except TemporaryFailure as err:
                if attempts + 1 >= config.mail.max_attempts:
                    _mark(conn, key, "failed", attempts + 1, f"gave up after {attempts + 1} attempts: {err}")
                    result.failed += 1
                else:
                    wait = BACKOFF_MINUTES[min(attempts, len(BACKOFF_MINUTES) - 1)]
                    _mark(conn, key, "pending", attempts + 1, str(err), next_at=_utc(now + timedelta(minutes=wait)))
                    result.deferred += 1
                if isinstance(err, Uncertain):
                    with conn:
                        conn.execute("UPDATE outbox SET possible_duplicate = 1 WHERE message_key = ?", (key,))
                continue
            except PermanentFailure as err:
                _mark(conn, key, "failed", attempts + 1, str(err))
                result.failed += 1
                continue
            with conn:
                conn.execute(
                    "UPDATE outbox SET status = 'sent', sent_at = ?, sent_to = ?, last_error = NULL WHERE message_key = ?",
                    (clock.stamp(), agency.email, key),
                )
                _log_mail(conn, config, now, key, agency_id, "mail_sent", f"{agency.name}へ送信")
            result.sent += 1
    finally:
        try:
            transport.close()
        finally:
            _release_lock(conn, token)
            conn.execute("PRAGMA synchronous=NORMAL")
    return result


def retry(conn: sqlite3.Connection, keys: list[str] | None = None) -> tuple[int, int]:
    """Queue failed messages again (all of them, or the given keys) after the cause is fixed.
    A failed version that a newer one has replaced is marked superseded instead: it must not
    arrive after its successor."""
    failed = [k for (k,) in conn.execute("SELECT message_key FROM outbox WHERE status = 'failed'")]
    wanted = [k for k in failed if keys is None or k in keys]
    queued = superseded = 0
    with conn:
        for key in wanted:
            if has_newer_version(conn, key):
                superseded += conn.execute(
                    "UPDATE outbox SET status = 'superseded' WHERE message_key = ?", (key,)
                ).rowcount
                continue
            queued += conn.execute(
                "UPDATE outbox SET status = 'pending', attempts = 0, next_attempt_at = NULL WHERE message_key = ?",
                (key,),
            ).rowcount
    return queued, superseded


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _mark(
    conn: sqlite3.Connection, key: str, status: str, attempts: int, error: str, next_at: str | None = None
) -> None:
    with conn:
        conn.execute(
            "UPDATE outbox SET status = ?, attempts = ?, last_error = ?, next_attempt_at = ? WHERE message_key = ?",
            (status, attempts, error[:500], next_at, key),
        )
        if status == "failed":
            agency_id = conn.execute("SELECT agency_id FROM outbox WHERE message_key = ?", (key,)).fetchone()[0]
            _log_mail(conn, None, clock.now(), key, agency_id, "mail_failed", f"送信失敗: {error[:200]}")


def case_of(conn: sqlite3.Connection, key: str) -> tuple[str | None, str | None]:
    """(case id, meeting id) a message belongs to, from its key."""
    kind, _, rest = key.partition(":")
    ref = rest.split(":")[0]
    if kind == "agenda":
        return None, ref
    if kind == "routing":
        return ref, None
    table = {
        "lead_request": ("lead_requests", "request_id"),
        "lead_withdrawn": ("lead_requests", "request_id"),
        "reminder": ("case_actions", "action_id"),
        "checkpoint": ("checkpoints", "checkpoint_id"),
    }.get(kind)
    if table and ref.isdigit():
        row = conn.execute(f"SELECT case_id FROM {table[0]} WHERE {table[1]} = ?", (int(ref),)).fetchone()
        return (row[0] if row else None), None
    return None, None


def _log_mail(
    conn: sqlite3.Connection, config: Config | None, now: datetime, key: str, agency_id: str, event: str, reason: str
) -> None:
    case_id, meeting_id = case_of(conn, key)
    Log(conn, now.astimezone(TOKYO).date(), "dispatch", config_hash=config.hash if config else None).event(
        event, case_id=case_id, meeting_id=meeting_id, reason=reason, message_key=key, agency=agency_id
    )
