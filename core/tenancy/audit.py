"""Append-only, hash-chained audit log (one chain per account).

Each event stores the hash of the previous event of its chain; changing,
removing or reordering a stored event breaks the chain at that event, which
``verify`` reports. A unique (chain, seq) index makes concurrent writers retry
instead of forking the chain.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from core.tenancy.models import Principal, new_id, utcnow

GENESIS = "0" * 64
log = logging.getLogger("synergyhub.audit")


def chain_for(*, account_id: str | None = None, solution_id: str | None = None) -> str:
    if account_id:
        return account_id
    if solution_id:
        return f"solution:{solution_id}"
    return "platform"


def event_hash(event: dict[str, Any]) -> str:
    """SHA-256 over the canonical JSON of everything but the hash itself."""
    body = {k: v for k, v in event.items() if k not in ("hash", "_id")}
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=_json_default)
    return hashlib.sha256(canonical.encode()).hexdigest()


def _json_default(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat(timespec="microseconds")
    return str(value)


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    checked: int
    broken_at_seq: int | None = None
    broken_event_id: str | None = None
    reason: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "checked": self.checked,
            "broken_at_seq": self.broken_at_seq,
            "broken_event_id": self.broken_event_id,
            "reason": self.reason,
        }


Observer = Callable[[dict[str, Any]], Awaitable[None]]


class AuditLog:
    def __init__(self, database: AsyncDatabase[dict[str, Any]]) -> None:
        self.events = database["audit_events"]
        self.observers: list[Observer] = []
        # Last (seq, hash) per chain written by this process: one round trip per event.
        # A stale head collides on the unique (chain, seq) index and is re-read.
        self._heads: dict[str, tuple[int, str]] = {}

    async def create_indexes(self) -> None:
        await self.events.create_index([("chain", ASCENDING), ("seq", ASCENDING)], unique=True)
        await self.events.create_index([("chain", ASCENDING), ("seq", DESCENDING)])

    async def record(
        self,
        action: str,
        *,
        actor: Principal | str | None,
        account_id: str | None = None,
        solution_id: str | None = None,
        target: str | None = None,
        details: dict[str, Any] | None = None,
    ) -> dict[str, Any]:
        """Append an event; never store secrets or tokens in ``details``."""
        chain = chain_for(account_id=account_id, solution_id=solution_id)
        actor_id = actor.uid if isinstance(actor, Principal) else actor
        # Every event caused during impersonation names the impersonator.
        impersonator = actor.impersonator if isinstance(actor, Principal) else None
        for _ in range(20):
            head = self._heads.get(chain)
            if head is None:
                last = await self.events.find(
                    {"chain": chain}, projection={"seq": 1, "hash": 1}
                ).sort([("seq", DESCENDING)]).limit(1).to_list()
                head = (last[0]["seq"], last[0]["hash"]) if last else (0, GENESIS)
            seq = head[0] + 1
            now = utcnow()
            event: dict[str, Any] = {
                "_id": new_id(),
                "chain": chain,
                "seq": seq,
                "at": now.replace(microsecond=now.microsecond // 1000 * 1000),
                "action": action,
                "actor": actor_id,
                "impersonator": impersonator,
                "account_id": account_id,
                "solution_id": solution_id,
                "target": target,
                "details": details or {},
                "prev_hash": head[1],
            }
            event["hash"] = event_hash(event)
            try:
                await self.events.insert_one(event)
            except DuplicateKeyError:
                # Another writer (or instance) advanced the chain: re-read its head.
                self._heads.pop(chain, None)
                continue
            self._heads[chain] = (seq, event["hash"])
            for observer in self.observers:
                try:
                    await observer(event)
                except Exception:
                    log.exception("audit observer failed")
            return event
        raise RuntimeError("audit chain contention did not settle")

    async def iter_chain(
        self, chain: str, *, after_seq: int = 0, limit: int | None = None
    ) -> AsyncIterator[dict[str, Any]]:
        cursor = self.events.find({"chain": chain, "seq": {"$gt": after_seq}}).sort(
            [("seq", ASCENDING)]
        )
        if limit:
            cursor = cursor.limit(limit)
        async for event in cursor:
            yield event

    async def verify(self, chain: str) -> VerifyResult:
        """Walk the chain; report the first event whose hash or link is wrong."""
        previous = GENESIS
        expected_seq = 1
        checked = 0
        async for event in self.iter_chain(chain):
            checked += 1
            reason = None
            if event.get("seq") != expected_seq:
                reason = f"sequence gap: expected {expected_seq}"
            elif event.get("prev_hash") != previous:
                reason = "link to the previous event does not match"
            elif event_hash(_as_stored(event)) != event.get("hash"):
                reason = "event content does not match its hash"
            if reason:
                return VerifyResult(False, checked, event.get("seq"), str(event["_id"]), reason)
            previous = event["hash"]
            expected_seq += 1
        return VerifyResult(True, checked)


def _as_stored(event: dict[str, Any]) -> dict[str, Any]:
    """Mongo returns datetimes without the tz we hashed with; normalise to UTC."""
    from datetime import UTC

    at = event.get("at")
    if isinstance(at, datetime) and at.tzinfo is None:
        event = {**event, "at": at.replace(tzinfo=UTC)}
    return event
