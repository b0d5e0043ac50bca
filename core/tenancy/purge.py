"""Hard deletion of an archived account: the only path that removes tenant data.

Everything else archives. Purging is an operator action (CLI), refused unless the
account is archived first, and it keeps the account's audit chain: the record of
what happened outlives the data.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from pymongo.asynchronous.database import AsyncDatabase

from core.storage.port import StorageService, StorageUnavailable
from core.tenancy.audit import AuditLog
from core.tenancy.models import Status

# Kernel collections keyed by account_id besides the scoped models (branding images
# are one of those): tenancy, white-label (page versions, domains), AI usage and
# token quota counters.
ACCOUNT_COLLECTIONS = ("groups", "invitations", "landing_page_versions", "custom_domains",
                       "ai_usage", "broker_counters")
# Kernel collections whose document id is the account id.
ACCOUNT_ID_COLLECTIONS = ("landing_pages",)


class PurgeRefused(RuntimeError):
    pass


@dataclass
class PurgeReport:
    account_id: str
    deleted: dict[str, int] = field(default_factory=dict)
    memberships_removed: int = 0
    warnings: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"account_id": self.account_id, "deleted": self.deleted,
                "memberships_removed": self.memberships_removed, "warnings": self.warnings}


async def purge_account(
    db: AsyncDatabase[dict[str, Any]], account_id: str, *, scoped_collections: Iterable[str],
    actor: str, storage: StorageService | None = None,
) -> PurgeReport:
    """Delete everything of an archived account: records, settings, memberships and,
    with ``storage``, its stored files (first, so a storage failure leaves the
    account in place to purge again)."""
    account = await db["accounts"].find_one({"_id": account_id})
    if account is None:
        raise PurgeRefused(f"No account {account_id!r}.")
    if account.get("status") != Status.ARCHIVED.value:
        raise PurgeRefused("Archive the account first (DELETE /api/v1/accounts/{id}).")
    report = PurgeReport(account_id)
    prefix = f"{account['solution_id']}/{account_id}/"
    if storage is not None:
        report.deleted["stored_objects"] = await storage.delete_prefix(prefix)
    group_ids = [doc["_id"] async for doc in db["groups"].find({"account_id": account_id},
                                                               projection={"_id": 1})]
    for name in ACCOUNT_ID_COLLECTIONS:
        result = await db[name].delete_many({"_id": account_id})
        report.deleted[name] = result.deleted_count
    for name in sorted({*scoped_collections, *ACCOUNT_COLLECTIONS}):
        result = await db[name].delete_many({"account_id": account_id})
        report.deleted[name] = result.deleted_count
    layers = await db["settings_layers"].delete_many(
        {"target_id": {"$in": [account_id, *group_ids]}})
    report.deleted["settings_layers"] = layers.deleted_count
    users = await db["users"].update_many(
        {"memberships.account_id": account_id},
        {"$pull": {"memberships": {"account_id": account_id}}},
    )
    report.memberships_removed = users.modified_count
    await db["accounts"].delete_one({"_id": account_id})
    report.deleted["accounts"] = 1
    if storage is not None:
        # An upload URL signed before the archive may have been used meanwhile. The
        # records are gone by now, so a failure here is reported, not raised.
        try:
            report.deleted["stored_objects"] += await storage.delete_prefix(prefix)
        except StorageUnavailable:
            report.warnings.append(f"the final sweep of {prefix} failed; delete what is "
                                   "left there once storage answers")
    await AuditLog(db).record("account.purged", actor=actor, solution_id=account["solution_id"],
                              target=account_id, details=report.as_dict())
    return report
