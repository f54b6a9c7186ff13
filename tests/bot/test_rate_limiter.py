"""The per-user (and per re-run) rate limiter keeps only the keys still inside their minute."""

from __future__ import annotations

from bot.guards import RateLimiter


def test_a_key_quiet_for_a_minute_is_forgotten_so_memory_does_not_grow_with_every_user() -> None:
    limiter = RateLimiter(per_minute=2)
    for number in range(1000):
        assert limiter.allow(f"U{number}", now=0.0)
    assert len(limiter) == 1000
    assert limiter.allow("ULATE", now=61.0)
    assert len(limiter) == 1, "the thousand users quiet since second 0 are forgotten"


def test_forgetting_the_quiet_keeps_the_limit_of_those_still_asking() -> None:
    limiter = RateLimiter(per_minute=2)
    assert limiter.allow("UALICE", now=0.0) and limiter.allow("UALICE", now=30.0)
    assert not limiter.allow("UALICE", now=45.0)
    assert limiter.allow("UBOB", now=0.0)
    assert limiter.allow("UALICE", now=61.0)  # the click at 0 left her minute; UBOB is forgotten
    assert len(limiter) == 1
    assert not limiter.allow("UALICE", now=62.0), "30 and 61 are both within her last minute"
