"""Incremental screening is exact: after data changes and time passes, the open flags equal what
the reference evaluator finds on the whole town at the new date."""

from __future__ import annotations

import tempfile
from datetime import timedelta
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from engine.screening.screen import screen
from engine.store.db import connect
from tests.helpers.random_towns import persons, records, rule_sets
from tests.helpers.reference import iter_households, reference_flags
from tests.helpers.town import ON


def insert_town(conn, town):
    for h, members in enumerate(town):
        hid = f"H{h:04d}"
        conn.execute("INSERT INTO households VALUES (?,?,?,0)", (hid, "中央", ""))
        for p, m in enumerate(members):
            pid = f"{hid}P{p}"
            conn.execute(
                "INSERT INTO persons VALUES (?,?,?,?,?,?,?,?)",
                (pid, hid, "", "", m["birth"], m["sex"], m["rel"], m["nat"]),
            )
            for i, (code, value, start, end) in enumerate(m["records"]):
                conn.execute(
                    "INSERT INTO records VALUES (?,?,?,?,?,?,?)", (f"{pid}|{i}", pid, "t", code, value, start, end)
                )
    conn.commit()


def apply_changes(conn, changes):
    """Each change adds a record to, or ends every record of, one person; like an import."""
    seq = conn.execute("SELECT COALESCE(MAX(import_seq), 0) + 1 FROM imports").fetchone()[0]
    conn.execute("INSERT INTO imports VALUES (?, 'now', 'test', 'utf-8', '{}')", (seq,))
    pids = [p for (p,) in conn.execute("SELECT person_id FROM persons ORDER BY person_id")]
    for n, (pick, new_record, end_all) in enumerate(changes):
        if not pids:
            break
        pid = pids[pick % len(pids)]
        if end_all:
            conn.execute(
                "UPDATE records SET end_date = ? WHERE person_id = ? AND end_date IS NULL",
                ((ON - timedelta(days=1)).isoformat(), pid),
            )
        else:
            code, value, start, end = new_record
            conn.execute(
                "INSERT INTO records VALUES (?,?,?,?,?,?,?)", (f"{pid}|new{seq}-{n}", pid, "t", code, value, start, end)
            )
        conn.execute(
            "UPDATE households SET changed_seq = ? WHERE household_id = (SELECT household_id FROM persons WHERE person_id = ?)",
            (seq, pid),
        )
    conn.commit()


changes = st.lists(st.tuples(st.integers(0, 10_000), records(), st.booleans()), max_size=6)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    town=st.lists(st.lists(persons(), min_size=1, max_size=4), min_size=1, max_size=25),
    edits=changes,
    days_later=st.sampled_from([0, 1, 3, 30, 100, 183, 400]),
)
def test_incremental_screen_equals_reference(rules, town, edits, days_later):
    with tempfile.TemporaryDirectory() as tmp:
        workspace = Path(tmp)
        conn = connect(workspace)
        insert_town(conn, town)
        assert screen(conn, workspace, rules, ON).mode == "full"
        apply_changes(conn, edits)
        later = ON + timedelta(days=days_later)
        result = screen(conn, workspace, rules, later)
        assert result.mode == "incremental"
        got = {(h, r) for h, r in conn.execute("SELECT household_id, rule_id FROM flags WHERE status = 'open'")}
        expected = set()
        for chunk in iter_households(conn):
            expected |= reference_flags(chunk, rules, later)
        conn.close()
    assert got == expected


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
@given(
    rules=rule_sets(),
    town=st.lists(st.lists(persons(), min_size=1, max_size=4), min_size=1, max_size=20),
    edits=changes,
    days_later=st.integers(0, 500),
)
def test_incremental_screen_equals_reference_for_random_rules(rules, town, edits, days_later):
    test_incremental_screen_equals_reference.hypothesis.inner_test(rules, town, edits, days_later)
