"""Test support: a server spawner and whole calls in virtual time."""
