"""AI usage metered per account in MongoDB (one counter document per account and UTC day).

The gateway calls :meth:`MongoUsageMeter.record` after every call that reached
the provider; an atomic ``$inc`` upsert keeps the counts right across
instances without a read-modify-write.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.errors import DuplicateKeyError

__all__ = ["COLLECTION", "MongoUsageMeter"]

COLLECTION = "ai_usage"


class MongoUsageMeter:
    """Implements :class:`core.ai.usage.UsageMeter` over the ``ai_usage`` collection."""

    def __init__(self, database: Any) -> None:
        self.collection = database[COLLECTION]

    async def create_indexes(self) -> None:
        await self.collection.create_index([("account_id", ASCENDING), ("day", DESCENDING)])

    async def record(
        self, *, account_id: str, requests: int, prompt_tokens: int, completion_tokens: int
    ) -> None:
        day = datetime.now(UTC).strftime("%Y-%m-%d")
        update = {
            "$inc": {
                "requests": requests,
                "prompt_tokens": prompt_tokens,
                "completion_tokens": completion_tokens,
            },
            "$setOnInsert": {"account_id": account_id, "day": day},
        }
        try:
            await self.collection.update_one({"_id": f"{account_id}:{day}"}, update, upsert=True)
        except DuplicateKeyError:
            # Two first calls of the day raced on the upsert; the document exists now.
            await self.collection.update_one({"_id": f"{account_id}:{day}"}, update, upsert=True)

    async def days(self, account_id: str, *, limit: int = 31) -> list[dict[str, Any]]:
        """The account's most recent days, newest first."""
        docs = await self.collection.find(
            {"account_id": account_id},
            projection={"_id": 0, "day": 1, "requests": 1, "prompt_tokens": 1,
                        "completion_tokens": 1},
        ).sort([("day", DESCENDING)]).limit(limit).to_list()
        return [
            {"day": d["day"], "requests": int(d.get("requests", 0)),
             "prompt_tokens": int(d.get("prompt_tokens", 0)),
             "completion_tokens": int(d.get("completion_tokens", 0))}
            for d in docs
        ]
