"""Operator passwords (argon2) and login tokens (signed, expiring), with an explicit clock."""

from __future__ import annotations

import pytest

from avatar_agent.operators.auth import (
    AuthError,
    TokenSigner,
    hash_password,
    valid_name,
    verify_password,
)

SECRET = b"s" * 32
NOW = 1_700_000_000.0


def test_password_hash_is_argon2_and_verifies_only_the_right_password() -> None:
    h = hash_password("correct horse battery")
    assert h.startswith("$argon2id$") and "correct" not in h
    assert verify_password(h, "correct horse battery")
    assert not verify_password(h, "correct horse battery ")
    assert not verify_password(h, "")
    assert not verify_password("not a hash", "correct horse battery")
    assert hash_password("correct horse battery") != h  # salted


@pytest.mark.parametrize("pw", ["short", "x" * 1025])
def test_password_length_limits(pw: str) -> None:
    with pytest.raises(ValueError):
        hash_password(pw)


def test_names() -> None:
    assert valid_name("alice") and valid_name("a.b-c_d@x")
    assert not valid_name("") and not valid_name("a b") and not valid_name("x" * 65)


def test_token_round_trip_and_expiry() -> None:
    s = TokenSigner(SECRET, ttl_s=60)
    token = s.issue("alice", NOW)
    claims = s.verify(token, NOW + 59.9)
    assert claims.name == "alice" and claims.expires == NOW + 60
    with pytest.raises(AuthError, match="expired"):
        s.verify(token, NOW + 60)


def test_forged_tokens_are_refused() -> None:
    s = TokenSigner(SECRET, ttl_s=60)
    token = s.issue("alice", NOW)
    payload, sig = token.split(".")
    other = TokenSigner(b"o" * 32, ttl_s=60).issue("alice", NOW)
    # a payload naming someone else, signed with the wrong key / someone else's signature
    bob_payload = s.issue("bob", NOW).split(".")[0]
    flipped = sig[:-1] + ("B" if sig.endswith("A") else "A")  # one character off
    for bad in (other, f"{bob_payload}.{sig}", f"{payload}.{flipped}", payload, "", ".",
                f"{payload}.", "é.é", "a" * 2000):
        with pytest.raises(AuthError):
            s.verify(bad, NOW)


def test_signer_needs_a_long_secret_and_positive_ttl() -> None:
    with pytest.raises(ValueError):
        TokenSigner(b"short", 60)
    with pytest.raises(ValueError):
        TokenSigner(SECRET, 0)
