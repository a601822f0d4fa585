"""The customer's levels, mildest first; every stage names them the same way."""

from __future__ import annotations

from typing import Literal, get_args

Level = Literal["calm", "dissatisfied", "furious"]

LEVELS: tuple[Level, ...] = get_args(Level)
CALM, DISSATISFIED, FURIOUS = LEVELS
