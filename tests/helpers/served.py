"""Talking to a real local server from tests and the crash harness: a free loopback port, the
Prefect API with retries, waiting for a condition, an environment without the caller's Prefect settings."""

from __future__ import annotations

import base64
import json
import os
import socket
import time
import urllib.error
import urllib.request
import uuid


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _csrf(url: str, headers: dict) -> dict:
    """Prefect's CSRF headers for a state-changing call (a token for a fresh client id); none when the server has CSRF off."""
    client = uuid.uuid4().hex
    req = urllib.request.Request(f"{url}/csrf-token?client={client}", headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            token = json.loads(r.read())["token"]
    except urllib.error.HTTPError as err:
        if err.code == 422:  # CSRF protection is off
            return {}
        raise
    return {"Prefect-Csrf-Token": token, "Prefect-Csrf-Client": client}


def api(url: str, path: str, body: dict | None = None, *, auth: str | None = None):
    """One API call, with the server's auth string (`engine serve` keeps it in WORKSPACE/prefect/api-auth)
    if given; a busy server answers 503 now and then (seen on 2 cores), so retry those."""
    headers = {"content-type": "application/json"}
    if auth is not None:
        headers["Authorization"] = "Basic " + base64.b64encode(auth.encode()).decode()
    for attempt in range(10):
        if body is not None and auth is not None:
            headers.update(_csrf(url, headers))
        req = urllib.request.Request(
            url + path,
            data=json.dumps(body or {}).encode(),
            headers=headers,
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
