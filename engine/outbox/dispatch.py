"""Send the outbox: transport `file` (.eml files in <workspace>/outbox/) or `smtp`.

Each message is marked `sending` (committed) before it is handed to the transport and `sent`
after. A message found still `sending` at the next run crashed in between: the server may or
may not have accepted it. It is sent again with the same Message-ID (so mail clients can fold
the two) and marked possible_duplicate, which `engine outbox` reports — the one duplicate window
is shown, never hidden. The file transport has no such window: the file name is the key. So it
works in groups (`FileTransport.group`): the group's claims and answer links synced at once before
any of its files is written, the files, the folder synced, then the group's `sent` marks in one
commit. SMTP works one message a group, so its window stays one message.

Recipients come only from the agency registry, looked up at send time.
"""

from __future__ import annotations

import json
import os
import socket
import sqlite3
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import NamedTuple

from pydantic import BaseModel

from engine.config import Agency, Config
from engine.outbox.keys import MessageKey
from engine.outbox.transports import (
    PermanentFailure,
    ServerUnavailable,
    TemporaryFailure,
    Uncertain,
    build_message,
    transport_for,
)
from engine.outbox.withhold import case_of, has_newer_version, stale_reason, withhold
from engine.policy import members
from engine.policy.consent import case_consented
from engine.store.lifecycle import Log
from engine.support import clock

BACKOFF_MINUTES = (5, 15, 60, 240, 720)


class SendResult(BaseModel):
    busy: bool = False  # another dispatch was running (or took the lock as stale): this one stopped
    server_unavailable: str | None = None  # no connection or login: everything waits for the next run
    sent: int = 0
    failed: int = 0  # permanently, shown to the coordinator
    deferred: int = 0  # temporary failure, stays queued with a later attempt time
    possible_duplicates: int = 0  # found in the crash window and sent again


def recipient(config: Config, agency_id: str) -> Agency | None:
    """The registry entry a message goes to: an agency of agencies.yaml, the coordinator
    (lifecycle.yaml's coordinator_email) or a place of resources.yaml (only for its own referrals:
    engine/participation/mail.py). Nothing else can ever be a recipient."""
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
    if agency_id in config.participation.places:  # 参加支援: a place, for its own referrals only (_barred)
        from engine.participation.mail import place_recipient

        return place_recipient(config.participation.places[agency_id])
    return config.agencies.get(agency_id)


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


class _LockLost(Exception):
    """This dispatch no longer holds the lock: it claims nothing more."""


def _refresh(conn: sqlite3.Connection, token: str) -> None:
    """Keep the lock fresh (in the caller's transaction); _LockLost when another dispatch took it."""
    if not conn.execute("UPDATE dispatch_lock SET taken_at = ? WHERE token = ?", (clock.stamp(), token)).rowcount:
        raise _LockLost


def _release_lock(conn: sqlite3.Connection, token: str) -> None:
    with conn:
        conn.execute("DELETE FROM dispatch_lock WHERE name = 'outbox' AND token = ?", (token,))


def _barred(
    conn: sqlite3.Connection,
    config: Config,
    key: str,
    parsed: MessageKey | None,
    agency_id: str,
    agency: Agency | None,
    restricted: bool,
    now: datetime,
) -> str | None:
    """Why the message may not go to its recipient at all (it is failed, shown to the coordinator):
    the agency left the registry, the key is none the engine writes, or members only."""
    if agency is None:
        return f"agency '{agency_id}' is no longer in agencies.yaml: nobody to send to"
    if parsed is None:
        return f"'{key}' is not a message key the engine writes: nothing is sent under it"
    day = now.astimezone(clock.TOKYO).date().isoformat()
    if agency_id in config.participation.places and agency_id not in config.agencies:
        from engine.participation.mail import place_refusal

        return place_refusal(conn, config, parsed, agency_id, day)

    def consented() -> bool:
        case_id, _ = case_of(conn, parsed)
        return case_id is not None and case_consented(conn, case_id, day)

    return members.refusal(agency, agency_id, restricted=restricted, lifecycle=parsed.lifecycle, consented=consented)


def _recover(conn: sqlite3.Connection, config: Config, transport, now: datetime, result: SendResult) -> None:
    """Messages left 'sending' by a dispatch that died. A transport that can tell what it delivered
    (the file transport: the .eml is there or not) settles them: delivered → sent; not → pending
    again, an ordinary message. Over one that cannot (SMTP) the server may have them: they are sent
    again, marked possible_duplicate and counted in `result`, unless a newer version replaced them."""
    rows = conn.execute(
        "SELECT message_key, agency_id, parts FROM outbox WHERE status = 'sending' ORDER BY queued_at, message_key"
    ).fetchall()
    delivered = getattr(transport, "delivered", None)
    with conn:
        for key, agency_id, parts in rows:
            agency = recipient(config, agency_id)
            if delivered is not None and agency is not None:
                if delivered(key):
                    conn.execute(
                        "UPDATE outbox SET status = 'sent', sent_at = ?, sent_to = ?, last_error = NULL WHERE message_key = ?",
                        (clock.stamp(), agency.email, key),
                    )
                    _links().retire_earlier_links(
                        conn, MessageKey.read(key), agency_id, _links().asks(json.loads(parts))
                    )
                    _log_mail(
                        conn,
                        config,
                        now,
                        key,
                        agency_id,
                        "mail_sent",
                        f"{agency.name}へ送信（止まった送信の記録を補完）",
                    )
                    result.sent += 1
                else:  # never written: nobody holds it, nor the link minted with its claim
                    _links().not_delivered(conn, _links().minted_for(conn, key))
                    conn.execute("UPDATE outbox SET status = 'pending' WHERE message_key = ?", (key,))
                continue
            result.possible_duplicates += 1
            conn.execute(
                "UPDATE outbox SET status = ?, possible_duplicate = 1 WHERE message_key = ?",
                ("superseded" if has_newer_version(conn, MessageKey.read(key)) else "pending", key),
            )
            _maybe_twice(conn, config, now, key, agency_id)
        if result.sent:
            _flush(transport)  # the files found are on disk before their `sent` marks are


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
        _recover(conn, config, transport, now, result)
        due = conn.execute(
            # datetime(): times are compared as instants whatever their UTC offset (the scheduled
            # dispatch stores +00:00, a dispatch for another day runs at 08:00+09:00)
            "SELECT message_key, agency_id, subject, parts, attempts, members_only, possible_duplicate FROM outbox WHERE status = 'pending' AND (next_attempt_at IS NULL OR datetime(next_attempt_at) <= datetime(?)) ORDER BY queued_at, message_key",
            (now.isoformat(timespec="seconds"),),
        ).fetchall()
        group = max(1, getattr(transport, "group", 1))
        for first in range(0, len(due), group):
            if group > 1:  # the group's claims are committed without a sync each …
                conn.execute("PRAGMA synchronous=NORMAL")
            ready = [r for row in due[first : first + group] if (r := _prepare(conn, config, token, row, now, result))]
            if group > 1:  # … and put on disk with their links in one sync, before any of its files
                conn.execute("PRAGMA synchronous=FULL")
                with conn:
                    _refresh(conn, token)
            done, unavailable = _hand_over(conn, config, transport, ready, now, result)
            if done:
                with conn:  # one commit for the group (one message a group but for the file transport)
                    for r in done:
                        conn.execute(  # still its claim: not a message another dispatch took back meanwhile
                            "UPDATE outbox SET status = 'sent', sent_at = ?, sent_to = ?, last_error = NULL WHERE message_key = ? AND status = 'sending'",
                            (clock.stamp(), r.agency.email, r.key),
                        )
                        _links().retire_earlier_links(conn, MessageKey.read(r.key), r.agency_id, r.asks)
                        _log_mail(conn, config, now, r.key, r.agency_id, "mail_sent", f"{r.agency.name}へ送信")
                result.sent += len(done)
            if unavailable:  # these, and every message after the group
                result.deferred += unavailable + max(0, len(due) - first - group)
                break
    except _LockLost:  # another dispatch took the lock as stale (a clock step, a hung server): it goes on
        result.busy = True
    finally:
        try:
            transport.close()
        finally:
            _release_lock(conn, token)
            conn.execute("PRAGMA synchronous=NORMAL")
    return result


class Ready(NamedTuple):
    """A claimed message, built, about to be handed over."""

    key: str
    agency_id: str
    agency: Agency
    attempts: int  # before this one
    message: object
    asks: bool  # it carries an answer link (its delivery retires the links of earlier e-mails)
    link_id: int | None  # the link this attempt minted (dies if it is not delivered)


def _prepare(
    conn: sqlite3.Connection, config: Config, token: str, row: tuple, now: datetime, result: SendResult
) -> Ready | None:
    """One due message checked, claimed (`sending`, with its answer link) and built; None if it
    does not go now (failed, withheld, or taken meanwhile)."""
    key, agency_id, subject, parts, attempts, members_only, maybe_sent = row
    agency = recipient(config, agency_id)
    parsed = MessageKey.read(key)
    barred = _barred(conn, config, key, parsed, agency_id, agency, bool(members_only), now)
    if barred:
        _mark(conn, key, "failed", attempts, barred, now=now)
        result.failed += 1
        return None
    stale = stale_reason(conn, config, parsed, now, parts)
    if stale:
        withhold(conn, config, parsed, stale, now, maybe_sent=bool(maybe_sent))
        return None
    link_id = None
    try:
        with conn:  # one commit: the claim and the answer link, minted now (engine/links/tokens.py)
            _refresh(conn, token)
            claimed = conn.execute(
                "UPDATE outbox SET status = 'sending', attempts = attempts + 1 WHERE message_key = ? AND status = 'pending'",
                (key,),
            ).rowcount
            loaded, before = json.loads(parts), _links().minted_for(conn, key)
            filled = _links().fill_links(conn, config, parsed, agency_id, loaded, now) if claimed else None
            link_id = after if (after := _links().minted_for(conn, key)) != before else None  # this attempt's
        if not claimed:
            return None  # superseded or sent meanwhile
        message = build_message(config, key, subject, filled, agency.email)  # the link goes only into the message
    except (ValueError, TypeError) as err:  # a line break in a subject, unreadable parts: nothing was handed over,
        # and the link minted with the claim dies
        with conn:
            _links().not_delivered(conn, link_id)
        _mark(
            conn,
            key,
            "failed",
            attempts,
            f"the message cannot be built ({err}); check the names and places in conference.yaml and agencies.yaml, then `engine outbox --retry-failed`",
            now=now,
        )
        result.failed += 1
        return None
    return Ready(key, agency_id, agency, attempts, message, _links().asks(loaded), link_id)


def _hand_over(
    conn: sqlite3.Connection, config: Config, transport, ready: list[Ready], now: datetime, result: SendResult
) -> tuple[list[Ready], int]:
    """Each claimed message to the transport: (those it took, how many wait because the server
    is unavailable — then nothing more is handed over this run, and none of them was an attempt)."""
    done: list[Ready] = []
    for n, r in enumerate(ready):
        key, attempts = r.key, r.attempts
        try:
            transport.send(r.message, r.agency.email, key)
        except ServerUnavailable as err:
            later = _utc(now + timedelta(minutes=BACKOFF_MINUTES[0]))
            for waiting in ready[n:]:
                with conn:
                    _links().not_delivered(conn, waiting.link_id)
                _mark(conn, waiting.key, "pending", waiting.attempts, str(err), next_at=later)
            result.server_unavailable = str(err)
            _flush(transport)
            return done, len(ready) - n
        except TemporaryFailure as err:
            if not isinstance(err, Uncertain):  # the server has nothing: the link in it dies
                with conn:
                    _links().not_delivered(conn, r.link_id)
            if attempts + 1 >= config.mail.max_attempts:
                _mark(conn, key, "failed", attempts + 1, f"gave up after {attempts + 1} attempts: {err}", now=now)
                result.failed += 1
            else:
                wait = BACKOFF_MINUTES[min(attempts, len(BACKOFF_MINUTES) - 1)]
                _mark(conn, key, "pending", attempts + 1, str(err), next_at=_utc(now + timedelta(minutes=wait)))
                result.deferred += 1
            if isinstance(err, Uncertain):
                with conn:
                    conn.execute("UPDATE outbox SET possible_duplicate = 1 WHERE message_key = ?", (key,))
                    _maybe_twice(conn, config, now, key, r.agency_id)
            continue
        except PermanentFailure as err:
            with conn:
                _links().not_delivered(conn, r.link_id)
            _mark(conn, key, "failed", attempts + 1, str(err), now=now)
            result.failed += 1
            continue
        done.append(r)
    _flush(transport)
    return done, 0


def _flush(transport) -> None:
    """What the transport keeps for the end of a group (the file transport: one sync of its folder)."""
    flush = getattr(transport, "flush", None)
    if flush is not None:
        flush()


def _maybe_twice(conn: sqlite3.Connection, config: Config, now: datetime, key: str, agency_id: str) -> None:
    """Tell the coordinator (an escalation, in the next digest) that a message may arrive twice."""
    Log(conn, now.astimezone(clock.TOKYO).date(), "dispatch", config_hash=config.hash).escalate(
        f"duplicate:{key}",
        "mail_possible_duplicate",
        f"メール {key}（{agency_id} 宛て）は送信が途中で止まったため、二重に届いた可能性があります"
        "（engine outbox で確認し、必要なら宛先の機関にお知らせください）",
        case_id=case_of(conn, MessageKey.read(key))[0],
    )


def _links():
    import engine.links.tokens as tokens  # engine.links answers through casework, which queues through the outbox

    return tokens


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="seconds")


def _mark(
    conn: sqlite3.Connection,
    key: str,
    status: str,
    attempts: int,
    error: str,
    next_at: str | None = None,
    *,
    now: datetime | None = None,
) -> None:
    """A message's new state; a failure is logged on the dispatch's day (`now`), as its sends are."""
    with conn:
        conn.execute(
            "UPDATE outbox SET status = ?, attempts = ?, last_error = ?, next_attempt_at = ? WHERE message_key = ?",
            (status, attempts, error[:500], next_at, key),
        )
        if status == "failed":
            agency_id = conn.execute("SELECT agency_id FROM outbox WHERE message_key = ?", (key,)).fetchone()[0]
            _log_mail(conn, None, now or clock.now(), key, agency_id, "mail_failed", f"送信失敗: {error[:200]}")


def _log_mail(
    conn: sqlite3.Connection, config: Config | None, now: datetime, key: str, agency_id: str, event: str, reason: str
) -> None:
    case_id, meeting_id = case_of(conn, MessageKey.read(key))
    Log(conn, now.astimezone(clock.TOKYO).date(), "dispatch", config_hash=config.hash if config else None).event(
        event, case_id=case_id, meeting_id=meeting_id, reason=reason, message_key=key, agency=agency_id
    )
