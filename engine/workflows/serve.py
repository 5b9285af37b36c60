"""`engine serve`: a real local Prefect server (UI on localhost) plus the three scheduled deployments
(nightly cycle, daily sweep, agenda dispatch; see schedules.py).

Prefect's ephemeral mode cannot schedule, so a server process is started, its database kept in
<workspace>/prefect/ (owner-only, like the rest of the workspace), and stopped on exit.
Set PREFECT_API_URL to use a server you run yourself (e.g. on PostgreSQL) instead.

The server's API asks for credentials: the auth string in <workspace>/prefect/api-auth (0600),
made on the first start and reused after; serve and the flow runs it starts send it
(PREFECT_API_AUTH_STRING). Only the server's own origin may call it from a browser (CORS), and
Prefect's CSRF protection is on. The server's environment carries no SMTP secret. The flows get
the workspace, rules and configuration from serve's environment (settings.bind), never from a
flow run's parameters.
"""

from __future__ import annotations

import asyncio
import ipaddress
import os
import re
import secrets
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Iterable
from pathlib import Path

from engine.support import clock
from engine.support.errors import EngineError
from engine.support.private_files import private_dir, write_private
from engine.support.settings import bind
from engine.workflows.shutdown import Watchdog, sweep

QUIET = {"DO_NOT_TRACK": "1", "PREFECT_SERVER_ANALYTICS_ENABLED": "false"}
NO_RESULTS = {"PREFECT_RESULTS_PERSIST_BY_DEFAULT": "false"}  # the flows return counts; nothing is kept on disk
AUTH_FILE = "api-auth"
AUTH_USER = "engine"
# never handed to the Prefect server: the variables mail.yaml names, and anything named like a secret
SECRET_LIKE = re.compile(r"PASSWORD|PASSWD|SECRET|TOKEN|CREDENTIAL|API_KEY", re.IGNORECASE)


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
    return {**QUIET, **NO_RESULTS, "PREFECT_HOME": str(home)}


def _home(workspace: Path) -> Path:
    return Path(prefect_env(workspace)["PREFECT_HOME"])


class AuthFileRefused(EngineError):
    """WORKSPACE/prefect/api-auth is a link or a folder: it is never written through."""

    exit_code = 2


def read_api_auth(workspace: Path) -> str:
    """The API's auth string (`engine:<token>`) for a client of the workspace's server; FileNotFoundError before the first serve."""
    return (_home(workspace) / AUTH_FILE).read_text(encoding="utf-8").strip()


def api_auth(workspace: Path) -> str:
    """The API's auth string, made on the first start (owner-only file) and reused after."""
    path = _home(workspace) / AUTH_FILE
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise AuthFileRefused(f"{path} is not a plain file; remove it (`engine serve` makes a new password)")
    try:
        auth = read_api_auth(workspace)
    except (FileNotFoundError, UnicodeDecodeError):
        auth = ""
    if not re.fullmatch(rf"{AUTH_USER}:[A-Za-z0-9_-]{{32,}}", auth):
        auth = f"{AUTH_USER}:{secrets.token_urlsafe(32)}"
        write_private(path, auth + "\n")
    os.chmod(path, 0o600)
    return auth


def secret_names(config) -> set[str]:
    """The environment variables mail.yaml names for the SMTP login (`*_env` fields)."""
    return {v for k, v in config.mail.smtp.model_dump().items() if k.endswith("_env") and isinstance(v, str) and v}


def origin(host: str, port: int) -> str:
    """http://host:port (an IPv6 address in brackets)."""
    return f"http://{f'[{host}]' if ':' in host else host}:{port}"


def own_origins(host: str, port: int) -> str:
    """The origins of the server's own UI (CORS allows these only)."""
    names = {host} | ({"127.0.0.1", "localhost"} if host in ("127.0.0.1", "localhost") else set())
    return ",".join(origin(h, port) for h in sorted(names))


def server_env(workspace: Path, host: str, port: int, auth: str, hidden: Iterable[str] = ()) -> dict[str, str]:
    """The Prefect server's environment: this one without the SMTP secrets (nor anything named like a
    secret), with the API's auth string, CORS limited to its own origin and CSRF protection on."""
    hidden = set(hidden) | {"PREFECT_API_URL", "PREFECT_API_AUTH_STRING"}
    env = {
        k: v
        for k, v in os.environ.items()
        if k not in hidden and (k.startswith("PREFECT_SERVER_") or not SECRET_LIKE.search(k))
    }
    env.update(prefect_env(workspace))
    env.update(
        {
            "PREFECT_SERVER_API_AUTH_STRING": auth,
            "PREFECT_SERVER_CORS_ALLOWED_ORIGINS": own_origins(host, port),
            "PREFECT_SERVER_CSRF_PROTECTION_ENABLED": "true",
        }
    )
    return env


def harden(home: Path) -> None:
    """Prefect's files owner-only (0600, folders 0700), also those an older engine left readable,
    and no result an older engine kept (a failed run's pickled exception in storage/)."""
    storage = home / "storage"
    for path in sorted(home.rglob("*")):
        if path.is_symlink():
            continue
        if path.is_file() and storage in path.parents:
            path.unlink()
        else:
            os.chmod(path, 0o700 if path.is_dir() else 0o600)


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
    pidfile = _home(workspace) / "server.pid"
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


def start_server(
    workspace: Path, host: str, port: int, auth: str, hidden: Iterable[str] = ()
) -> tuple[subprocess.Popen, str]:
    if stop_orphan(workspace):
        print("stopped a Prefect server left running by an earlier `engine serve`", flush=True)
        time.sleep(2)
    env = server_env(workspace, host, port, auth, hidden)
    harden(Path(env["PREFECT_HOME"]))
    process = subprocess.Popen(
        [sys.executable, "-m", "prefect", "server", "start", "--host", host, "--port", str(port)],
        env=env,
        start_new_session=True,  # its own process group, so stopping it stops its children
        umask=0o077,  # its database, -wal and -shm files owner-only
    )
    write_private(Path(env["PREFECT_HOME"]) / "server.pid", str(process.pid))  # for cleanup after a hard crash
    api_url = f"{origin(host, port)}/api"
    try:
        wait_healthy(api_url, process)
    except BaseException:
        stop_server(process)
        raise
    return process, api_url


_STOPPING = threading.Lock()  # serve's own exit and the Ctrl-C watchdog may stop the server at once


def stop_server(process: subprocess.Popen) -> None:
    """SIGTERM to the server's process group, SIGKILL after 20 s; safe to call twice, also at once."""
    with _STOPPING:
        if process.poll() is not None:
            return
        try:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        except ProcessLookupError:
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
    pidfile = _home(workspace) / "serve.pid"
    if pidfile.exists():
        try:
            pid = int(pidfile.read_text())
        except ValueError:
            pid = 0
        if pid and pid != os.getpid() and b"serve" in _cmdline(pid):
            raise AlreadyServing(
                f"another `engine serve` (pid {pid}) is already serving {workspace}; stop it first (Ctrl-C, or kill {pid})"
            )
    write_private(pidfile, str(os.getpid()))
    return pidfile


def serve(
    workspace: Path,
    rules_dir: Path,
    config_dir: Path,
    *,
    host: str = "127.0.0.1",
    port: int = 4200,
    hidden: Iterable[str] = (),
) -> None:
    """Start the server (unless PREFECT_API_URL is set) and serve the deployments until Ctrl-C.
    `hidden`: environment variables the server must not get (the SMTP login's, see secret_names)."""
    process = None
    os.umask(0o077)  # what this process and its flow runs create is owner-only
    os.environ.update(prefect_env(workspace))
    os.environ.update(bind(workspace, rules_dir, config_dir))  # the flows read these, never a caller's paths
    pidfile = claim_workspace(workspace)

    def spare() -> set[int]:  # the server, stopped by stop_server, never swept
        return {process.pid} if process is not None else set()

    def cleanup() -> None:  # nothing serve started is left running, and the workspace is free again
        sweep(os.getpid(), spare())
        if process is not None:
            stop_server(process)
        pidfile.unlink(missing_ok=True)

    def force() -> None:  # the watchdog's last step (engine/workflows/shutdown.py)
        try:
            cleanup()
        finally:
            os._exit(130)

    watchdog = Watchdog(force, spare)
    try:
        if not os.environ.get("PREFECT_API_URL"):
            auth = api_auth(workspace)
            process, api_url = start_server(workspace, host, port, auth, hidden)
            os.environ["PREFECT_API_URL"] = api_url
            os.environ["PREFECT_API_AUTH_STRING"] = auth
            print(
                f"Prefect server: {origin(host, port)} (UI), database in {os.environ['PREFECT_HOME']}; "
                f"its password is in {_home(workspace) / AUTH_FILE}",
                flush=True,
            )
        run_deployments(watchdog)
    finally:
        watchdog.done()
        cleanup()


def run_deployments(watchdog: Watchdog) -> None:
    """Prefect's `serve` of the three deployments until Ctrl-C, with the watchdog armed by the
    first Ctrl-C (in the event loop, where asyncio's own Ctrl-C handler is in place to chain)."""
    from prefect import aserve
    from prefect.exceptions import TerminationSignal

    from engine.workflows.schedules import deployments

    served = deployments()  # outside the loop: Prefect builds them asynchronously within one

    async def main() -> None:
        watchdog.chain_sigint()
        await aserve(*served)

    previous = signal.getsignal(signal.SIGINT)
    try:
        asyncio.run(main())
    except (KeyboardInterrupt, TerminationSignal) as exc:
        print(f"engine serve: {type(exc).__name__}, stopped", flush=True)
    finally:
        signal.signal(signal.SIGINT, previous)
