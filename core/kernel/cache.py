"""Per-process caches with a time-to-live, for reads that many requests make.

Whoever writes evicts what it changed, so the writing instance sees its change at
once and other instances within the TTL (tenancy directory, settings layers,
white-label look-ups; see docs/decisions.md).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Hashable
from typing import Any, Generic, TypeVar

__all__ = ["CACHE_SECONDS", "MISSING", "TTLCache"]

#: How stale a cached tenancy read (account, Solution, host, settings layer) may be
#: on another instance.
CACHE_SECONDS = 2.0

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class TTLCache(Generic[K, V]):
    """A bounded dict whose entries expire ``ttl`` seconds after they were put."""

    def __init__(self, ttl: float, *, max_items: int = 50_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.ttl = ttl
        self.max_items = max_items
        self.clock = clock
        self._items: dict[K, tuple[float, V]] = {}

    def get(self, key: K) -> V:
        """The value, or ``MISSING`` when absent or expired."""
        hit = self._items.get(key)
        if hit is None or hit[0] < self.clock():
            return MISSING  # type: ignore[no-any-return]
        return hit[1]

    def put(self, key: K, value: V) -> None:
        if len(self._items) >= self.max_items:
            self._items.clear()
        self._items[key] = (self.clock() + self.ttl, value)

    def pop(self, key: K) -> None:
        self._items.pop(key, None)

    def clear(self) -> None:
        self._items.clear()
