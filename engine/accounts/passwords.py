"""Passwords of the console's accounts: the one strength rule, and argon2id hashes (argon2-cffi's
defaults; a hash made with older parameters is rehashed at the next good login)."""

from __future__ import annotations

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

MIN_LENGTH = 12
MAX_LENGTH = 1024  # argon2 takes any length; a megabyte "password" only costs us time

HASHER = PasswordHasher()
# a hash of nothing anyone knows: an unknown name costs as much time as a wrong password
_DUMMY = HASHER.hash("not a password of any account")


def weakness(password: str) -> str | None:
    """Why `password` is refused, or None."""
    if len(password) < MIN_LENGTH:
        return f"the password must have at least {MIN_LENGTH} characters"
    if len(password) > MAX_LENGTH:
        return f"the password may have at most {MAX_LENGTH} characters"
    if len(set(password)) < 4:
        return "the password repeats too few characters; use a passphrase of several words"
    return None


def hash_password(password: str) -> str:
    return HASHER.hash(password)


def verify(stored: str | None, password: str) -> bool:
    """`password` matches the hash `stored` (None: no such account, verified against a dummy)."""
    try:
        return HASHER.verify(stored or _DUMMY, password[:MAX_LENGTH]) and stored is not None
    except (VerificationError, InvalidHashError):
        return False


def needs_rehash(stored: str) -> bool:
    try:
        return HASHER.check_needs_rehash(stored)
    except InvalidHashError:
        return True
