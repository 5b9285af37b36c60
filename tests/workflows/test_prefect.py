"""Prefect: the schedules as declared, the date a scheduled run takes (the day in Tokyo), and a real local
server running a deployment on demand.

`engine serve` is started as users start it; a flow run is created through the API (no waiting
for 02:00), runs the nightly cycle on a small town, and Prefect's database is then scanned for
the town's personal data."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from datetime import UTC, date, datetime
from pathlib import Path

import pytest

from engine.support import clock
from engine.workflows.schedules import SCHEDULES, TIMEZONE, deployments
from tests.helpers.paths import ROOT
from tests.helpers.served import api, free_port, proc_env, wait_for
from tests.helpers.town import add_household, person


def test_schedules_are_declared_with_cron_and_tokyo_time():
    deps = {d.name: d for d in deployments(Path("ws"), ROOT / "configs" / "rules", ROOT / "configs")}
    assert set(deps) == {"nightly-cycle", "daily-sweep", "agenda-dispatch"} == set(SCHEDULES)
    sweep = deps["daily-sweep"].schedules[0].schedule
    assert (sweep.cron, sweep.timezone) == ("0 7 * * *", "Asia/Tokyo")
    nightly = deps["nightly-cycle"].schedules[0].schedule
    dispatch = deps["agenda-dispatch"].schedules[0].schedule
    assert (nightly.cron, nightly.timezone) == ("0 2 * * *", "Asia/Tokyo") == (nightly.cron, TIMEZONE)
    assert (dispatch.cron, dispatch.timezone) == ("0 8 * * 1-5", "Asia/Tokyo")
    assert deps["nightly-cycle"].parameters["workspace"] == str(Path("ws").resolve())


@pytest.mark.regression("review of the conference slice")
def test_scheduled_runs_use_the_date_in_tokyo(monkeypatch):
    from engine.workflows import flows

    monkeypatch.setenv("TZ", "UTC")
    time.tzset()
    try:
        # Sunday 23:00 on a UTC server is already Monday 08:00 in Japan
        with clock.pinned(datetime(2026, 11, 29, 23, 0, tzinfo=UTC)):
            assert flows._on(None) == date(2026, 11, 30)
    finally:
        monkeypatch.undo()
        time.tzset()


@pytest.fixture
def served(conn, workspace, tmp_path):
    add_household(
        conn, "H8050", person(82, "世帯主", ("care_level", "要介護2"), sex="M"), person(52, "子", sex="M"), area="中央"
    )
    add_household(
        conn, "HDV", person(34, "世帯主", ("dv_support_measure", "住民票等の閲覧制限")), person(6, "子"), area="南部"
    )
    port = free_port()
    env = proc_env()
    log = open(tmp_path / "serve.log", "w")
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "engine.cli",
            "serve",
            "--workspace",
            str(workspace),
            "--config",
            str(ROOT / "configs"),
            "--rules",
            str(ROOT / "configs" / "rules"),
            "--port",
            str(port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}/api"
    try:
        yield proc, url, workspace, tmp_path / "serve.log"
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
        pidfile = workspace / "prefect" / "server.pid"
        if pidfile.exists():  # never leave an orphaned server behind
            try:
                os.killpg(int(pidfile.read_text()), signal.SIGKILL)
            except ProcessLookupError:
                pass
        log.close()


def test_engine_serve_runs_a_deployment_triggered_through_the_api(served, conn):
    proc, url, workspace, log = served
    deps = wait_for(lambda: len(d := api(url, "/deployments/filter", {})) == 3 and d, 120, "the three deployments")
    by_name = {d["name"]: d for d in deps}
    assert by_name["nightly-cycle"]["schedules"][0]["schedule"] == {
        "cron": "0 2 * * *",
        "timezone": "Asia/Tokyo",
        "day_or": True,
    }
    assert by_name["agenda-dispatch"]["schedules"][0]["schedule"]["cron"] == "0 8 * * 1-5"
    run = api(
        url, f"/deployments/{by_name['nightly-cycle']['id']}/create_flow_run", {"parameters": {"on": "2026-11-27"}}
    )
    state = wait_for(
        lambda: (s := api(url, f"/flow_runs/{run['id']}")["state"]["type"]) in ("COMPLETED", "FAILED", "CRASHED") and s,
        180,
        "the flow run",
    )
    assert state == "COMPLETED"
    assert conn.execute("SELECT COUNT(*) FROM cases").fetchone()[0] == 2
    assert conn.execute("SELECT COUNT(*) FROM outbox WHERE status = 'pending'").fetchone()[0] > 0
    logs = wait_for(
        lambda: [
            e["message"]
            for e in api(url, "/logs/filter", {"logs": {"flow_run_id": {"any_": [run["id"]]}}})
            if "cases opened" in e["message"]
        ],
        60,
        "the flow's log",
    )
    assert "2 cases opened" in logs[0]
    # the daily sweep fires through the API too: on a business day it queues the coordinator's digest
    assert by_name["daily-sweep"]["schedules"][0]["schedule"]["cron"] == "0 7 * * *"
    run = api(url, f"/deployments/{by_name['daily-sweep']['id']}/create_flow_run", {"parameters": {"on": "2026-11-27"}})
    state = wait_for(
        lambda: (s := api(url, f"/flow_runs/{run['id']}")["state"]["type"]) in ("COMPLETED", "FAILED", "CRASHED") and s,
        180,
        "the sweep run",
    )
    assert state == "COMPLETED"
    assert (
        conn.execute(
            "SELECT COUNT(*) FROM outbox WHERE message_key = 'digest:2026-11-27' AND agency_id = 'coordinator'"
        ).fetchone()[0]
        == 1
    )
    # stop it as a user would (Ctrl-C) and check nothing is left running
    os.killpg(proc.pid, signal.SIGINT)
    proc.wait(timeout=60)
    with pytest.raises(OSError):
        urllib.request.urlopen(url + "/health", timeout=2)
    # served again (a restart): Prefect paused the deployments on shutdown; they must be live again
    again = subprocess.Popen(
        proc.args[:-1] + [str(free_port())],
        env=proc_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    try:
        url2 = f"http://127.0.0.1:{again.args[-1]}/api"
        deps = wait_for(
            lambda: len(d := api(url2, "/deployments/filter", {})) == 3 and not any(x["paused"] for x in d) and d,
            180,
            "the deployments live again after a restart",
        )
        assert [d["paused"] for d in deps] == [False, False, False], [(d["name"], d["paused"]) for d in deps]
        # a second `engine serve` on the same workspace is refused: it would run every schedule twice
        third = subprocess.run(
            proc.args[:-1] + [str(free_port())], env=proc_env(), capture_output=True, text=True, timeout=60
        )
        assert third.returncode == 2 and "already serving" in third.stderr
    finally:
        os.killpg(again.pid, signal.SIGINT)
        again.wait(timeout=60)
    # Prefect's store: no name, kana, address or birth date of the town
    births = [b for (b,) in conn.execute("SELECT birth_date FROM persons")]
    secrets = ["試験", "太郎", "シケン", "タロウ", "テスト町"] + births
    stored = list((workspace / "prefect").rglob("*")) + [log]
    assert any(p.name.endswith(".db") for p in stored)
    for path in stored:
        if path.is_file():
            data = path.read_bytes()
            for s in secrets:
                assert s.encode() not in data, f"{s} in {path}"


def test_a_server_orphaned_by_a_hard_kill_is_stopped_by_the_next_serve(tmp_path):
    from engine.workflows.serve import prefect_env, stop_orphan

    ws = tmp_path / "ws"
    home = Path(prefect_env(ws)["PREFECT_HOME"])
    # a stand-in for an orphaned server: a process whose command line says `prefect server`
    fake = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", "prefect", "server"], start_new_session=True
    )
    wait_for(
        lambda: b"prefect" in Path(f"/proc/{fake.pid}/cmdline").read_bytes(), 10, "the stand-in to start"
    )  # until exec is done
    (home / "server.pid").write_text(str(fake.pid))
    assert stop_orphan(ws) is True
    assert fake.wait(timeout=10) != 0 and not (home / "server.pid").exists()
    # an unrelated process with a recycled pid is left alone
    other = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"], start_new_session=True)
    (home / "server.pid").write_text(str(other.pid))
    assert stop_orphan(ws) is False and other.poll() is None
    other.kill()


def test_only_loopback_hosts_are_served_without_being_told():
    from engine.workflows.serve import is_loopback

    assert all(is_loopback(h) for h in ("127.0.0.1", "127.1.2.3", "::1", "localhost"))
    assert not any(is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.10", "office-pc", "localhost.evil.example"))
