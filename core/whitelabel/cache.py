"""In-process caches of the public side: look-ups with a TTL, rendered pages in an LRU.

Rendered pages are keyed by (account, published version, plugin set) and never
go stale by themselves: a new publish creates a new version. What can go
stale is *which* version is published; every instance re-reads that pointer
from MongoDB once its short TTL has passed, so a publish on one instance is
served by every instance within the TTL (see docs/decisions.md).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Generic, TypeVar

from core.kernel.cache import MISSING

__all__ = ["LRU", "RenderedPage"]

K = TypeVar("K", bound=Hashable)
V = TypeVar("V")

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
