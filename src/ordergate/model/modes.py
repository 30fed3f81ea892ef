"""The trading mode: which new risk the gateway may take."""

from __future__ import annotations

import enum


class Mode(enum.StrEnum):
    """Ordered from loosest to tightest. Automatic transitions only tighten (invariant 6)."""

    ACTIVE = "ACTIVE"
    REDUCE_ONLY = "REDUCE_ONLY"
    HALTED = "HALTED"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def tighter(self, other: Mode) -> Mode:
        """The tighter of two modes."""
        return self if self.rank >= other.rank else other


_RANK = {Mode.ACTIVE: 0, Mode.REDUCE_ONLY: 1, Mode.HALTED: 2}
