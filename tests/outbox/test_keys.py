"""Message keys (engine/outbox/keys.py): each kind is built by its constructor, written as the text the
database already holds, and read back to the same key; a malformed key is a clear ValueError."""

from __future__ import annotations

from datetime import date

import pytest

from engine.outbox.keys import MessageKey

BUILT = [
    (MessageKey.agenda("M-20261214-1400-S", "houkatsu_chuo", 2), "agenda:M-20261214-1400-S:houkatsu_chuo:v2"),
    (MessageKey.routing("C-2026-00001", "kodomo_center", 1), "routing:C-2026-00001:kodomo_center:v1"),
    (MessageKey.lead_request(12), "lead_request:12"),
    (MessageKey.lead_withdrawn(12), "lead_withdrawn:12"),
    (MessageKey.reminder(7, overdue=False), "reminder:7:due"),
    (MessageKey.reminder(7, overdue=True), "reminder:7:overdue"),
    (MessageKey.reminder(7, overdue=False, locked=True), "reminder:7:due:locked"),
    (MessageKey.reminder(7, overdue=True, locked=True), "reminder:7:overdue:locked"),
    (MessageKey.checkpoint(3), "checkpoint:3"),
    (MessageKey.digest(date(2026, 12, 14)), "digest:2026-12-14"),
    (MessageKey.notice("attack:parts-jp"), "notice:attack:parts-jp"),
]


@pytest.mark.parametrize(("key", "text"), BUILT, ids=[t for _, t in BUILT])
def test_every_kind_is_written_as_today_and_read_back(key, text):
    assert str(key) == text
    assert MessageKey.parse(text) == key
    assert str(MessageKey.parse(text)) == text


@pytest.mark.parametrize(
    "text",
    [
        "routing:C-2026-00001:kodomo_center",  # queued before routing notices had versions
        "faulttest:00",  # any other notice: KIND:TEXT
        "r03:01",
    ],
)
def test_older_and_other_keys_round_trip(text):
    assert str(MessageKey.parse(text)) == text


def test_what_the_outbox_reads_from_a_key():
    agenda = MessageKey.parse("agenda:M-20261214-1400-S:houkatsu_chuo:v2")
    assert (agenda.ref, agenda.agency_id, agenda.version) == ("M-20261214-1400-S", "houkatsu_chuo", 2)
    assert agenda.version_prefix == "agenda:M-20261214-1400-S:houkatsu_chuo:v"
    assert str(agenda.next_version()) == "agenda:M-20261214-1400-S:houkatsu_chuo:v3"
    assert "agenda:M-20261214-1400-S:houkatsu_chuo:v2".startswith(MessageKey.agenda_prefix("M-20261214-1400-S"))
    reminder = MessageKey.parse("reminder:7:overdue:locked")
    assert (reminder.number, reminder.stage, reminder.locked, reminder.lifecycle) == (7, "overdue", True, True)
    assert not MessageKey.parse("digest:2026-12-14").lifecycle and MessageKey.parse("digest:2026-12-14").number is None
    assert MessageKey.parse("routing:C-2026-00001:kodomo_center").version_prefix is None  # no newer version to find
    assert MessageKey.read("reminder:7") is None


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("agenda", "KIND:"),
        ("agenda:M-1:houkatsu_chuo", "no version"),
        ("agenda:M-1:houkatsu_chuo:2", ":vN"),
        ("agenda:M-1:houkatsu_chuo:v02", ":vN"),
        ("agenda:M-1", "no agency"),
        ("routing:C-1:kodomo_center:vx", ":vN"),
        ("lead_request:", "nothing after"),
        ("lead_request:abc", "not a number"),
        ("lead_withdrawn:007", "not a number"),
        ("checkpoint:3:due", "checkpoint:N"),
        ("reminder:7", "no stage"),
        ("reminder:7:late", "reminder:N:due|overdue[:locked]"),
        ("reminder:7:due:open", "reminder:N:due|overdue[:locked]"),
        ("digest:20261214", "not a day"),
        ("digest:2026-02-30", "not a day"),
        (":7", "not a kind"),
        ("bad kind:7", "not a kind"),
    ],
)
def test_a_malformed_key_is_a_clear_value_error(text, says):
    with pytest.raises(ValueError, match="is not a message key") as err:
        MessageKey.parse(text)
    assert says in str(err.value) and f"'{text}'" in str(err.value)


def test_a_constructor_refuses_what_would_not_read_back():
    with pytest.raises(ValueError, match="colon"):
        MessageKey.agenda("M:1", "houkatsu_chuo", 1)
    with pytest.raises(ValueError, match="no agency"):
        MessageKey.routing("C-1", "", 1)
    with pytest.raises(ValueError, match="no agency, version or stage"):
        MessageKey("checkpoint", "3", version=2)


def test_a_prefix_range_holds_exactly_the_keys_that_start_with_it_and_uses_the_primary_key():
    import sqlite3

    from engine.outbox.keys import PREFIXED, prefixed

    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE outbox (message_key TEXT PRIMARY KEY)")
    keys = [
        "agenda:M1:a:v1",
        "agenda:M1:a:v12",
        "agenda:M1:b:v1",
        "agenda:M10:a:v1",  # another meeting whose id starts with M1
        "agenda:M1;x",  # the character after ':'
        "agenda:M0:a:v1",
        "agenda:M1:日本:v2",  # beyond ASCII
        "routing:C1:a:v1",
        "routing:C1:a",  # a notice queued before versions
    ]
    conn.executemany("INSERT INTO outbox VALUES (?)", [(k,) for k in keys])
    for prefix in ("agenda:M1:", "agenda:M1:a:v", "routing:C1:a:v", "agenda:"):
        found = {k for (k,) in conn.execute(f"SELECT message_key FROM outbox WHERE {PREFIXED}", prefixed(prefix))}
        assert found == {k for k in keys if k.startswith(prefix)}, prefix
    plan = " ".join(
        r[-1] for r in conn.execute(f"EXPLAIN QUERY PLAN SELECT 1 FROM outbox WHERE {PREFIXED}", prefixed("agenda:M1:"))
    )
    assert "USING" in plan and "INDEX" in plan, plan  # a search of the primary key, not a scan
    with pytest.raises(ValueError):
        prefixed("")


def test_superseding_an_older_version_searches_the_keys_range_not_every_pending_message(tmp_path):
    from engine.outbox.queue import supersede_pending
    from engine.store.db import connect

    conn = connect(tmp_path / "ws")
    seen: list[str] = []
    conn.set_trace_callback(seen.append)
    try:
        supersede_pending(conn, MessageKey.agenda("M1", "a", 2).version_prefix)
        conn.set_trace_callback(None)
        (sql,) = [s for s in seen if s.lstrip().startswith("UPDATE outbox")]
        plan = " ".join(str(r[-1]) for r in conn.execute(f"EXPLAIN QUERY PLAN {sql}"))
    finally:
        conn.close()
    assert "sqlite_autoindex_outbox_1" in plan and "outbox_status" not in plan, plan
