"""Ctrl-C always ends `engine serve` (engine/workflows/shutdown.py): a process that ignores the
signals and keeps serve's event loop waiting, shielded from cancellation as Prefect's runner waits
for its flow runs, is killed after the grace time; a loop stuck otherwise is ended after that.
Real processes and real signals, without Prefect."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

from engine.workflows.shutdown import descendants
from tests.helpers.paths import ROOT

# serve's shape: asyncio.run(main()), the watchdog chained to asyncio's Ctrl-C handler in the loop
SERVE = textwrap.dedent(
    """
    import asyncio, os, signal, subprocess, sys
    import anyio
    from engine.workflows.shutdown import Watchdog

    STUCK = [sys.executable, "-c", "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); "
             "signal.signal(signal.SIGTERM, signal.SIG_IGN); print('child', flush=True); time.sleep(600)"]

    def force():
        print("forced", flush=True)
        os._exit(130)

    async def main(mode):
        dog.chain_sigint()
        child = await anyio.open_process(STUCK)
        print(child.pid, flush=True)
        try:
            await anyio.sleep(600)
        finally:
            with anyio.CancelScope(shield=True):  # as Prefect waits for a flow run it stops
                child.terminate()
                if mode == "child":
                    await child.wait()
                else:
                    await anyio.sleep(600)

    dog = Watchdog(force, grace=1.0, force=2.0)
    try:
        asyncio.run(main(sys.argv[1]))
    except KeyboardInterrupt:
        print("stopped", flush=True)
    """
)


def _serve(tmp_path: Path, mode: str) -> tuple[subprocess.Popen, int]:
    script = tmp_path / "serve_like.py"
    script.write_text(SERVE)
    proc = subprocess.Popen(
        [sys.executable, str(script), mode],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    child = int(proc.stdout.readline())  # the stuck process is running
    time.sleep(0.3)
    return proc, child


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().split(")")[1].split()[0] == "Z"


def test_ctrl_c_kills_a_process_that_keeps_serve_waiting(tmp_path):
    proc, child = _serve(tmp_path, "child")
    started = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole group
    out, err = proc.communicate(timeout=30)
    waited = time.monotonic() - started
    assert proc.returncode == 0 and out.splitlines()[-1] == "stopped", (out, err)
    assert f"stopped: pid {child}" in err and "still running 1 s after Ctrl-C" in err
    assert _gone(child)
    assert 1.0 <= waited < 3.0  # after the grace time, without the last resort


def test_ctrl_c_ends_serve_when_killing_what_it_started_is_not_enough(tmp_path):
    proc, child = _serve(tmp_path, "loop")
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and out.splitlines()[-1] == "forced", (out, err)
    assert f"stopped: pid {child}" in err and "not finished 3 s after Ctrl-C; stopping now" in err
    assert _gone(child)


def test_without_ctrl_c_nothing_is_killed(tmp_path):
    proc, child = _serve(tmp_path, "child")
    time.sleep(2.5)  # past the grace time: the watchdog is armed by Ctrl-C only
    assert not _gone(child) and proc.poll() is None
    os.killpg(proc.pid, signal.SIGINT)
    proc.communicate(timeout=30)
    assert _gone(child)


def test_the_processes_below_serve_are_found_without_the_spared_one(tmp_path):
    sleeper = [sys.executable, "-c", "import time; time.sleep(60)"]
    kept = subprocess.Popen(sleeper)
    tree = subprocess.Popen(
        [sys.executable, "-c", f"import subprocess, time; subprocess.Popen({sleeper!r}); time.sleep(60)"]
    )
    try:
        deadline = time.monotonic() + 10
        while len(descendants(tree.pid)) < 1 and time.monotonic() < deadline:
            time.sleep(0.05)
        (grandchild,) = descendants(tree.pid)
        mine = descendants(os.getpid(), {kept.pid})
        assert tree.pid in mine and grandchild in mine and kept.pid not in mine
        assert not {tree.pid, grandchild, kept.pid} & set(descendants(os.getpid(), {tree.pid, kept.pid}))
    finally:
        for p in descendants(tree.pid) + [tree.pid, kept.pid]:
            os.kill(p, signal.SIGKILL)
        tree.wait()
        kept.wait()
