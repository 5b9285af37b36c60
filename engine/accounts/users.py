"""The console's accounts: added, listed, unlocked and removed from the CLI (`engine users`), and
checked at login with a lock-out: MAX_FAILURES failed logins in a row lock the account for
LOCK_MINUTES (on engine.support.clock). Every login, failure and lock-out is an audit entry with
{"via": "console"}: under the account's name when it exists, under "web" for a name that is no
account (that name is not written: it may be a password typed in the wrong box). No password or
session id is ever written anywhere but as a hash."""

from __future__ import annotations

import sqlite3
from datetime import datetime, timedelta
from typing import Literal

from pydantic import BaseModel

from engine.accounts import passwords, sessions
from engine.store.db import write_transaction
from engine.store.lifecycle import ActorRefused, Log, acting_via, person_actor
from engine.support import clock
from engine.support.errors import EngineError

ROLES = {"coordinator": "コーディネーター"}
MAX_FAILURES = 5  # failed logins in a row that lock an account
LOCK_MINUTES = 15  # how long a locked account stays locked (or until `engine users unlock`)


class AccountRefused(EngineError):
    """A name, role or password `engine users` does not take, or an account that is not there."""

    exit_code = 2


class Account(BaseModel):
    name: str
    role: str
    created_at: str
    failed_logins: int = 0
    locked_until: str | None = None
    last_login_at: str | None = None

    def locked(self, now: datetime | None = None) -> bool:
        return bool(self.locked_until) and datetime.fromisoformat(self.locked_until) > (now or clock.now())


class Login(BaseModel):
    """What a login attempt came to: `ok` (with the new session id), `failed`, or `locked`."""

    result: Literal["ok", "failed", "locked"]
    name: str | None = None
    session_id: str | None = None


def account_name(name: str) -> str:
    """A name an account may have: the rules of a person's --by (not the engine's own actors)."""
    try:
        return person_actor(name)
    except ActorRefused as err:
        raise AccountRefused(str(err).replace("--by", "NAME").replace("give your own name", "choose another")) from None


def check_role(role: str) -> str:
    if role not in ROLES:
        raise AccountRefused(f"--role {role}: not a role; the roles are {', '.join(ROLES)}")
    return role


def get(conn: sqlite3.Connection, name: str) -> Account | None:
    row = conn.execute(
        "SELECT name, role, created_at, failed_logins, locked_until, last_login_at FROM users WHERE name = ?", (name,)
    ).fetchone()
    return Account(**dict(zip(Account.model_fields, row, strict=True))) if row else None


def all_accounts(conn: sqlite3.Connection) -> list[Account]:
    names = [row[0] for row in conn.execute("SELECT name FROM users ORDER BY name")]
    return [a for a in (get(conn, n) for n in names) if a]


def _audit(conn: sqlite3.Connection, actor: str, event: str, reason: str, **detail) -> None:
    with acting_via("console"):
        Log(conn, clock.today(), actor).event(event, reason=reason, **detail)


def add(conn: sqlite3.Connection, name: str, role: str, password: str, *, by: str) -> Account:
    """A new account (refused: a reserved or existing name, an unknown role, a weak password)."""
    name, role = account_name(name), check_role(role)
    if why := passwords.weakness(password):
        raise AccountRefused(f"{why}; nothing was saved")
    hashed = passwords.hash_password(password)
    with write_transaction(conn):
        if get(conn, name):
            raise AccountRefused(f"an account named {name} already exists (`engine users list`)")
        conn.execute(
            "INSERT INTO users (name, role, password_hash, created_at) VALUES (?, ?, ?, ?)",
            (name, role, hashed, clock.stamp()),
        )
        Log(conn, clock.today(), by).event("user_added", reason=f"アカウント {name}（{ROLES[role]}）を作成", role=role)
    return get(conn, name)  # type: ignore[return-value]


def _existing(conn: sqlite3.Connection, name: str) -> Account:
    account = get(conn, name)
    if account is None:
        raise AccountRefused(f"no account is named {name} (`engine users list` shows them)")
    return account


def unlock(conn: sqlite3.Connection, name: str, *, by: str) -> Account:
    with write_transaction(conn):
        _existing(conn, name)
        conn.execute("UPDATE users SET failed_logins = 0, locked_until = NULL WHERE name = ?", (name,))
        Log(conn, clock.today(), by).event("user_unlocked", reason=f"アカウント {name} のロックを解除")
    return _existing(conn, name)


def remove(conn: sqlite3.Connection, name: str, *, by: str) -> None:
    with write_transaction(conn):
        _existing(conn, name)
        sessions.end_all(conn, name)
        conn.execute("DELETE FROM users WHERE name = ?", (name,))
        Log(conn, clock.today(), by).event("user_removed", reason=f"アカウント {name} を削除")


def authenticate(conn: sqlite3.Connection, name: str, password: str, *, address: str = "") -> Login:
    """Check a login; on success a new session. A locked account is refused whatever the password
    (which is still hashed, so that every failure takes the same time); the MAX_FAILURES-th failure
    in a row locks it for LOCK_MINUTES."""
    name = name.strip()[:64]
    with write_transaction(conn):
        account = get(conn, name) if name else None
        if account is None:
            passwords.verify(None, password)  # the same time as a wrong password
            _audit(conn, "web", "login_failed", "ログイン失敗（アカウント名が不明）", address=address)
            return Login(result="failed")
        stored = conn.execute("SELECT password_hash FROM users WHERE name = ?", (name,)).fetchone()[0]
        if account.locked():
            passwords.verify(stored, password)  # the same time as any failure: a lock must not tell the name exists
            _audit(conn, name, "login_locked", "ロック中のアカウントへのログインを拒否", address=address)
            return Login(result="locked", name=name)
        if not passwords.verify(stored, password):
            return _failed(conn, account, address)
        if passwords.needs_rehash(stored):
            conn.execute("UPDATE users SET password_hash = ? WHERE name = ?", (passwords.hash_password(password), name))
        conn.execute(
            "UPDATE users SET failed_logins = 0, locked_until = NULL, last_login_at = ? WHERE name = ?",
            (clock.stamp(), name),
        )
        session_id = sessions.start(conn, name)
        _audit(conn, name, "login", "コンソールにログイン", address=address)
    return Login(result="ok", name=name, session_id=session_id)


def _failed(conn: sqlite3.Connection, account: Account, address: str) -> Login:
    count = (0 if account.locked_until else account.failed_logins) + 1  # a lock that ran out starts a new count
    if count < MAX_FAILURES:
        conn.execute("UPDATE users SET failed_logins = ?, locked_until = NULL WHERE name = ?", (count, account.name))
        _audit(conn, account.name, "login_failed", f"ログイン失敗（パスワード誤り、{count} 回連続）", address=address)
        return Login(result="failed", name=account.name)
    until = (clock.now() + timedelta(minutes=LOCK_MINUTES)).isoformat(timespec="seconds")
    conn.execute("UPDATE users SET failed_logins = ?, locked_until = ? WHERE name = ?", (count, until, account.name))
    sessions.end_all(conn, account.name)
    _audit(
        conn,
        account.name,
        "login_locked",
        f"{count} 回連続の失敗でアカウントを {LOCK_MINUTES} 分ロック",
        address=address,
    )
    return Login(result="failed", name=account.name)


def logout(conn: sqlite3.Connection, session_id: str | None, *, address: str = "") -> str | None:
    """End the session of this cookie value; the account's name, if there was one."""
    name = sessions.end(conn, session_id)
    if name:
        with write_transaction(conn):
            _audit(conn, name, "logout", "コンソールからログアウト", address=address)
    return name
