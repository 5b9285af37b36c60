"""Talking to a real local server from tests and the crash harness: a free loopback port, the
Prefect API with retries, waiting for a condition, an environment without the caller's Prefect settings."""

from __future__ import annotations

import json
import os
import socket
import time
import urllib.error
import urllib.request


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def api(url: str, path: str, body: dict | None = None):
    """One API call; a busy server answers 503 now and then (seen on 2 cores), so retry those."""
    for attempt in range(10):
        req = urllib.request.Request(
            url + path,
            data=json.dumps(body or {}).encode(),
            headers={"content-type": "application/json"},
            method="POST" if body is not None else "GET",
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return json.loads(r.read() or b"null")
        except urllib.error.HTTPError as err:
            if err.code != 503 or attempt == 9:
                raise
            time.sleep(1)


def wait_for(predicate, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            value = predicate()
            if value:
                return value
        except OSError:
            pass
        time.sleep(0.5)
    raise AssertionError(f"timed out waiting for {what}")


def proc_env() -> dict:
    return {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
