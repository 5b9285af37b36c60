"""The real web app under uvicorn on a free loopback port, for the browser, load and screenshot
tests: in a thread of this process (it shares the pinned clock: clock.pin moves it too) or as the
`engine web` command in a subprocess (its own process and clock, ENGINE_NOW). Both are ready when
/healthz answers, polled to a deadline; both stop when the `with` block ends."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.helpers.paths import CONFIG_DIR, RULES_DIR

READY_SECONDS = 30.0  # a cold `engine web` imports FastAPI, the rules and the configuration


def _loopback_socket() -> socket.socket:
    """A listening socket on a free loopback port, handed to uvicorn (no race for the port)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    return sock


def wait_ready(base: str, alive, what: str) -> None:
    """Poll BASE/healthz until it answers 200; fail at the deadline or as soon as the server died."""
    deadline = time.monotonic() + READY_SECONDS
    while time.monotonic() < deadline:
        if not alive():
            raise AssertionError(f"{what} stopped before it answered /healthz")
        try:
            if httpx.get(f"{base}/healthz", timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.02)  # the poll's pace, not a wait for something to happen
    raise AssertionError(f"{what} did not answer {base}/healthz within {READY_SECONDS:.0f} s")


@contextmanager
def served_in_thread(workspace: Path) -> Iterator[str]:
    """create_app(workspace) under uvicorn in a thread, as `engine web` runs it; yields the base URL."""
    import uvicorn

    from engine.web.app import create_app

    app = create_app(workspace, RULES_DIR, CONFIG_DIR)
    sock = _loopback_socket()
    base = f"http://127.0.0.1:{sock.getsockname()[1]}"
    config = uvicorn.Config(app, log_level="warning", access_log=False, server_header=False)
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, name="uvicorn", daemon=True)
    thread.start()
    try:
        wait_ready(base, thread.is_alive, "the web app (uvicorn thread)")
        yield base
    finally:
        server.should_exit = True
        thread.join(15)
        sock.close()


@dataclass
class Served:
    base: str
    output: str = ""  # what the server printed, once it stopped (a traceback would be here)


@contextmanager
def served_by_engine_web(workspace: Path, now: str) -> Iterator[Served]:
    """`engine web --workspace W --port P` in its own process, its clock pinned to `now` (ENGINE_NOW)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    engine = shutil.which("engine", path=str(Path(sys.executable).parent)) or "engine"
    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")} | {"ENGINE_NOW": now}
    args = [engine, "web", "--workspace", str(workspace), "--rules", str(RULES_DIR), "--config", str(CONFIG_DIR)]
    proc = subprocess.Popen(
        [*args, "--port", str(port)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    served = Served(f"http://127.0.0.1:{port}")
    try:
        wait_ready(served.base, lambda: proc.poll() is None, "engine web")
        yield served
    finally:
        proc.terminate()
        try:
            out, _ = proc.communicate(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            out, _ = proc.communicate()
        served.output = out
