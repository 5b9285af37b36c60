"""The web surface's security policy, in this one place.

- Headers on every response: a Content-Security-Policy without inline script, no referrer, no
  framing, no MIME sniffing, and no caching (every page may carry case data).
- CSRF: every form carries a token derived (HMAC) from the workspace's web secret and the scope it
  belongs to (a session, or an agency's link); a POST without the right token, or from another
  origin, is refused with 403.
- Rate limits: a sliding window per key (an address, a link), in memory, on the one clock.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
from collections import defaultdict, deque
from pathlib import Path

from fastapi import HTTPException, Request
from starlette.middleware.base import BaseHTTPMiddleware

from engine.support import clock
from engine.support.private_files import private_dir, write_private

SECRET_FILE = "secret"  # WORKSPACE/web/secret: the key of CSRF tokens (0600)
CSP = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
HEADERS = {
    "Content-Security-Policy": CSP,
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Cross-Origin-Opener-Policy": "same-origin",
}


MAX_BODY = 64 * 1024  # bytes of a request body: the longest form (an outcome) is a few kB


class BodyLimit:
    """Refuse (413) a request body over MAX_BODY before anything reads it: the form parser would
    otherwise hold it in memory (or a temporary file) before any login, token or rate check."""

    def __init__(self, app, limit: int = MAX_BODY) -> None:
        self.app, self.limit = app, limit

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["method"] in ("GET", "HEAD", "OPTIONS"):
            return await self.app(scope, receive, send)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.limit):
            return await self._too_large(send)
        body, more = b"", True
        while more:  # a chunked body: read up to the limit, then hand it on whole
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            body += message.get("body", b"")
            if len(body) > self.limit:
                return await self._too_large(send)
            more = message.get("more_body", False)
        given = False

        async def replay():
            nonlocal given
            if not given:
                given = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        return await self.app(scope, replay, send)

    async def _too_large(self, send) -> None:
        text = "送信された内容が大きすぎます。".encode()
        headers = [(k.lower().encode(), v.encode()) for k, v in HEADERS.items()]
        headers += [(b"content-type", b"text/plain; charset=utf-8"), (b"content-length", str(len(text)).encode())]
        await send({"type": "http.response.start", "status": 413, "headers": headers})
        await send({"type": "http.response.body", "body": text})


class SecurityHeaders(BaseHTTPMiddleware):
    async def dispatch(self, request: Request, call_next):
        response = await call_next(request)
        for name, value in HEADERS.items():
            response.headers.setdefault(name, value)
        return response


def web_secret(workspace: Path) -> bytes:
    """The workspace's web secret: made on first use, kept 0600 in WORKSPACE/web/."""
    folder = Path(workspace) / "web"
    private_dir(folder)
    path = folder / SECRET_FILE
    if path.is_symlink() or (path.exists() and not path.is_file()):
        raise RuntimeError(f"{path} is not a plain file; remove it")
    if not path.exists() or len(path.read_text(encoding="ascii", errors="replace").strip()) < 43:
        write_private(path, secrets.token_urlsafe(32) + "\n")
    return path.read_text(encoding="ascii").strip().encode()


def csrf_token(secret: bytes, scope: str) -> str:
    """The CSRF token of forms in `scope` (e.g. "session:<id hash>" or "link:<token hash>")."""
    return hmac.new(secret, f"csrf:{scope}".encode(), hashlib.sha256).hexdigest()


def check_csrf(request: Request, secret: bytes, scope: str, given: str | None) -> None:
    """403 unless `given` is the token of `scope` and the request comes from our own origin.
    Our pages' `Referrer-Policy: no-referrer` makes a browser send `Origin: null` with a form of the
    same site (Fetch standard), so "null" tells nothing: then the browser's Sec-Fetch-Site decides,
    and the token, bound to its session or link, is checked in every case."""
    origin = request.headers.get("origin")
    site = request.headers.get("sec-fetch-site")
    if origin == "null":
        origin = None
    if (origin and origin != f"{request.url.scheme}://{request.url.netloc}") or site not in (None, "same-origin"):
        raise HTTPException(status_code=403, detail="別のサイトからの送信は受け付けません。")
    if not given or not hmac.compare_digest(given, csrf_token(secret, scope)):
        raise HTTPException(
            status_code=403, detail="フォームの有効期限が切れたか、不正な送信です。ページを開き直してください。"
        )


class RateLimiter:
    """At most `limit` hits per `window` seconds for each key (in memory, per process)."""

    def __init__(self, limit: int, window: float) -> None:
        self.limit, self.window = limit, window
        self.hits: dict[str, deque[float]] = defaultdict(deque)
        self._swept = clock.monotonic()
        self._lock = threading.Lock()  # routes run in a thread pool

    def allow(self, key: str) -> bool:
        with self._lock:
            return self._allow(key, clock.monotonic())

    def _allow(self, key: str, now: float) -> bool:
        if now - self._swept >= self.window:  # once a window: drop every key whose window emptied, so
            self._sweep(now)  # memory stays bounded by the keys seen in the last two windows
        seen = self.hits[key]
        while seen and seen[0] <= now - self.window:
            seen.popleft()
        if len(seen) >= self.limit:
            return False
        seen.append(now)
        return True

    def _sweep(self, now: float) -> None:
        self._swept = now
        for key in [k for k, seen in self.hits.items() if not seen or seen[-1] <= now - self.window]:
            del self.hits[key]

    def check(self, key: str) -> None:
        """429 when `key` went over its limit."""
        if not self.allow(key):
            raise HTTPException(status_code=429, detail="アクセスが集中しています。しばらくしてからお試しください。")
