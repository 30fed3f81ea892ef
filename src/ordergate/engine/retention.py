"""What the engine remembers about the past, and for how long.

Finished orders (late fills and cancel confirmations still find them), fill ids (a redelivered
fill is ignored) and decided intents (a retried intent gets its first answer, never a second
order) are kept for two trading days: today's and the previous day's. Each day roll drops the
generation before that, so a gateway that runs for weeks keeps a bounded state and snapshots
stay the size of about two days of trading.
"""

from __future__ import annotations

from collections.abc import Hashable, Iterable
from typing import Generic, TypeVar

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class RetainedMap(Generic[K, V]):
    __slots__ = ("current", "previous")

    def __init__(self, current: dict[K, V] | None = None,
                 previous: dict[K, V] | None = None) -> None:
        self.current: dict[K, V] = current if current is not None else {}
        self.previous: dict[K, V] = previous if previous is not None else {}

    def get(self, key: K) -> V | None:
        value = self.current.get(key)
        return value if value is not None else self.previous.get(key)

    def __contains__(self, key: object) -> bool:
        return key in self.current or key in self.previous

    def __setitem__(self, key: K, value: V) -> None:
        self.current[key] = value

    def __len__(self) -> int:
        return len(self.current) + len(self.previous)

    def rotate(self) -> dict[K, V]:
        """A day rolled: yesterday's entries are forgotten, today's become yesterday's.
        Returns the entries forgotten (indexes over them drop them too)."""
        forgotten = self.previous
        self.previous, self.current = self.current, {}
        return forgotten


class RetainedSet(Generic[K]):
    __slots__ = ("current", "previous")

    def __init__(self, current: Iterable[K] = (), previous: Iterable[K] = ()) -> None:
        self.current: set[K] = set(current)
        self.previous: set[K] = set(previous)

    def add(self, key: K) -> None:
        self.current.add(key)

    def __contains__(self, key: object) -> bool:
        return key in self.current or key in self.previous

    def __len__(self) -> int:
        return len(self.current) + len(self.previous)

    def rotate(self) -> None:
        self.previous, self.current = self.current, set()
