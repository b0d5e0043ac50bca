"""MongoDB adapter of the white-label features (the only module here that builds filters).

Landing pages are per-account kernel records, not scoped resources: one
document per account holds the draft and the published pointer, and every
published version is an immutable snapshot in its own collection. Custom
domains are one document per (account, domain) claim; an active claim also
sets ``active_domain``, which a unique index keeps to one account per domain.
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from pymongo import ASCENDING, DESCENDING, ReturnDocument
from pymongo.asynchronous.database import AsyncDatabase
from pymongo.errors import DuplicateKeyError

from core.tenancy.cascade import CascadeStore, Layer
from core.tenancy.directory import doc_to
from core.tenancy.models import Account, Solution

__all__ = ["DomainTaken", "WhiteLabelStore"]

Database = AsyncDatabase[dict[str, Any]]
NAMESPACE = "branding"


class DomainTaken(Exception):
    """Another account already serves this domain."""


def _version_id(account_id: str, version: int) -> str:
    return f"{account_id}:{version:010d}"


class WhiteLabelStore:
    def __init__(self, database: Database, cascade: CascadeStore) -> None:
        self.db = database
        self.pages = database["landing_pages"]
        self.versions = database["landing_page_versions"]
        self.domains = database["custom_domains"]
        self.cascade = cascade

    async def create_indexes(self) -> None:
        await self.versions.create_index([("account_id", ASCENDING), ("version", DESCENDING)])
        await self.domains.create_index([("account_id", ASCENDING)])
        await self.domains.create_index([("domain", ASCENDING)])
        await self.domains.create_index([("active_domain", ASCENDING)], unique=True, sparse=True)

    # -- tenancy look-ups (public resolution) -------------------------------------

    async def solution_by_slug(self, slug: str) -> Solution | None:
        doc = await self.db["solutions"].find_one({"slug": slug})
        return doc_to(Solution, doc) if doc else None

    async def solution_by_domain(self, domain: str) -> Solution | None:
        doc = await self.db["solutions"].find_one({"domain": domain})
        return doc_to(Solution, doc) if doc else None

    async def solution_by_id(self, solution_id: str) -> Solution | None:
        doc = await self.db["solutions"].find_one({"_id": solution_id})
        return doc_to(Solution, doc) if doc else None

    async def account_by_slug(self, solution_id: str, slug: str) -> Account | None:
        doc = await self.db["accounts"].find_one({"solution_id": solution_id, "slug": slug})
        return doc_to(Account, doc) if doc else None

    async def account_by_id(self, account_id: str) -> Account | None:
        doc = await self.db["accounts"].find_one({"_id": account_id})
        return doc_to(Account, doc) if doc else None

    async def solution_domains(self) -> list[str]:
        docs = await self.db["solutions"].find(
            {"domain": {"$type": "string"}}, projection={"domain": 1}
        ).to_list()
        return [doc["domain"] for doc in docs if doc.get("domain")]

    # -- branding (the cascade's "branding" namespace) --------------------------

    async def branding_layers(self, solution_id: str, account_id: str) -> list[Layer]:
        """Read fresh: white-label keeps its own short caches of what it builds from
        these (so staleness does not add up), and lock checks must see new locks."""
        return await self.cascade.layers(
            NAMESPACE, {"solution": solution_id, "account": account_id}, fresh=True
        )

    async def replace_account_branding(self, account_id: str, values: Mapping[str, Any]) -> None:
        """PUT semantics: the account's layer becomes exactly ``values``."""
        await self.cascade.write("account", account_id, NAMESPACE, values, replace=True)

    # -- landing pages ---------------------------------------------------------

    async def page(self, account_id: str) -> dict[str, Any] | None:
        return await self.pages.find_one({"_id": account_id})

    async def published_version(self, account_id: str) -> int | None:
        doc = await self.pages.find_one({"_id": account_id}, projection={"published_version": 1})
        value = (doc or {}).get("published_version")
        return int(value) if value is not None else None

    async def save_draft(self, account_id: str, solution_id: str, sections: list[dict[str, Any]],
                         *, actor: str, at: datetime, base_revision: int | None) -> int | None:
        """Store the draft; returns its new revision, or None when ``base_revision`` is stale."""
        query: dict[str, Any] = {"_id": account_id}
        if base_revision:
            query["draft.revision"] = base_revision
        elif base_revision == 0:  # "create": only when there is no draft yet
            query["draft"] = {"$exists": False}
        update = {
            "$set": {"solution_id": solution_id, "draft.sections": sections,
                     "draft.updated_at": at, "draft.updated_by": actor},
            "$inc": {"draft.revision": 1},
        }
        try:
            doc = await self.pages.find_one_and_update(
                query, update, upsert=not base_revision,
                return_document=ReturnDocument.AFTER,
            )
        except DuplicateKeyError:  # upsert raced with an existing page
            return None
        if doc is None:
            return None
        return int(doc["draft"]["revision"])

    async def next_version(self, account_id: str, solution_id: str) -> int:
        # Increment an existing document (atomic everywhere); racing upserts on
        # SecantusDB can apply the increment yet return no document.
        for _ in range(3):
            doc = await self.pages.find_one_and_update(
                {"_id": account_id}, {"$inc": {"last_version": 1}},
                return_document=ReturnDocument.AFTER,
            )
            if doc is not None:
                return int(doc["last_version"])
            with contextlib.suppress(DuplicateKeyError):
                await self.pages.insert_one({"_id": account_id, "solution_id": solution_id})
        raise RuntimeError("could not allocate a landing-page version")

    async def insert_version(self, account_id: str, version: int, snapshot: dict[str, Any]
                             ) -> None:
        await self.versions.insert_one({
            "_id": _version_id(account_id, version), "account_id": account_id,
            "version": version, **snapshot,
        })

    async def set_published(self, account_id: str, version: int, at: datetime) -> None:
        # Versions only grow, so the highest one is the published one, even when
        # two publishes race.
        await self.pages.update_one(
            {"_id": account_id},
            {"$max": {"published_version": version}, "$set": {"published_at": at}},
        )

    async def version(self, account_id: str, version: int) -> dict[str, Any] | None:
        return await self.versions.find_one({"_id": _version_id(account_id, version)})

    async def list_versions(self, account_id: str, *, before: int | None, limit: int
                            ) -> list[dict[str, Any]]:
        query: dict[str, Any] = {"account_id": account_id}
        if before is not None:
            query["version"] = {"$lt": before}
        return await self.versions.find(
            query, projection={"sections": 0, "tokens": 0}
        ).sort([("version", DESCENDING)]).limit(limit).to_list()

    # -- custom domains --------------------------------------------------------

    async def account_domains(self, account_id: str) -> list[dict[str, Any]]:
        docs = await self.domains.find({"account_id": account_id}).to_list()
        return sorted(docs, key=lambda d: d["domain"])

    async def account_domain(self, account_id: str, domain: str) -> dict[str, Any] | None:
        return await self.domains.find_one({"_id": f"{account_id}:{domain}"})

    async def domain_active_elsewhere(self, domain: str, account_id: str) -> bool:
        doc = await self.domains.find_one({"active_domain": domain}, projection={"account_id": 1})
        return doc is not None and doc["account_id"] != account_id

    async def add_domain(self, doc: dict[str, Any]) -> bool:
        try:
            await self.domains.insert_one({"_id": f"{doc['account_id']}:{doc['domain']}", **doc})
        except DuplicateKeyError:
            return False
        return True

    async def remove_domain(self, account_id: str, domain: str) -> bool:
        result = await self.domains.delete_one({"_id": f"{account_id}:{domain}"})
        return result.deleted_count == 1

    async def record_check(self, account_id: str, domain: str, *, at: datetime,
                           error: str | None) -> None:
        await self.domains.update_one(
            {"_id": f"{account_id}:{domain}"},
            {"$set": {"last_checked_at": at, "last_error": error}},
        )

    async def activate_domain(self, account_id: str, domain: str, at: datetime) -> None:
        try:
            await self.domains.update_one(
                {"_id": f"{account_id}:{domain}"},
                {"$set": {"status": "active", "active_domain": domain, "verified_at": at,
                          "last_checked_at": at, "last_error": None}},
            )
        except DuplicateKeyError:
            raise DomainTaken(domain) from None

    async def active_domain(self, domain: str) -> dict[str, Any] | None:
        return await self.domains.find_one({"active_domain": domain})
