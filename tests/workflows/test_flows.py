"""The flows in-process against a throwaway Prefect server (its home, database and result storage in a
temporary folder): they take no path from a caller, read the day like --date, retry a busy database
and nothing else, and a failed run leaves no exception on disk."""

from __future__ import annotations

import sqlite3

import pytest

from engine.support.settings import bind
from engine.workflows import flows
from tests.helpers.paths import CONFIG_DIR, RULES_DIR


@pytest.fixture(scope="module")
def prefect_home(tmp_path_factory):
    from prefect.settings import temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    home = tmp_path_factory.mktemp("prefect")
    isolated = {
        "home": str(home),
        "results.local_storage_path": str(home / "storage"),
        "server.analytics_enabled": False,
        "flows.heartbeat_frequency": None,  # no heartbeat thread: each run would end a second late
    }
    with temporary_settings(updates=isolated), prefect_test_harness(server_startup_timeout=90):
        yield home


@pytest.fixture
def served(monkeypatch, town, workspace):
    """The environment `engine serve` gives its flows: this workspace, the example rules and configs."""
    for name, value in bind(workspace, RULES_DIR, CONFIG_DIR).items():
        monkeypatch.setenv(name, value)
    return workspace


def run(fl, parameters: dict):
    """A flow run as Prefect's runner starts one for a flow run created through the API."""
    from prefect.flow_engine import run_flow

    return run_flow(fl, parameters=parameters, return_type="state")


def stored(home) -> list:
    return [p for p in (home / "storage").rglob("*") if p.is_file()] if (home / "storage").exists() else []


def test_a_flow_run_given_paths_is_refused_and_touches_nothing(prefect_home, served, town, tmp_path):
    other = tmp_path / "elsewhere"
    other.mkdir(mode=0o755)
    (other / "agencies.yaml").write_text("# an attacker's agencies\n")
    for params in (
        {"workspace": str(other), "on": "2026-11-27"},
        {"config_dir": str(other)},
        {"rules_dir": str(other), "workspace": str(other), "config_dir": str(other)},
    ):
        state = run(flows.nightly_flow, params)
        assert state.is_failed() and "parameters" in state.message, state.message
    assert sorted(p.name for p in other.iterdir()) == ["agencies.yaml"] and (other.stat().st_mode & 0o777) == 0o755
    assert town.execute("SELECT COUNT(*) FROM cases").fetchone()[0] == 0
    assert stored(prefect_home) == []  # Prefect's pickled validation error was removed (forget_result)
    # the same flow with only a day works on the bound workspace
    state = run(flows.nightly_flow, {"on": "2026-11-27"})
    assert state.is_completed(), state.message
    assert town.execute("SELECT COUNT(*) FROM cases").fetchone()[0] == 4  # 3 opened, 1 routed


def test_a_flow_outside_engine_serve_does_nothing(prefect_home, monkeypatch, tmp_path):
    for name in bind(tmp_path, tmp_path, tmp_path):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)
    state = run(flows.sweep_flow, {"on": "2026-11-27"})
    assert state.is_failed() and "only under `engine serve`" in state.message, state.message
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "on, phrase",
    [
        ("2026-02-30", "no such day"),
        ("", "empty"),
        ("2300-01-01", "outside the years"),
        ("2026-11-27; rm -rf /", "not a recognised date"),
    ],
)
def test_the_day_is_read_like_the_command_lines_date(prefect_home, served, town, on, phrase):
    state = run(flows.dispatch_flow, {"on": on})
    assert state.is_failed() and phrase in state.message, state.message
    assert town.execute("SELECT COUNT(*) FROM cases").fetchone()[0] == 0


def test_a_japanese_era_day_is_read_too(prefect_home, served, town):
    state = run(flows.nightly_flow, {"on": "R8.11.27"})
    assert state.is_completed(), state.message
    assert town.execute("SELECT COUNT(*) FROM cases").fetchone()[0] == 4  # 3 opened, 1 routed


def test_a_failed_run_keeps_neither_the_exception_nor_its_text(prefect_home, served, monkeypatch):
    def leaky(*args, **kwargs):
        raise ValueError("試験 太郎 1979-11-15 テスト町1-2-3")

    monkeypatch.setattr(flows, "nightly_cycle", leaky)
    state = run(flows.nightly_flow, {"on": "2026-11-27"})
    assert state.is_failed() and state.message == (
        "nightly cycle failed: ValueError; run `engine run --date 2026-11-27` to see the error"
    )
    assert getattr(state.data, "result", state.data) is None  # the state holds no exception either
    assert stored(prefect_home) == []
    assert "試験" not in repr(state)


def test_the_steps_retry_a_busy_database_and_nothing_else(prefect_home, served, town, monkeypatch):
    calls = []
    real = flows.dispatch

    def busy_once(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise sqlite3.OperationalError("database is locked")
        return real(*args, **kwargs)

    monkeypatch.setattr(flows, "dispatch", busy_once)
    monkeypatch.setattr(flows, "dispatch_task", flows.dispatch_task.with_options(retry_delay_seconds=0))
    state = run(flows.dispatch_flow, {"on": "2026-11-27"})
    assert state.is_completed(), state.message
    assert len(calls) == 2

    def broken(*args, **kwargs):
        calls.append(1)
        raise sqlite3.OperationalError("no such table: outbox")

    calls.clear()
    monkeypatch.setattr(flows, "dispatch", broken)
    state = run(flows.dispatch_flow, {"on": "2026-11-27"})
    assert state.is_failed() and "OperationalError" in state.message and len(calls) == 1

    def always_busy(*args, **kwargs):
        calls.append(1)
        raise RuntimeError("wrapped") from sqlite3.OperationalError("database is locked")

    calls.clear()
    monkeypatch.setattr(flows, "dispatch", always_busy)
    state = run(flows.dispatch_flow, {"on": "2026-11-27"})
    assert state.is_failed() and "stayed busy" in state.message, state.message
    assert len(calls) == 1 + len(flows.BUSY_RETRY_DELAYS)
    assert stored(prefect_home) == []


def test_the_scheduled_steps_retry_with_a_delay_on_a_busy_database_only():
    for t in (flows.nightly_task, flows.dispatch_task, flows.sweep_task):
        assert t.retries == len(flows.BUSY_RETRY_DELAYS) >= 2
        assert t.retry_delay_seconds == list(flows.BUSY_RETRY_DELAYS) and min(flows.BUSY_RETRY_DELAYS) >= 30
        assert t.retry_condition_fn is flows.database_busy
        assert t.persist_result is False
    for fl in (flows.nightly_flow, flows.dispatch_flow, flows.sweep_flow):
        assert fl.persist_result is False and flows.forget_result in fl.on_failure_hooks
