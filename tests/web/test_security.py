"""The rate limiters of the web surface (engine/web/security.py): what they keep stays bounded."""

from __future__ import annotations

from engine.web import security


def test_the_rate_limiters_memory_is_bounded_by_recent_keys(monkeypatch):
    """One request each from 5,000 addresses (or 5,000 junk tokens on /a/): an hour later, with every
    window empty, they are forgotten; a key still within its window is kept and still limited."""
    now = [1000.0]
    monkeypatch.setattr(security.clock, "monotonic", lambda: now[0])
    limiter = security.RateLimiter(2, 60.0)
    for i in range(5000):
        assert limiter.allow(f"2001:db8::{i:x}")
    assert limiter.allow("198.51.100.7") and limiter.allow("198.51.100.7")
    now[0] += 30
    assert not limiter.allow("198.51.100.7")  # within its window: still limited
    now[0] += 3600
    assert limiter.allow("203.0.113.9")
    assert set(limiter.hits) == {"203.0.113.9"}
