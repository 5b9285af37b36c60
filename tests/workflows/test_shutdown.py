"""Ctrl-C always ends `engine serve` (engine/workflows/shutdown.py).

`engine serve` runs in a subprocess as users run it, with Prefect's `aserve` replaced by one that
gets stuck as a runner could: waiting, shielded from cancellation, for a process that ignores the
signals ("child"), or stuck whatever happens ("loop"). Real processes and real signals."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from engine.workflows.shutdown import Proc, Watchdog, descendants, kill
from tests.helpers.paths import CONFIG_DIR, ROOT, RULES_DIR

STUCK = (
    "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); "
    "signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(600)"
)
SERVE = textwrap.dedent(
    """
    import signal, sys
    from pathlib import Path
    import anyio, prefect
    import engine.workflows.schedules
    from engine.workflows import shutdown
    from engine.workflows.serve import serve

    mode, workspace, rules, config = sys.argv[1:]
    shutdown.GRACE_S, shutdown.FORCE_S = 1.0, 2.0
    shutdown.Watchdog.__init__.__kwdefaults__.update(grace=1.0, force=2.0)
    engine.workflows.schedules.deployments = lambda: []

    async def stuck_aserve(*deployments):
        child = await anyio.open_process([sys.executable, "-c", STUCK])
        print(child.pid, flush=True)
        try:
            await anyio.sleep(600)
        finally:
            with anyio.CancelScope(shield=True):  # as Prefect's runner waits for a flow run it stops
                child.terminate()
                if mode != "leave":  # "leave": the runner ends at once, its flow run still running
                    await (child.wait() if mode == "child" else anyio.sleep(600))

    prefect.aserve = stuck_aserve
    serve(Path(workspace), Path(rules), Path(config))
    print("finished", signal.getsignal(signal.SIGINT) is signal.default_int_handler, flush=True)
    """
)


@pytest.fixture
def start(tmp_path):
    started = []

    def run(mode: str, sigint=None) -> tuple[subprocess.Popen, int]:
        script = tmp_path / "serve_stuck.py"
        script.write_text(f"STUCK = {STUCK!r}\n" + SERVE)
        env = {**os.environ, "PYTHONPATH": str(ROOT), "PREFECT_API_URL": "http://127.0.0.1:9/api"}  # no server
        proc = subprocess.Popen(
            [sys.executable, str(script), mode, str(tmp_path / "ws"), str(RULES_DIR), str(CONFIG_DIR)],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            start_new_session=True,
            preexec_fn=(lambda: signal.signal(signal.SIGINT, sigint)) if sigint else None,
        )
        child = int(proc.stdout.readline())  # the stuck process is running
        started.append((proc, child))
        time.sleep(0.3)
        return proc, child

    yield run
    for proc, child in started:  # never leave a stuck process behind, whatever the test found
        for pid in (child, proc.pid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait()


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"


def test_ctrl_c_kills_a_process_that_keeps_serve_waiting(start, tmp_path):
    proc, child = start("child")
    assert (tmp_path / "ws" / "prefect" / "serve.pid").exists()
    started = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)  # as a terminal's Ctrl-C: the whole group
    out, err = proc.communicate(timeout=30)
    waited = time.monotonic() - started
    assert proc.returncode == 0 and "KeyboardInterrupt, stopped" in out, (out, err)
    assert out.splitlines()[-1] == "finished True"  # and the default Ctrl-C handler is back
    assert f"stopped: pid {child}" in err and "still running 1 s after Ctrl-C" in err
    assert "Current thread" in err and "await aserve(*served)" in err  # the threads' and tasks' stacks
    assert f"stopped: pid {child} ({sys.executable} -c import signal" in err  # named by its command
    assert _gone(child) and not (tmp_path / "ws" / "prefect" / "serve.pid").exists()
    assert 1.0 <= waited < 3.0  # after the grace time, without the last resort


def test_ctrl_c_ends_serve_when_killing_what_it_started_is_not_enough(start, tmp_path):
    proc, child = start("loop")
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 130 and "finished" not in out, (out, err)
    assert f"stopped: pid {child}" in err and "not finished 3 s after Ctrl-C; stopping now" in err
    assert _gone(child) and not (tmp_path / "ws" / "prefect" / "serve.pid").exists()


def test_nothing_serve_started_is_left_running_after_it_finished(start, tmp_path):
    proc, child = start("leave")
    os.killpg(proc.pid, signal.SIGINT)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0 and out.splitlines()[-1] == "finished True", (out, err)
    assert "after Ctrl-C" not in err  # finished within the grace time ...
    assert _gone(child)  # ... and what it left was stopped on the way out


def test_without_ctrl_c_nothing_is_killed(start):
    proc, child = start("child")
    time.sleep(2.5)  # past the grace time: the watchdog is armed by Ctrl-C only
    assert not _gone(child) and proc.poll() is None


def test_an_ignored_ctrl_c_stays_ignored(start):
    proc, child = start("child", sigint=signal.SIG_IGN)  # a job started in the background
    os.killpg(proc.pid, signal.SIGINT)
    time.sleep(2.5)
    assert proc.poll() is None and not _gone(child)


def test_ctrl_c_after_serve_finished_kills_nothing(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    forced = []
    try:
        dog = Watchdog(lambda: forced.append(1), grace=0.3, force=0.3)
        dog.done()
        dog.arm()
        time.sleep(1.0)
        assert sleeper.poll() is None and dog.killed == [] and forced == []
    finally:
        sleeper.kill()
        sleeper.wait()


SPARED = textwrap.dedent(
    """
    import json, os, subprocess, sys, time
    from engine.workflows.shutdown import Watchdog, descendants

    sleep = [sys.executable, "-c", "import time; time.sleep(60)"]
    spared = subprocess.Popen([sys.executable, "-c", f"import subprocess, time; subprocess.Popen({sleep!r}); time.sleep(60)"])
    other = subprocess.Popen(sleep)
    deadline = time.monotonic() + 10
    while not descendants(spared.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    (below,) = descendants(spared.pid)
    dog = Watchdog(lambda: None, lambda: {spared.pid}, grace=0.2, force=30, out=open(os.devnull, "w"))
    dog.arm()
    other.wait(timeout=10)
    alive = [p.pid for p in descendants(os.getpid())]
    print(json.dumps({"killed": dog.killed, "other": other.pid, "spared": spared.pid, "below": below.pid, "alive": alive}))
    for pid in (below.pid, spared.pid):
        os.kill(pid, 9)
    """
)


def test_the_spared_process_and_what_runs_below_it_survive(tmp_path):
    """In a process of its own: the test suite's process has other children (left by other tests)."""
    import json

    script = tmp_path / "spared.py"
    script.write_text(SPARED)
    done = subprocess.run(
        [sys.executable, str(script)], cwd=ROOT, env={**os.environ, "PYTHONPATH": str(ROOT)}, capture_output=True,
        text=True, timeout=60,
    )  # fmt: skip
    seen = json.loads(done.stdout.splitlines()[-1])
    assert seen["killed"] == [seen["other"]]
    assert seen["spared"] in seen["alive"] and seen["below"] in seen["alive"] and seen["other"] not in seen["alive"]


def test_processes_are_read_whatever_their_name_and_killed_only_while_they_are_the_same(tmp_path):
    odd = subprocess.Popen(
        [sys.executable, "-c", "import time; open('/proc/self/comm', 'w').write('a) b (c'); time.sleep(60)"]
    )
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and Path(f"/proc/{odd.pid}/comm").read_text().strip() != "a) b (c":
            time.sleep(0.05)
        (proc,) = [p for p in descendants(os.getpid()) if p.pid == odd.pid]
        assert proc.parent == os.getpid() and not proc.zombie
        assert not kill(Proc(proc.pid, proc.parent, proc.started + 1, False))  # another process under that pid
        assert odd.poll() is None
        assert kill(proc) and odd.wait(timeout=10) == -signal.SIGKILL
        assert odd.pid not in [p.pid for p in descendants(os.getpid())]  # reaped: nothing left to find
    finally:
        if odd.poll() is None:
            odd.kill()
            odd.wait()
