"""Login throttling, in virtual time (the throttle takes `now`)."""

from __future__ import annotations

from avatar_agent.operators.throttle import LoginThrottle


def test_backoff_doubles_then_locks_out_and_is_forgotten() -> None:
    t = LoginThrottle(free_tries=3, base_s=1.0, lock_after=6, lockout_s=900.0)
    key = ["name:alice"]
    now = 0.0
    waits = []
    for _ in range(6):
        assert t.wait_s(key, now) == 0.0
        t.failed(key, now)
        waits.append(t.wait_s(key, now))
        now += waits[-1]
    assert waits == [0.0, 0.0, 1.0, 2.0, 4.0, 900.0]
    assert t.wait_s(key, now - 1) > 0  # locked out for the whole window
    assert t.wait_s(key, now + 0.1) == 0.0 or t.wait_s(key, now) > 0
    assert t.wait_s(key, now - 900 + 900 + 0.001 + 900) == 0.0  # forgotten afterwards


def test_success_clears_the_name_not_the_client() -> None:
    t = LoginThrottle(free_tries=1, base_s=10.0)
    t.failed(["name:bob", "client:c"], 0.0)
    t.succeeded("name:bob")
    assert t.wait_s(["name:bob"], 1.0) == 0.0
    assert t.wait_s(["client:c"], 1.0) == 9.0


def test_memory_is_bounded() -> None:
    t = LoginThrottle(max_keys=100)
    for i in range(1000):
        t.failed([f"name:n{i}"], float(i))
    assert len(t._keys) == 100
