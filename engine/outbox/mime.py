"""An e-mail as bytes, written directly in the one shape the engine sends.

The standard library's email package took about 4 ms a message (each header parsed and refolded,
a regular expression compiled for every boundary): most of sending a night's agendas. The engine's
messages have one fixed, small shape, so they are written here:

    multipart/mixed                                      (only with an invitation)
      multipart/alternative: text/plain, text/html        UTF-8, base64
      text/calendar; method=REQUEST|CANCEL                UTF-8, base64, invite.ics / cancel.ics

Every body is base64, so no body line can be taken for a boundary (a base64 line never starts
with "--"), run over the 998-octet limit, or need 8BITMIME. Headers are ASCII; the subject is
RFC 2047 encoded. A header value with a line break, or a method other than REQUEST and CANCEL, is
refused with ValueError before anything is handed over, as the email package refuses it.
Mail clients and tests read the result with the standard parser (tests/outbox/test_mime.py).
"""

from __future__ import annotations

import binascii
import secrets
from email import policy as email_policy

METHODS = ("REQUEST", "CANCEL")  # RFC 5546: an invitation, or its withdrawal


class Mail:
    """The message: its headers (read like an EmailMessage's: mail["From"]) and `as_bytes`."""

    policy = email_policy.default  # as_bytes(policy=mail.policy.clone(linesep="\r\n")), as for an EmailMessage

    def __init__(self, headers: list[tuple[str, str]], parts: dict):
        for name, value in headers:
            _plain(f"the header {name}", value, ascii_only=name != "Subject")
        self.headers = headers
        # encoded now, so that a body that cannot be (not text, a lone surrogate) is refused while
        # the message is built, before anything is handed over; lines end in "\n" until as_bytes
        self.text, self.html = _base64(parts["text"]), _base64(parts["html"])
        self.ics = _base64(parts["ics"]) if parts.get("ics") else None
        self.method = parts.get("ics_method", "REQUEST")
        _plain("the invitation's method", self.method)
        if self.ics and self.method not in METHODS:
            raise ValueError(f"the invitation's method {self.method!r} is not one of {', '.join(METHODS)}")

    def __getitem__(self, name: str) -> str | None:
        return next((v for k, v in self.headers if k.lower() == name.lower()), None)

    def as_bytes(self, unixfrom: bool = False, policy=None) -> bytes:
        nl = (policy or self.policy).linesep
        lines = [f"{k}: {_header(k, v, nl)}" for k, v in self.headers] + ["MIME-Version: 1.0"]
        alternative = _multipart(
            "alternative",
            [_text_part("plain", self.text, nl), _text_part("html", self.html, nl)],
            nl,
        )
        if self.ics:
            name = "invite.ics" if self.method == "REQUEST" else "cancel.ics"
            calendar = [
                f'Content-Type: text/calendar; charset="utf-8"; method="{self.method}"',
                "Content-Transfer-Encoding: base64",
                f'Content-Disposition: attachment; filename="{name}"',
                "",
                _lines(self.ics, nl),
            ]
            body = _multipart("mixed", [alternative, nl.join(calendar)], nl)
        else:
            body = alternative
        return (nl.join(lines) + nl + body).encode("ascii")


def _plain(what: str, value: str, *, ascii_only: bool = True) -> None:
    if "\r" in value or "\n" in value:
        raise ValueError(f"{what} may not contain a line break")
    if ascii_only and not value.isascii():
        raise ValueError(f"{what} must be ASCII: {value!r}")


LINE = 76  # header lines are folded to at most this many characters (RFC 2047 2, RFC 5322 2.1.1)
WORD = "=?utf-8?b?{}?="  # an encoded word, with the 12 characters around the base64 text


def _header(name: str, value: str, nl: str) -> str:
    if name != "Subject" or (value.isascii() and "=?" not in value and len(name) + len(value) < LINE):
        return value  # the others are ASCII and short: addresses, a date, a message key
    return _encoded_words(value, len(name) + 2, nl)


def _encoded_words(value: str, before: int, nl: str) -> str:
    """`value` as RFC 2047 encoded words (UTF-8, base64), one a line: whole characters each, every
    line at most LINE characters (the first after `before` characters: "Subject: "). The space that
    folds the lines is not part of the value (RFC 2047 6.2); spaces within it are encoded.
    email.header.Header took 56 µs for an agenda's subject, this 11 µs (2026-12-06)."""
    words: list[str] = []
    room = (LINE - before - 12) // 4 * 3  # bytes whose base64 fits the first line
    chunk, size = [], 0
    for ch in value:
        n = len(ch.encode("utf-8"))  # a lone surrogate: UnicodeEncodeError, refused as a ValueError
        if size + n > room and chunk:
            words.append("".join(chunk))
            chunk, size, room = [], 0, (LINE - 1 - 12) // 4 * 3  # a folded line starts with a space
        chunk.append(ch)
        size += n
    words.append("".join(chunk))
    return (nl + " ").join(WORD.format(_b64(w.encode("utf-8"))) for w in words)


def _b64(data: bytes) -> str:
    return binascii.b2a_base64(data, newline=False).decode("ascii")


def _base64(text: str) -> str:
    """Lines of 76 characters, each ending "\n", as base64.encodebytes writes them (which encodes
    57 bytes a call). With the subject above: 162 µs to build an agenda's e-mail instead of 204."""
    if not isinstance(text, str):
        raise TypeError(f"a part of the message is not text: {type(text).__name__}")
    encoded = _b64(text.encode("utf-8"))
    return "".join(encoded[i : i + LINE] + "\n" for i in range(0, len(encoded), LINE))


def _lines(encoded: str, nl: str) -> str:
    return encoded.replace("\n", nl) if nl != "\n" else encoded


def _text_part(subtype: str, encoded: str, nl: str) -> str:
    return nl.join(
        [f'Content-Type: text/{subtype}; charset="utf-8"', "Content-Transfer-Encoding: base64", "", _lines(encoded, nl)]
    )


def _multipart(subtype: str, parts: list[str], nl: str) -> str:
    """A multipart entity (its Content-Type header, a blank line, the parts). The boundary cannot
    occur in a part: every body is base64, and the parts' headers are the ones written here."""
    boundary = f"=_{secrets.token_hex(12)}"
    out = [f'Content-Type: multipart/{subtype}; boundary="{boundary}"', ""]
    for part in parts:
        out += [f"--{boundary}", part.removesuffix(nl)]
    out += [f"--{boundary}--", ""]
    return nl.join(out)
