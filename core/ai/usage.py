"""Usage metering contract for AI calls.

The gateway reports what each successful call consumed; quotas and billing
(the Mongo-backed meter) live elsewhere and plug in through this protocol.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, runtime_checkable

__all__ = ["InMemoryUsageMeter", "UsageMeter", "UsageRecord"]


@runtime_checkable
class UsageMeter(Protocol):
    """Receives one record per AI call that reached the provider and answered."""

    async def record(
        self, *, account_id: str, requests: int, prompt_tokens: int, completion_tokens: int
    ) -> None: ...


@dataclass(frozen=True, slots=True)
class UsageRecord:
    account_id: str
    requests: int
    prompt_tokens: int
    completion_tokens: int


class InMemoryUsageMeter:
    """A meter for unit tests and single-process demos (no persistence)."""

    def __init__(self) -> None:
        self.records: list[UsageRecord] = []

    async def record(
        self, *, account_id: str, requests: int, prompt_tokens: int, completion_tokens: int
    ) -> None:
        self.records.append(UsageRecord(account_id, requests, prompt_tokens, completion_tokens))

    def totals(self, account_id: str) -> UsageRecord:
        """Sum of every record for one account."""
        mine = [r for r in self.records if r.account_id == account_id]
        return UsageRecord(
            account_id,
            sum(r.requests for r in mine),
            sum(r.prompt_tokens for r in mine),
            sum(r.completion_tokens for r in mine),
        )
