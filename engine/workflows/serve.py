"""`engine serve`: a real local Prefect server (UI on localhost) plus the three scheduled deployments
(nightly cycle, daily sweep, agenda dispatch; see schedules.py).

Prefect's ephemeral mode cannot schedule, so a server process is started, its database kept in
<workspace>/prefect/ (owner-only, like the rest of the workspace), and stopped on exit.
Set PREFECT_API_URL to use a server you run yourself (e.g. on PostgreSQL) instead.
"""

from __future__ import annotations

import ipaddress
import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from engine.support import clock
from engine.support.errors import EngineError
from engine.support.private_files import private_dir

QUIET = {"DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}


def is_loopback(host: str) -> bool:
    """Only this machine can reach a server bound to `host` (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name or an address we cannot vouch for


def prefect_env(workspace: Path) -> dict[str, str]:
    """Environment for the server and for this process: Prefect's home inside the workspace."""
    home = Path(workspace).resolve() / "prefect"
    private_dir(home)
    return {**QUIET, "PREFECT_HOME": str(home)}


def wait_healthy(api_url: str, process: subprocess.Popen, timeout: float = 90) -> None:
    deadline = clock.monotonic() + timeout
    while clock.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(f"the Prefect server exited with code {process.returncode}; see its output above")
        try:
            with urllib.request.urlopen(f"{api_url}/health", timeout=2) as r:
                if r.status == 200:
                    return
        except OSError:
            time.sleep(0.5)
    raise RuntimeError(f"the Prefect server did not answer on {api_url} within {timeout:.0f} s")


def stop_orphan(workspace: Path) -> bool:
    """Stop a server left running by an earlier `engine serve` that was killed hard (SIGKILL)."""
    pidfile = Path(prefect_env(workspace)["PREFECT_HOME"]) / "server.pid"
    if not pidfile.exists():
        return False
    try:
        pid = int(pidfile.read_text())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (ValueError, OSError):
        pidfile.unlink(missing_ok=True)
        return False
    pidfile.unlink(missing_ok=True)
    if b"prefect" in cmdline and b"server" in cmdline:
        try:
            os.killpg(pid, signal.SIGTERM)
        except ProcessLookupError:
            return False
        return True
    return False


def start_server(workspace: Path, host: str, port: int) -> tuple[subprocess.Popen, str]:
    if stop_orphan(workspace):
        print("stopped a Prefect server left running by an earlier `engine serve`", flush=True)
        time.sleep(2)
    env = {**os.environ, **prefect_env(workspace)}
    env.pop("PREFECT_API_URL", None)
    process = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(port)],
        env=env,
        start_new_session=True,  # its own process group, so stopping it stops its children
    )
    (Path(env["PREFECT_HOME"]) / "server.pid").write_text(str(process.pid))  # for cleanup after a hard crash
    api_url = f"http://{host}:{port}/api"
    try:
        wait_healthy(api_url, process)
    except BaseException:
        stop_server(process)
        raise
    return process, api_url


def stop_server(process: subprocess.Popen) -> None:
    if process.poll() is None:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


class AlreadyServing(EngineError, RuntimeError):
    pass


def _cmdline(pid: int) -> list[bytes]:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return []


def claim_workspace(workspace: Path) -> Path:
    """One `engine serve` per workspace: a second one would run every schedule twice."""
    pidfile = Path(prefect_env(workspace)["PREFECT_HOME"]) / "serve.pid"
    if pidfile.exists():
        try:
            pid = int(pidfile.read_text())
        except ValueError:
            pid = 0
        if pid and pid != os.getpid() and b"serve" in _cmdline(pid):
            raise AlreadyServing(
                f"another `engine serve` (pid {pid}) is already serving {workspace}; stop it first (Ctrl-C, or kill {pid})"
            )
    pidfile.write_text(str(os.getpid()))
    return pidfile


def serve(workspace: Path, rules_dir: Path, config_dir: Path, *, host: str = "127.0.0.1", port: int = 4200) -> None:
    """Start the server (unless PREFECT_API_URL is set) and serve the deployments until Ctrl-C."""
    process = None
    os.environ.update(prefect_env(workspace))
    pidfile = claim_workspace(workspace)
    if not os.environ.get("PREFECT_API_URL"):
        process, api_url = start_server(workspace, host, port)
        os.environ["PREFECT_API_URL"] = api_url
        print(f"Prefect server: http://{host}:{port} (UI), database in {os.environ['PREFECT_HOME']}", flush=True)
    try:
        from prefect import serve as prefect_serve

        from engine.workflows.schedules import deployments

        prefect_serve(*deployments(workspace, rules_dir, config_dir))
    finally:
        if process is not None:
            stop_server(process)
        pidfile.unlink(missing_ok=True)
