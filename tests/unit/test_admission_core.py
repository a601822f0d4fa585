"""Admission rules in virtual time: join tokens, rate limits, slot refusals."""

from __future__ import annotations

import pytest

from avatar_agent.core.admission import (
    JoinTokens,
    Limits,
    RateLimiter,
    Slots,
    budget_for,
    call_capacity,
    refusal,
)

LIMITS = Limits(max_calls=20, max_half_open=10, max_calls_per_client=4,
                max_half_open_per_client=2)


def test_join_tokens_are_single_use_and_expire() -> None:
    tokens = JoinTokens(ttl_s=60)
    a, b = tokens.issue(0.0), tokens.issue(0.0)
    assert a != b
    assert tokens.consume(a, 1.0)
    assert not tokens.consume(a, 1.0)  # spent
    assert not tokens.consume(b, 60.0)  # expired
    assert not tokens.consume("made-up", 1.0)


def test_outstanding_tokens_are_bounded() -> None:
    tokens = JoinTokens(ttl_s=60, max_open=10)
    first = tokens.issue(0.0)
    for _ in range(100):
        tokens.issue(0.0)
    assert len(tokens._open) == 10
    assert not tokens.consume(first, 1.0)


def test_rate_limiter_allows_a_burst_then_the_rate() -> None:
    limit = RateLimiter(per_min=60, burst=5)  # one a second
    assert [limit.allow("c", 0.0) for _ in range(7)] == [True] * 5 + [False] * 2
    assert limit.allow("other", 0.0)  # another client has its own bucket
    assert not limit.allow("c", 0.5)
    assert limit.allow("c", 1.6)


def test_one_client_cannot_take_the_slots_of_others() -> None:
    # the client's own limits first (429), then the server's (503)
    assert refusal(Slots(2, 2, 2, 2), LIMITS) == (
        429, "too many calls from this client are still connecting")
    assert refusal(Slots(4, 0, 4, 0), LIMITS) is not None
    assert refusal(Slots(4, 2, 2, 2), LIMITS) is not None
    assert refusal(Slots(4, 2, 0, 0), LIMITS) is None  # another client gets in
    assert refusal(Slots(20, 0, 0, 0), LIMITS) == (
        503, "too many calls in progress, try again later")
    # calls that never connect may take only their share of the server
    assert refusal(Slots(10, 10, 0, 0), LIMITS) == (
        503, "too many calls are connecting, try again shortly")


def test_call_capacity_from_the_cpu_budget() -> None:
    # 2 cores at 85 % over 0.8 of a core per call: 2 calls, not 20
    assert call_capacity(20, 0.8, 2, 0.85) == 2
    assert call_capacity(20, 0.8, 8, 0.85) == 8
    assert call_capacity(3, 0.8, 8, 0.85) == 3  # max_calls still caps it
    assert call_capacity(20, 4.0, 2, 0.85) == 1  # never below one call
    assert call_capacity(20, 1.0, 1, 1.0) == 1  # an exact fit counts (no float shortfall)
    assert call_capacity(20, 0.35, 2, 0.7) == 4
    assert call_capacity(20, None, 2, 0.85) == 20  # no budget: max_calls alone


def test_a_budget_from_the_calls_that_held_admits_exactly_them() -> None:
    assert budget_for(3, 2, 0.85) == 0.4857  # three held on two cores
    for held in range(1, 41):
        for cores in (1, 2, 3, 8, 64):
            for utilisation in (0.5, 0.85, 1.0):
                budget = budget_for(held, cores, utilisation)
                assert call_capacity(1000, budget, cores, utilisation) == held
    with pytest.raises(ValueError):
        budget_for(0, 2, 0.85)
