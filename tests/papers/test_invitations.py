"""Calendar invitations follow RFC 5545 (issue 12): text escaped (a `;`, `,` or line break in a
place or a name cannot end the property and start another), lines folded at 75 octets without
cutting a UTF-8 character, CRLF line ends, a charset on the MIME part, an ORGANIZER and an
ATTENDEE (the receiving agency's address; no person's name or address). Every invitation the
engine produces here, a request and a cancellation, is parsed with the icalendar library."""

from __future__ import annotations

import email
import email.policy
import shutil
from datetime import date

import icalendar
import pytest
from hypothesis import given
from hypothesis import strategies as st

from engine.config import load_config
from engine.papers import ics
from tests.helpers.conference import case_of, cycle
from tests.helpers.paths import ROOT
from tests.helpers.town import add_household, elder_and_son

PLACE = "市役所本庁舎 3階; 第1会議室, 東側（旧館）\\ 入口は北側の通用口、受付で「支援会議」とお伝えください"
NAME = "支援会議, 中央; 試行"


@pytest.fixture
def local(tmp_path, rules):
    """The shipped configuration with a place and a conference name full of TEXT delimiters."""
    conf = tmp_path / "configs"
    shutil.copytree(ROOT / "configs", conf)
    path = conf / "conference.yaml"
    text = path.read_text(encoding="utf-8").replace("place: 市役所本庁舎 3階 第1会議室}", f"place: '{PLACE}'}}")
    text = text.replace("support: 支援会議 ", f"support: '{NAME}' ")
    path.write_text(text, encoding="utf-8")
    cfg = load_config(conf, rules)
    assert cfg.name_of("support") == NAME
    return cfg


def invitations(workspace) -> dict[str, str]:
    return {
        str(p.relative_to(workspace)): p.read_bytes().decode("utf-8") for p in (workspace / "agendas").rglob("*.ics")
    }


def check(raw: str, cfg, agency_id: str, meeting: str, place: str, name: str) -> icalendar.Event:
    lines = raw.split("\r\n")
    assert lines[-1] == "" and all("\n" not in line and "\r" not in line for line in lines), "CRLF line ends"
    assert all(len(line.encode("utf-8")) <= 75 for line in lines), [line for line in lines if len(line.encode()) > 75]
    cal = icalendar.Calendar.from_ical(raw)
    events = list(cal.walk("VEVENT"))
    assert len(events) == 1
    event = events[0]
    assert str(event["LOCATION"]) == place
    assert str(event["SUMMARY"]) == f"{name} {meeting}"
    assert str(event["UID"]) == f"{meeting}@engine"
    organizer = event["ORGANIZER"]
    assert (
        str(organizer) == f"mailto:{cfg.mail.sender}" and organizer.params["CN"] == name + "事務局"
    )  # the type's own 事務局
    attendees = event["ATTENDEE"] if isinstance(event["ATTENDEE"], list) else [event["ATTENDEE"]]
    agency = cfg.agencies[agency_id]
    assert [str(a) for a in attendees] == [f"mailto:{agency.email}"]
    assert attendees[0].params["CN"] == agency.name
    return event


def test_every_invitation_parses_and_round_trips_place_summary_and_attendees(conn, workspace, rules, local):
    add_household(conn, "H8050", *elder_and_son(), area="中央")
    add_household(conn, "HAGREED", *elder_and_son(consent=True), area="北部")
    cycle(conn, workspace, rules, local)
    conn.execute("UPDATE records SET end_date = '2026-11-28' WHERE code = 'consent'")  # the NPO loses its case
    conn.commit()
    cycle(conn, workspace, rules, local, date(2026, 11, 30))
    found = invitations(workspace)
    assert len(found) >= 3
    places = dict(conn.execute("SELECT meeting_id, place FROM meetings").fetchall())
    names = [n for (n,) in conn.execute("SELECT name FROM persons WHERE name IS NOT NULL")]
    methods = set()
    for path, raw in found.items():
        meeting, agency_id = path.split("/")[1], path.split("/")[2].split(".v")[0]
        kind = conn.execute("SELECT conference_type FROM meetings WHERE meeting_id = ?", (meeting,)).fetchone()[0]
        event = check(raw, local, agency_id, meeting, places[meeting], local.name_of(kind))
        method = str(icalendar.Calendar.from_ical(raw)["METHOD"])
        methods.add(method)
        assert not any(n in raw for n in names)
        assert (method == "CANCEL") == (str(event.get("STATUS")) == "CANCELLED")
    assert methods == {"REQUEST", "CANCEL"}
    assert PLACE in places.values()
    assert case_of(conn, "H8050")["meeting"] in {p.split("/")[1] for p in found}


def test_the_mime_part_names_its_charset_and_method(conn, workspace, rules, local):
    add_household(conn, "H8050", *elder_and_son(), area="中央")
    cycle(conn, workspace, rules, local)
    parts = []
    for eml in (workspace / "outbox").glob("agenda_*.eml"):
        msg = email.message_from_bytes(eml.read_bytes(), policy=email.policy.default)
        parts += [p for p in msg.walk() if p.get_content_type() == "text/calendar"]
    assert parts
    for part in parts:
        assert part.get_param("charset") == "utf-8" and part.get_param("method") == "REQUEST"
        raw = part.get_content()
        cal = icalendar.Calendar.from_ical(raw)
        assert str(next(iter(cal.walk("VEVENT")))["LOCATION"]) == PLACE


@pytest.mark.parametrize(
    "value",
    [
        "第1会議室\r\nATTENDEE:mailto:evil@example.com",
        "a\nb\rc\u2028d",
        "back\\slash;semi,comma",
        "会議室" * 40,
        "tab\there\x00\x07",
    ],
)
def test_text_escaping_and_folding_keep_one_property(value):
    raw = ics.fold(f"BEGIN:VCALENDAR\nBEGIN:VEVENT\nUID:x\nLOCATION:{ics.text(value)}\nEND:VEVENT\nEND:VCALENDAR\n")
    assert all(len(line.encode("utf-8")) <= 75 for line in raw.split("\r\n"))
    event = next(iter(icalendar.Calendar.from_ical(raw).walk("VEVENT")))
    assert "ATTENDEE" not in event
    expected = "\n".join(value.splitlines()).replace("\x00", "").replace("\x07", "")
    assert str(event["LOCATION"]) == expected


@given(st.text())
def test_text_drops_exactly_the_characters_rfc_5545_refuses(value):
    """ics.text drops control characters with a translation table (fast on every agenda); it keeps
    what the per-character rule keeps, and nothing it refuses."""
    out = ics.text(value)
    joined = "\\n".join(value.replace("\\", "\\\\").replace(";", "\\;").replace(",", "\\,").splitlines())
    assert out == "".join(ch for ch in joined if ch == "\t" or (ord(ch) >= 32 and ord(ch) != 127))


def test_the_invitations_view_escapes_what_a_template_reads_at_any_depth():
    """ics.view escapes lazily (an invitation reads a few fields): whatever is read, at any depth,
    is escaped; numbers stay numbers."""
    view = ics.escaped({"cases": [{"place": "室;1\nATTENDEE:mailto:x"}], "count": 3, "tags": ("a,b",)})
    assert view["count"] == 3 and len(view["cases"]) == 1
    assert view["cases"][0]["place"] == "室\\;1\\nATTENDEE:mailto:x"
    assert [dict(c) for c in view["cases"]] == [{"place": "室\\;1\\nATTENDEE:mailto:x"}]
    assert list(view["tags"]) == ["a\\,b"] and view["tags"][:1] == ["a\\,b"]
