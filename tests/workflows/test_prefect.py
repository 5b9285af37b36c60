"""Prefect: the schedules as declared, the date a scheduled run takes (the day in Tokyo), and a real local
server running a deployment on demand.

`engine serve` is started as users start it; a flow run is created through the API (no waiting
for 02:00), runs the nightly cycle on a small town, and Prefect's database is then scanned for
the town's personal data."""

from __future__ import annotations

import base64
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
from engine.workflows.serve import read_api_auth
from tests.helpers.paths import ROOT
from tests.helpers.served import api, free_port, proc_env, wait_for
from tests.helpers.town import add_household, person


def test_schedules_are_declared_with_cron_and_tokyo_time():
    deps = {d.name: d for d in deployments()}
    assert set(deps) == {"nightly-cycle", "daily-sweep", "agenda-dispatch"} == set(SCHEDULES)
    sweep = deps["daily-sweep"].schedules[0].schedule
    assert (sweep.cron, sweep.timezone) == ("0 7 * * *", "Asia/Tokyo")
    nightly = deps["nightly-cycle"].schedules[0].schedule
    dispatch = deps["agenda-dispatch"].schedules[0].schedule
    assert (nightly.cron, nightly.timezone) == ("0 2 * * *", "Asia/Tokyo") == (nightly.cron, TIMEZONE)
    assert (dispatch.cron, dispatch.timezone) == ("0 8 * * 1-5", "Asia/Tokyo")
    # no paths: `engine serve` binds the workspace, rules and configuration; a run may give a day only
    for dep in deps.values():
        schema = dep._parameter_openapi_schema.model_dump(exclude_unset=True)
        assert dep.parameters == {} and set(schema["properties"]) == {"on"} and schema["additionalProperties"] is False
        assert dep.enforce_parameter_schema is True


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


SMTP_SECRET = "smtp-secret-not-for-the-prefect-server"


@pytest.fixture
def served(conn, workspace, tmp_path):
    add_household(
        conn, "H8050", person(82, "世帯主", ("care_level", "要介護2"), sex="M"), person(52, "子", sex="M"), area="中央"
    )
    add_household(
        conn, "HDV", person(34, "世帯主", ("dv_support_measure", "住民票等の閲覧制限")), person(6, "子"), area="南部"
    )
    port = free_port()
    env = {**proc_env(), "ENGINE_SMTP_USER": "kaigi", "ENGINE_SMTP_PASSWORD": SMTP_SECRET}  # named in configs/mail.yaml
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

    def call(path, body=None, base=url):
        return api(base, path, body, auth=read_api_auth(workspace))

    deps = wait_for(lambda: len(d := call("/deployments/filter", {})) == 3 and d, 120, "the three deployments")
    by_name = {d["name"]: d for d in deps}
    assert by_name["nightly-cycle"]["schedules"][0]["schedule"] == {
        "cron": "0 2 * * *",
        "timezone": "Asia/Tokyo",
        "day_or": True,
    }
    assert by_name["agenda-dispatch"]["schedules"][0]["schedule"]["cron"] == "0 8 * * 1-5"
    run = call(f"/deployments/{by_name['nightly-cycle']['id']}/create_flow_run", {"parameters": {"on": "2026-11-27"}})
    state = wait_for(
        lambda: (s := call(f"/flow_runs/{run['id']}")["state"]["type"]) in ("COMPLETED", "FAILED", "CRASHED") and s,
        180,
        "the flow run",
    )
    assert state == "COMPLETED"
    assert conn.execute("SELECT COUNT(*) FROM cases").fetchone()[0] == 2
    assert conn.execute("SELECT COUNT(*) FROM outbox WHERE status = 'pending'").fetchone()[0] > 0
    logs = wait_for(
        lambda: [
            e["message"]
            for e in call("/logs/filter", {"logs": {"flow_run_id": {"any_": [run["id"]]}}})
            if "cases opened" in e["message"]
        ],
        60,
        "the flow's log",
    )
    assert "2 cases opened" in logs[0]
    # the daily sweep fires through the API too: on a business day it queues the coordinator's digest
    assert by_name["daily-sweep"]["schedules"][0]["schedule"]["cron"] == "0 7 * * *"
    run = call(f"/deployments/{by_name['daily-sweep']['id']}/create_flow_run", {"parameters": {"on": "2026-11-27"}})
    state = wait_for(
        lambda: (s := call(f"/flow_runs/{run['id']}")["state"]["type"]) in ("COMPLETED", "FAILED", "CRASHED") and s,
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
            lambda: len(d := call("/deployments/filter", {}, url2)) == 3 and not any(x["paused"] for x in d) and d,
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
    # Prefect's database (and its -wal/-shm), its other files and the password: owner-only, like the workspace
    modes = {p.name: oct(p.stat().st_mode & 0o777) for p in (workspace / "prefect").rglob("*") if p.is_file()}
    assert "prefect.db" in modes and "api-auth" in modes and set(modes.values()) == {"0o600"}, modes


def _raw(url: str, path: str, method: str = "GET", headers: dict | None = None, body: bytes | None = None):
    """One request as a browser or a stranger would send it: (status, headers)."""
    req = urllib.request.Request(url + path, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, {k.lower(): v for k, v in r.headers.items()}
    except urllib.error.HTTPError as err:
        return err.code, {k.lower(): v for k, v in err.headers.items()}


@pytest.mark.regression("issue 12: anyone who reaches the scheduler can drive the engine")
def test_the_served_api_asks_for_its_password_and_takes_no_paths(served, conn, tmp_path):
    proc, url, workspace, log = served
    deps = wait_for(
        lambda: len(d := api(url, "/deployments/filter", {}, auth=read_api_auth(workspace))) == 3 and d,
        120,
        "deployments",
    )
    auth = read_api_auth(workspace)
    nightly = next(d for d in deps if d["name"] == "nightly-cycle")
    # the password: made on the first start, in the workspace, owner-only
    assert auth.startswith("engine:") and len(auth) > 40
    assert ((workspace / "prefect" / "api-auth").stat().st_mode & 0o777) == 0o600
    # no password, a wrong one: refused
    assert _raw(url, f"/deployments/{nightly['id']}")[0] == 401
    wrong = {"Authorization": "Basic " + base64.b64encode(b"engine:guess").decode()}
    assert _raw(url, f"/deployments/{nightly['id']}", headers=wrong)[0] == 401
    assert _raw(url, "/deployments/filter", "POST", {"content-type": "application/json"}, b"{}")[0] in (401, 403)
    right = {"Authorization": "Basic " + base64.b64encode(auth.encode()).decode()}
    assert _raw(url, f"/deployments/{nightly['id']}", headers=right)[0] == 200
    # the password alone does not change anything: Prefect's CSRF token is asked for too
    assert _raw(url, "/deployments/filter", "POST", {**right, "content-type": "application/json"}, b"{}")[0] == 403
    # a web page elsewhere gets no CORS permission (once `access-control-allow-origin: *`)
    evil = {"Origin": "http://evil.example", "Access-Control-Request-Method": "POST"}
    status, headers = _raw(url, "/deployments/filter", "OPTIONS", evil)
    assert headers.get("access-control-allow-origin") not in ("*", "http://evil.example"), (status, headers)
    status, headers = _raw(url, f"/deployments/{nightly['id']}", headers={**right, "Origin": "http://evil.example"})
    assert status == 200 and "access-control-allow-origin" not in headers
    own = url.removesuffix("/api")
    status, headers = _raw(url, "/deployments/filter", "OPTIONS", {**evil, "Origin": own})
    assert headers.get("access-control-allow-origin") == own
    # paths as parameters: refused by the API, and by the flow when a caller turns the check off
    other = tmp_path / "elsewhere"
    other.mkdir(mode=0o755)
    params = {"workspace": str(other), "config_dir": str(other), "rules_dir": str(other), "on": "2026-11-27"}
    with pytest.raises(urllib.error.HTTPError) as refused:
        api(url, f"/deployments/{nightly['id']}/create_flow_run", {"parameters": params}, auth=auth)
    assert refused.value.code == 409
    run = api(
        url,
        f"/deployments/{nightly['id']}/create_flow_run",
        {"parameters": params, "enforce_parameter_schema": False},
        auth=auth,
    )
    state = wait_for(
        lambda: (
            (s := api(url, f"/flow_runs/{run['id']}", auth=auth)["state"]["type"]) in ("COMPLETED", "FAILED", "CRASHED")
            and s
        ),
        180,
        "the flow run given paths",
    )
    assert state in ("FAILED", "CRASHED")  # Prefect refuses the parameters before the flow starts
    assert list(other.iterdir()) == [] and (other.stat().st_mode & 0o777) == 0o755
    assert conn.execute("SELECT COUNT(*) FROM cases").fetchone()[0] == 0
    # a failed run leaves no exception on disk, and the server holds no SMTP secret
    storage = workspace / "prefect" / "storage"
    assert not storage.exists() or [p for p in storage.rglob("*") if p.is_file()] == []
    server = int((workspace / "prefect" / "server.pid").read_text())
    environ = Path(f"/proc/{server}/environ").read_bytes().split(b"\0")
    assert b"PREFECT_SERVER_CSRF_PROTECTION_ENABLED=true" in environ
    assert not any(SMTP_SECRET.encode() in e or e.startswith(b"ENGINE_SMTP_") for e in environ)
    assert f"ENGINE_SMTP_PASSWORD={SMTP_SECRET}".encode() in Path(f"/proc/{proc.pid}/environ").read_bytes()


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


@pytest.mark.regression("issue 12: anyone who reaches the scheduler can drive the engine")
def test_the_password_is_made_once_owner_only_and_the_server_gets_no_secret(tmp_path, monkeypatch, cfg):
    from engine.support.errors import EngineError
    from engine.workflows.serve import api_auth, read_api_auth, secret_names, server_env

    ws = tmp_path / "ws"
    first = api_auth(ws)
    path = ws / "prefect" / "api-auth"
    assert first == read_api_auth(ws) and (path.stat().st_mode & 0o777) == 0o600
    path.chmod(0o644)
    assert api_auth(ws) == first and (path.stat().st_mode & 0o777) == 0o600  # reused, made owner-only again
    path.write_text("engine:short\n")
    assert api_auth(ws) != first  # a damaged file is replaced by a new password
    path.unlink()
    path.symlink_to(tmp_path / "elsewhere")
    with pytest.raises(EngineError, match="not a plain file"):
        api_auth(ws)
    assert not (tmp_path / "elsewhere").exists()
    assert secret_names(cfg) == {"ENGINE_SMTP_USER", "ENGINE_SMTP_PASSWORD"}
    for name, value in {"ENGINE_SMTP_PASSWORD": "pw", "ENGINE_SMTP_USER": "u", "OTHER_API_TOKEN": "t"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("PREFECT_API_AUTH_STRING", "engine:client-side")
    env = server_env(ws, "127.0.0.1", 4200, "engine:x", secret_names(cfg))
    assert not {"ENGINE_SMTP_PASSWORD", "ENGINE_SMTP_USER", "OTHER_API_TOKEN", "PREFECT_API_AUTH_STRING"} & set(env)
    assert (
        env["PREFECT_SERVER_API_AUTH_STRING"] == "engine:x" and env["PREFECT_SERVER_CSRF_PROTECTION_ENABLED"] == "true"
    )
    assert env["PREFECT_SERVER_CORS_ALLOWED_ORIGINS"] == "http://127.0.0.1:4200,http://localhost:4200"
    assert server_env(ws, "::1", 4300, "engine:x")["PREFECT_SERVER_CORS_ALLOWED_ORIGINS"] == "http://[::1]:4300"
