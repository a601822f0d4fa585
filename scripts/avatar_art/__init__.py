"""Procedural art of the default avatar, drawn by scripts/build_avatar.py."""
