"""Fixed-window counters in MongoDB: rate limits and quotas that hold across instances.

One document per (account, window): ``total`` counts the account's mints and
``users.<hash>`` each user's, so one atomic ``find_one_and_update`` answers both
the per-account and the per-user question for that window. Documents carry
``expires_at`` (a TTL index removes them after the window). A request that is
refused gives its increment back, so a user hammering past their own limit does
not use up the account's budget for everybody else.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import math
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from pymongo import ReturnDocument
from pymongo.asynchronous.collection import AsyncCollection
from pymongo.errors import DuplicateKeyError

__all__ = ["COLLECTION", "Limit", "Verdict", "WindowCounters"]

COLLECTION = "broker_counters"
#: Counter documents outlive their window a little, so a clock skew between
#: instances cannot reset a window early.
EXPIRY_GRACE_SECONDS = 300


@dataclass(frozen=True, slots=True)
class Limit:
    """``account`` and ``user`` mints allowed per ``seconds`` window (0 = none allowed)."""

    name: str
    seconds: int
    account: int
    user: int


@dataclass(frozen=True, slots=True)
class Verdict:
    """The outcome of one :meth:`WindowCounters.take`."""

    allowed: bool
    limit: Limit | None = None
    which: str | None = None  # "account" or "user" when refused
    retry_after: int = 0
    at: float = 0.0  # the instant counted, so a give-back hits the same windows


def _user_field(uid: str) -> str:
    """A field name for the uid: never a ``$`` or ``.`` from the outside in a key."""
    return "u" + hashlib.sha256(uid.encode()).hexdigest()[:24]


class WindowCounters:
    """Counts mints per account and per user in fixed windows (several at once)."""

    def __init__(self, collection: AsyncCollection[dict[str, Any]]) -> None:
        self.collection = collection

    async def create_indexes(self) -> None:
        await self.collection.create_index("expires_at", expireAfterSeconds=0)

    async def _bump(
        self, limit: Limit, account_id: str, ufield: str, now: float, step: int
    ) -> tuple[Limit, int, int, float]:
        start = math.floor(now / limit.seconds) * limit.seconds
        end = start + limit.seconds
        doc_id = f"{limit.name}:{account_id}:{int(start)}"
        update: dict[str, Any] = {"$inc": {"total": step, f"users.{ufield}": step}}
        projection = {"total": 1, f"users.{ufield}": 1}
        # No upsert: concurrent upserting findAndModify on SecantusDB can apply the
        # increment yet return no document. The first request of a window creates
        # the document (a duplicate-key race there is harmless), then every request
        # increments an existing one, which is atomic and returns the new values.
        doc: dict[str, Any] | None = None
        for _ in range(3):
            doc = await self.collection.find_one_and_update(
                {"_id": doc_id}, update, return_document=ReturnDocument.AFTER,
                projection=projection,
            )
            if doc is not None or step < 0:
                break
            with contextlib.suppress(DuplicateKeyError):
                await self.collection.insert_one({
                    "_id": doc_id, "total": 0, "users": {}, "account_id": account_id,
                    "expires_at": datetime.fromtimestamp(end + EXPIRY_GRACE_SECONDS, UTC),
                })
        doc = doc or {}
        users = doc.get("users") or {}
        return limit, int(doc.get("total", 0)), int(users.get(ufield, 0)), end

    async def take(self, limits: list[Limit], *, account_id: str, uid: str) -> Verdict:
        """Count one mint in every window; refused (and given back) if any limit is passed."""
        now = time.time()
        ufield = _user_field(uid)
        counted = await asyncio.gather(
            *(self._bump(limit, account_id, ufield, now, 1) for limit in limits)
        )
        refusal: Verdict | None = None
        for limit, total, mine, end in counted:
            which = "user" if mine > limit.user else "account" if total > limit.account else None
            if which is None:
                continue
            retry = max(1, math.ceil(end - now))
            if refusal is None or retry > refusal.retry_after:
                refusal = Verdict(False, limit, which, retry)
        if refusal is None:
            return Verdict(True, at=now)
        await self._give_back(limits, account_id, ufield, now)
        return refusal

    async def give_back(self, limits: list[Limit], verdict: Verdict, *, account_id: str,
                        uid: str) -> None:
        """Undo one allowed :meth:`take` that produced nothing (the provider failed)."""
        await self._give_back(limits, account_id, _user_field(uid), verdict.at)

    async def _give_back(self, limits: list[Limit], account_id: str, ufield: str,
                         now: float) -> None:
        await asyncio.gather(
            *(self._bump(limit, account_id, ufield, now, -1) for limit in limits)
        )

    async def usage(self, limits: list[Limit], *, account_id: str, uid: str
                    ) -> dict[str, dict[str, int]]:
        """Current counts per window (for the settings page and tests)."""
        now = time.time()
        ufield = _user_field(uid)
        out: dict[str, dict[str, int]] = {}
        for limit in limits:
            start = math.floor(now / limit.seconds) * limit.seconds
            doc = await self.collection.find_one(
                {"_id": f"{limit.name}:{account_id}:{int(start)}"}
            ) or {}
            out[limit.name] = {
                "account": int(doc.get("total", 0)),
                "user": int((doc.get("users") or {}).get(ufield, 0)),
            }
        return out

