"""engine/outbox/mime.py writes the engine's e-mails by hand: what the standard parser (and so a
mail client) reads back must be exactly what was given, with either line end, whatever the text."""

from __future__ import annotations

import email
import email.policy

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from engine.outbox.mime import Mail

HEADERS = [
    ("From", "jimukyoku@city.example.lg.jp"),
    ("To", "houkatsu@city.example.lg.jp"),
    ("Subject", "【支援会議】令和8年12月7日（月） 10:00〜11:30 開催のご案内 M-20261207-1000-S（第2版）"),
    ("Message-ID", "<agenda.M-20261207-1000-S.houkatsu.v2@city.example.lg.jp>"),
    ("Date", "Sat, 05 Dec 2026 21:00:00 +0000"),
    ("X-Engine-Key", "agenda:M-20261207-1000-S:houkatsu:v2"),
]


def parsed(mail: Mail, linesep: str = "\n") -> email.message.EmailMessage:
    raw = mail.as_bytes(policy=mail.policy.clone(linesep=linesep))
    if linesep == "\r\n":
        assert b"\n" not in raw.replace(b"\r\n", b"")  # every line ends in CRLF, as SMTP wants
    assert all(len(line) <= 998 for line in raw.split(linesep.encode()))
    head = raw.split(2 * linesep.encode(), 1)[0]
    assert all(len(line) <= 76 for line in head.split(linesep.encode())), head  # folded (RFC 5322 2.1.1)
    return email.message_from_bytes(raw, policy=email.policy.default)


@pytest.mark.parametrize("linesep", ["\n", "\r\n"])
def test_an_agenda_with_its_invitation_reads_back_as_written(linesep):
    parts = {"text": "本文\n二行目", "html": "<p>本文</p>", "ics": "BEGIN:VCALENDAR\r\nEND:VCALENDAR\r\n"}
    msg = parsed(Mail(HEADERS, parts | {"ics_method": "CANCEL"}), linesep)
    assert [(k, str(msg[k])) for k, _ in HEADERS] == HEADERS
    assert msg.get_content_type() == "multipart/mixed"
    assert msg.get_body(("plain",)).get_content() == "本文\n二行目"  # exactly, line ends too
    assert msg.get_body(("html",)).get_content() == "<p>本文</p>"
    (calendar,) = msg.iter_attachments()
    assert calendar.get_content_type() == "text/calendar" and calendar.get_filename() == "cancel.ics"
    assert calendar.get_param("method") == "CANCEL" and calendar.get_param("charset") == "utf-8"
    assert calendar.get_content() == parts["ics"]


def test_a_notice_without_an_invitation_is_text_and_html_only():
    msg = parsed(Mail(HEADERS, {"text": "a", "html": "b"}))
    assert msg.get_content_type() == "multipart/alternative"
    assert [p.get_content_type() for p in msg.iter_parts()] == ["text/plain", "text/html"]


@pytest.mark.parametrize(
    "headers, parts, refused",
    [
        ([("Subject", "議題\r\nBcc: evil@example.com")], {}, "line break"),
        ([("To", "a@example.com\nBcc: evil@example.com")], {}, "line break"),
        ([("X-Engine-Key", "agenda:会議")], {}, "ASCII"),
        ([], {"ics": "x", "ics_method": "PUBLISH"}, "not one of"),
        ([], {"ics": "x", "ics_method": "REQUEST\r\nBcc: evil@example.com"}, "line break"),
    ],
)
def test_a_header_that_could_carry_another_is_refused(headers, parts, refused):
    with pytest.raises(ValueError, match=refused):
        Mail(HEADERS + headers, {"text": "a", "html": "b"} | parts)


@settings(max_examples=150, deadline=None)
@given(subject=st.text(min_size=1), text=st.text(), html=st.text(), ics=st.text(min_size=1))
def test_any_text_reads_back_unchanged(subject, text, html, ics):
    subject = " ".join(subject.split())  # a header never has a line break (refused above); the parser folds spaces
    if not subject:
        return
    headers = [(k, v) for k, v in HEADERS if k != "Subject"] + [("Subject", subject)]
    msg = parsed(Mail(headers, {"text": text, "html": html, "ics": ics}), "\r\n")
    assert str(msg["Subject"]) == subject
    assert msg.get_body(("plain",)).get_content() == text
    assert msg.get_body(("html",)).get_content() == html
    (calendar,) = msg.iter_attachments()
    assert calendar.get_content() == ics


@pytest.mark.parametrize("subject", ["=?utf-8?b?5YG9?= is not a word", "plain ASCII", "a" * 200])
def test_an_ascii_subject_that_looks_encoded_or_is_long_reads_back_as_written(subject):
    headers = [(k, v) for k, v in HEADERS if k != "Subject"] + [("Subject", subject)]
    assert str(parsed(Mail(headers, {"text": "", "html": ""}))["Subject"]) == subject


def test_the_body_is_base64_in_lines_of_76_as_the_standard_library_writes_it():
    import base64

    from engine.outbox.mime import _base64

    for text in ["", "a", "あ" * 19, "あ" * 20, "x" * 57, "x" * 58, "本文\n" * 400, "𠀋" * 1000]:
        assert _base64(text) == base64.encodebytes(text.encode("utf-8")).decode("ascii"), len(text)
