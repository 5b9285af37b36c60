"""Full and incremental screening: what is re-evaluated, what is resolved (never deleted)."""

from datetime import date, timedelta

import pytest

from engine.rules.loader import load_rules
from engine.screening import screen as screening
from engine.screening.screen import screen
from tests.helpers.paths import ROOT
from tests.helpers.town import ON, add_household, born, person


def new_import(conn, hid):
    """What an import does to a changed household: a new import_seq and changed_seq."""
    seq = conn.execute("SELECT COALESCE(MAX(import_seq), 0) + 1 FROM imports").fetchone()[0]
    conn.execute("INSERT INTO imports VALUES (?, '2026-11-27T00:00:00', 'x', 'utf-8', '{}')", (seq,))
    conn.execute("UPDATE households SET changed_seq = ? WHERE household_id = ?", (seq, hid))
    conn.commit()


def flags(conn, status="open"):
    return {(h, r) for h, r in conn.execute("SELECT household_id, rule_id FROM flags WHERE status = ?", (status,))}


@pytest.fixture
def town(conn):
    add_household(conn, "H8050", person(82, "世帯主", ("care_level", "要介護2")), person(52, "子", pid="SON"))
    add_household(conn, "HOK", person(45, "世帯主", ("earned_income", "5000000")))
    for i in range(20):
        add_household(conn, f"HX{i:02d}", person(30 + i, "世帯主", ("earned_income", "3000000")))
    return conn


def test_incremental_skips_unchanged_households(town, workspace, rules):
    first = screen(town, workspace, rules, ON)
    assert first.mode == "full" and ("H8050", "8050") in flags(town)
    again = screen(town, workspace, rules, ON)
    assert again.mode == "incremental" and again.scope == 0 and again.candidates == 0


def test_the_scope_is_kept_in_household_id_order(town, workspace, rules):
    """The pre-selection reads the scope's households in the order of scope_ids: in id order,
    neighbouring households share pages (a cold night at 1M households: 1.6 s against 2.7 s)."""
    screen(town, workspace, rules, ON)
    changed = ["HX17", "HX03", "H8050", "HX11", "HOK", "HX09"]
    for hid in changed:
        new_import(town, hid)
    result = screen(town, workspace, rules, ON)
    assert result.mode == "incremental" and result.scope == len(changed)
    assert [h for (h,) in town.execute("SELECT household_id FROM temp.scope_ids ORDER BY rowid")] == sorted(changed)


def test_changed_household_is_rescreened_and_flag_resolved_not_deleted(town, workspace, rules):
    screen(town, workspace, rules, ON)
    town.execute(
        "INSERT INTO records VALUES ('son-job', 'SON', '住民税', 'earned_income', '2000000', '2026-10-01', NULL)"
    )
    new_import(town, "H8050")
    result = screen(town, workspace, rules, ON)
    assert result.mode == "incremental" and result.scope == 1 and result.flags_resolved >= 1
    row = town.execute(
        "SELECT status, resolved_on, first_detected FROM flags WHERE household_id = 'H8050' AND rule_id = '8050'"
    ).fetchone()
    assert row == ("resolved", ON.isoformat(), ON.isoformat())


def test_flag_that_returns_is_a_new_flag_with_history_kept(town, workspace, rules):
    screen(town, workspace, rules, ON)
    town.execute(
        "INSERT INTO records VALUES ('son-job', 'SON', '住民税', 'earned_income', '2000000', '2026-10-01', '2026-11-30')"
    )
    new_import(town, "H8050")
    screen(town, workspace, rules, ON)
    later = date(2026, 12, 1)  # the job ended on 11-30: time alone brings the household back
    result = screen(town, workspace, rules, later)
    assert result.mode == "incremental" and result.flags_opened >= 1
    rows = town.execute(
        "SELECT status, first_detected FROM flags WHERE household_id = 'H8050' AND rule_id = '8050' ORDER BY flag_id"
    ).fetchall()
    assert rows == [("resolved", ON.isoformat()), ("open", later.isoformat())]


def test_reaching_an_age_threshold_is_rescreened_without_any_import(conn, workspace, rules):
    birthday = ON + timedelta(days=3)
    elder = person(0, "世帯主", ("care_level", "要介護1"), birth=born(74, birthday.month, birthday.day))
    add_household(conn, "HTURN", elder, person(50, "子"))
    screen(conn, workspace, rules, ON)
    assert ("HTURN", "8050") not in flags(conn)  # 74 today
    result = screen(conn, workspace, rules, birthday)
    assert result.mode == "incremental" and result.scope == 1
    assert ("HTURN", "8050") in flags(conn)


def test_rule_change_forces_a_full_screen(town, workspace, rules, tmp_path):
    screen(town, workspace, rules, ON)
    changed = tmp_path / "rules"
    changed.mkdir()
    for f in (ROOT / "configs" / "rules").glob("*.yaml"):
        (changed / f.name).write_text(
            f.read_text(encoding="utf-8").replace("age: {min: 75}", "age: {min: 80}", 1), encoding="utf-8"
        )
    new_rules = load_rules(changed)
    assert new_rules.hash != rules.hash
    assert screen(town, workspace, new_rules, ON).mode == "full"


def test_parallel_full_screen_equals_single_process(town, workspace, rules, monkeypatch):
    single = screen(town, workspace, rules, ON, full=True, workers=1)
    expected = flags(town)
    town.execute("DELETE FROM flags")
    town.commit()
    monkeypatch.setattr(screening, "PARALLEL_FROM", 2)
    parallel = screen(town, workspace, rules, ON, full=True, workers=2)
    assert flags(town) == expected and parallel.candidates == single.candidates


def test_screen_summary_counts(town, workspace, rules):
    result = screen(town, workspace, rules, ON)
    assert result.open_flags["8050"] == 1 and result.flags_opened == sum(result.open_flags.values())
    assert result.scope == 22


def test_a_change_to_most_of_the_town_runs_as_a_full_screen(town, workspace, rules, monkeypatch):
    screen(town, workspace, rules, ON)
    for (hid,) in town.execute("SELECT household_id FROM households").fetchall():
        new_import(town, hid)
    monkeypatch.setattr(screening, "PARALLEL_FROM", 2)
    result = screen(town, workspace, rules, ON)
    assert result.mode == "full" and ("H8050", "8050") in flags(town)


def test_members_born_after_the_screening_date_do_not_count_yet(conn, workspace, rules):
    add_household(
        conn,
        "HPAST",
        person(40, "世帯主", ("disability_certificate", "身体", "2000-01-01")),
        person(0, "子", birth="2025-06-01"),
    )
    add_household(
        conn, "HALONE", person(80, "世帯主", ("dementia", "IIa", "2000-01-01")), person(0, "孫", birth="2025-06-01")
    )
    screen(conn, workspace, rules, date(2024, 6, 1), full=True)
    assert flags(conn) >= {("HALONE", "isolated_elder")}
    assert ("HPAST", "parent_disability_child") not in flags(conn)
    screen(conn, workspace, rules, ON)  # the births pass: both households change
    assert ("HPAST", "parent_disability_child") in flags(conn)
    assert ("HALONE", "isolated_elder") not in flags(conn)


def test_a_lookback_window_passing_an_end_date_is_rescreened(conn, workspace, rules):
    add_household(conn, "HJOB", person(30, "世帯主", ("earned_income", "2000000", "2020-04-01", "2026-07-01")))
    screen(conn, workspace, rules, ON)
    assert ("HJOB", "hikikomori") not in flags(conn)  # income within the last 6 months
    later = date(2027, 1, 2)  # 6 months after 2026-07-01 have passed
    result = screen(conn, workspace, rules, later)
    assert result.mode == "incremental" and result.scope == 1
    assert ("HJOB", "hikikomori") in flags(conn)


@pytest.mark.parametrize("workers", [1, 2])
def test_full_screen_progress_rises_to_total_and_changes_nothing(town, workspace, rules, monkeypatch, workers):
    monkeypatch.setattr(screening, "PARALLEL_FROM", 2)  # two workers: two id ranges, each reported
    stored = "SELECT household_id, rule_id, rule_version, severity, status, evidence FROM flags ORDER BY flag_id"
    plain = screen(town, workspace, rules, ON, full=True, workers=workers)
    expected = town.execute(stored).fetchall()
    town.execute("DELETE FROM flags")
    town.commit()
    calls = []
    seen = screen(town, workspace, rules, ON, full=True, workers=workers, progress=lambda *call: calls.append(call))
    assert town.execute(stored).fetchall() == expected
    assert seen.model_dump(exclude={"run_id", "seconds"}) == plain.model_dump(exclude={"run_id", "seconds"})
    assert {(total, what) for _, total, what in calls} == {(22, "全件スクリーニング")}
    done = [d for d, _, _ in calls]
    assert done == sorted(done) and done[0] == 0 and done[-1] == 22 and len(calls) == 1 + workers
