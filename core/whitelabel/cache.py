"""In-process caches of the public side: look-ups with a TTL, rendered pages in an LRU.

Rendered pages are keyed by (account, published version, plugin set) and never
go stale by themselves: a new publish creates a new version. What can go
stale is *which* version is published; every instance re-reads that pointer
from MongoDB once its short TTL has passed, so a publish on one instance is
served by every instance within the TTL (see docs/decisions.md).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

__all__ = ["LRU", "MISSING", "RenderedPage", "TTLCache"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


class TTLCache(Generic[K, V]):
    """A bounded dict whose entries expire ``ttl`` seconds after they were put."""

    def __init__(self, ttl: float, *, max_items: int = 10_000,
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


class LRU(Generic[K, V]):
    def __init__(self, max_items: int = 1024) -> None:
        self.max_items = max_items
        self._items: OrderedDict[K, V] = OrderedDict()

    def get(self, key: K) -> V:
        value = self._items.get(key, MISSING)
        if value is not MISSING:
            self._items.move_to_end(key)
        return value  # type: ignore[no-any-return]

    def put(self, key: K, value: V) -> None:
        self._items[key] = value
        self._items.move_to_end(key)
        while len(self._items) > self.max_items:
            self._items.popitem(last=False)

    def clear(self) -> None:
        self._items.clear()

    def __len__(self) -> int:
        return len(self._items)


@dataclass(frozen=True)
class RenderedPage:
    """A rendered HTML document split where the per-response CSP nonce goes.

    The page is rendered once with a random placeholder nonce; each response
    joins the parts with a fresh nonce, so cached pages never reuse one.
    """

    parts: tuple[bytes, ...]
    frame_ancestors: str
    version: int

    @classmethod
    def from_html(cls, html: str, placeholder: str, *, frame_ancestors: str, version: int
                  ) -> RenderedPage:
        return cls(tuple(part.encode("utf-8") for part in html.split(placeholder)),
                   frame_ancestors, version)

    def body(self, nonce: str) -> bytes:
        return nonce.encode("ascii").join(self.parts)
