"""Reading the e-mails the file transport wrote (.eml files in <workspace>/outbox/)."""

from __future__ import annotations

import email
import email.policy
from pathlib import Path

# words that would tell another agency a household is a DV case
DV_WORDS = ("配偶者暴力", "DV", "ＤＶ", "安全確保", "連絡先・住所")


def emails(workspace: Path) -> list[email.message.EmailMessage]:
    return [
        email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        for p in sorted((workspace / "outbox").glob("*.eml"))
    ]


def messages(folder: Path) -> dict[str, email.message.EmailMessage]:
    """File name -> message, of every .eml file in `folder`."""
    return {
        p.name: email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        for p in sorted(folder.glob("*.eml"))
    }


def body(msg) -> str:
    """Every text part of a message."""
    return "\n".join(part.get_content() for part in msg.walk() if part.get_content_maintype() == "text")


def part(msg, subtype: str) -> str:
    """The text/`subtype` part of a message ('' when there is none)."""
    return next((p.get_content() for p in msg.walk() if p.get_content_type() == f"text/{subtype}"), "")


def sent_texts(workspace) -> dict[str, str]:
    """Message key -> plain text of every e-mail sent through the file transport."""
    out = {}
    for p in sorted((workspace / "outbox").glob("*.eml")):
        msg = email.message_from_bytes(p.read_bytes(), policy=email.policy.default)
        out[msg["X-Engine-Key"]] = msg.get_body(("plain",)).get_content()
    return out
