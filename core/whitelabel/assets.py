"""Branding images (logos, favicons) that account admins upload, served at ``/media/<id>``.

The flow is the documents' one: declare type and size, PUT the bytes to a
signed URL, complete (the object exists with that size and type, and its bytes
sniff as that type). Raster images only (PNG, JPEG, WebP, ICO; never SVG, a
script carrier). The app serves them itself, so a landing page's
``img-src 'self'`` covers them on every host; an image id never names other
bytes, so instances cache them (re-checking the record after a short TTL, so
a deleted image goes away).
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any, Final

from pymongo import ASCENDING, DESCENDING

from core.kernel.errors import Conflict, NotFound, Unprocessable
from core.storage.policy import BRANDING_IMAGES, object_name
from core.storage.port import ObjectMissing, SignedUrl, StorageService
from core.storage.uploads import UploadRefused, confirm_upload
from core.tenancy.audit import AuditLog
from core.tenancy.models import AccountContext, Role, utcnow
from core.tenancy.service import require_rank

__all__ = ["COLLECTION", "MEDIA_PREFIX", "BrandingAssets", "MediaFile", "asset_id_of"]

COLLECTION: Final = "branding_assets"
MEDIA_PREFIX: Final = "/media/"
USE: Final = "branding"
MAX_ASSETS_PER_ACCOUNT: Final = 50
_ASSET_ID = re.compile(r"^[0-9a-f]{32}$")


def asset_id_of(url: str) -> str | None:
    """The asset id a ``/media/<id>`` URL names, or None for any other URL."""
    if not url.startswith(MEDIA_PREFIX):
        return None
    candidate = url[len(MEDIA_PREFIX):]
    return candidate if _ASSET_ID.match(candidate) else None


def public(doc: dict[str, Any]) -> dict[str, Any]:
    """What the API shows of an asset (never the object name)."""
    return {"id": doc["_id"], "url": f"{MEDIA_PREFIX}{doc['_id']}", "status": doc["status"],
            "content_type": doc["content_type"], "size": doc["size"],
            "created_at": doc["created_at"].isoformat()}


@dataclass(frozen=True)
class MediaFile:
    """What ``GET /media/<id>`` sends."""

    body: bytes
    content_type: str
    etag: str
    account_id: str
    solution_id: str


class BrandingAssets:
    """The use cases over the ``branding_assets`` collection and the storage port."""

    def __init__(self, database: Any, audit: AuditLog) -> None:
        self.collection = database[COLLECTION]
        self.audit = audit

    async def create_indexes(self) -> None:
        await self.collection.create_index([("account_id", ASCENDING),
                                            ("created_at", DESCENDING)])

    async def _mine(self, ctx: AccountContext, asset_id: str) -> dict[str, Any]:
        doc = await self.collection.find_one({"_id": asset_id[:64], "account_id": ctx.account.id})
        if doc is None:
            raise NotFound("No such branding image.")
        return dict(doc)

    async def start(self, ctx: AccountContext, storage: StorageService, *, content_type: str,
                    size: int) -> tuple[dict[str, Any], SignedUrl]:
        """A pending asset and the signed PUT for its bytes (ACCOUNT_ADMIN)."""
        require_rank(ctx.principal, ctx, Role.ACCOUNT_ADMIN)
        refused = BRANDING_IMAGES.refusal(content_type, size)
        if refused is not None:
            slug, detail = refused
            raise Unprocessable(detail, type_slug=slug)
        await self._drop_abandoned(ctx, storage)
        if await self.collection.count_documents({"account_id": ctx.account.id}) \
                >= MAX_ASSETS_PER_ACCOUNT:
            raise Conflict(f"An account keeps at most {MAX_ASSETS_PER_ACCOUNT} branding "
                           "images; delete unused ones first.", type_slug="too-many-assets")
        asset_id = secrets.token_hex(16)
        doc: dict[str, Any] = {
            "_id": asset_id, "account_id": ctx.account.id, "solution_id": ctx.solution.id,
            "status": "pending", "content_type": content_type, "size": size,
            "object_name": object_name(solution_id=ctx.solution.id, account_id=ctx.account.id,
                                       use=USE, resource_id=asset_id),
            "generation": None, "created_by": ctx.principal.uid, "created_at": utcnow(),
        }
        await self.collection.insert_one(doc)
        signed = await storage.signed_upload(doc["object_name"], content_type=content_type,
                                             size=size, ttl=BRANDING_IMAGES.upload_ttl)
        return doc, signed

    async def _drop_abandoned(self, ctx: AccountContext, storage: StorageService) -> None:
        """Uploads started and never completed within their URL's lifetime."""
        cutoff = utcnow() - BRANDING_IMAGES.upload_ttl * 2
        async for doc in self.collection.find({"account_id": ctx.account.id,
                                               "status": "pending",
                                               "created_at": {"$lt": cutoff}}).limit(20):
            await self.collection.delete_one({"_id": doc["_id"], "status": "pending"})
            await storage.delete(doc["object_name"])

    async def complete(self, ctx: AccountContext, storage: StorageService,
                       asset_id: str) -> dict[str, Any]:
        """Confirm the uploaded bytes; a mismatch discards asset and object (422)."""
        require_rank(ctx.principal, ctx, Role.ACCOUNT_ADMIN)
        doc = await self._mine(ctx, asset_id)
        if doc["status"] == "ready":
            return doc
        try:
            stored, sniffed = await confirm_upload(
                storage, BRANDING_IMAGES, doc["object_name"], content_type=doc["content_type"],
                size=doc["size"])
        except UploadRefused as refused:
            await storage.delete(doc["object_name"])
            await self.collection.delete_one({"_id": doc["_id"]})
            await self._audit(ctx, "branding.image_refused", doc, reason=refused.slug,
                              sniffed_type=refused.sniffed)
            raise Unprocessable(f"{refused.detail} The upload was discarded; start a new one.",
                                type_slug=refused.slug) from None
        done = await self.collection.update_one(
            {"_id": doc["_id"], "status": "pending"},
            {"$set": {"status": "ready", "generation": stored.generation}})
        if done.modified_count == 0:  # a concurrent complete (or a delete) got there first
            return await self._mine(ctx, asset_id)
        doc.update(status="ready", generation=stored.generation)
        await self._audit(ctx, "branding.image_uploaded", doc, sniffed_type=sniffed)
        return doc

    async def all_for(self, ctx: AccountContext) -> list[dict[str, Any]]:
        return [dict(doc) async for doc in self.collection.find(
            {"account_id": ctx.account.id}).sort([("created_at", DESCENDING)]).limit(
            MAX_ASSETS_PER_ACCOUNT)]

    async def delete(self, ctx: AccountContext, storage: StorageService, asset_id: str, *,
                     in_use: set[str]) -> None:
        """Remove an image nothing uses (``in_use``: branding and published page; 409)."""
        require_rank(ctx.principal, ctx, Role.ACCOUNT_ADMIN)
        doc = await self._mine(ctx, asset_id)
        if doc["_id"] in in_use:
            raise Conflict("The account's branding or its published page uses this image; "
                           "point logo_url or favicon_url elsewhere (and publish again) "
                           "first.", type_slug="asset-in-use")
        # The record first: a file left behind is harmless (purge removes it), a record
        # naming a missing file is not.
        await self.collection.delete_one({"_id": doc["_id"]})
        await storage.delete(doc["object_name"])
        await self._audit(ctx, "branding.image_deleted", doc)

    async def ready(self, account_id: str, asset_id: str) -> bool:
        """Is this a confirmed image of that account (what branding may point at)?"""
        found = await self.collection.count_documents(
            {"_id": asset_id, "account_id": account_id, "status": "ready"}, limit=1)
        return bool(found == 1)

    async def ready_record(self, asset_id: str) -> dict[str, Any] | None:
        """A confirmed image's record by id (any account: the caller checks the host)."""
        if not _ASSET_ID.match(asset_id):
            return None
        doc = await self.collection.find_one({"_id": asset_id, "status": "ready"})
        return dict(doc) if doc is not None else None

    @staticmethod
    async def media(storage: StorageService, doc: dict[str, Any]) -> MediaFile | None:
        """The bytes of a confirmed image, as stored when it was confirmed."""
        try:
            body = await storage.read(doc["object_name"], start=0, length=doc["size"],
                                      generation=doc["generation"])
        except ObjectMissing:
            return None
        return MediaFile(body=body, content_type=doc["content_type"],
                         etag=f'"{doc["_id"]}-{doc["generation"]}"',
                         account_id=doc["account_id"], solution_id=doc["solution_id"])

    async def _audit(self, ctx: AccountContext, action: str, doc: dict[str, Any],
                     **details: Any) -> None:
        await self.audit.record(
            action, actor=ctx.principal, account_id=ctx.account.id,
            solution_id=ctx.solution.id, target=f"{COLLECTION}:{doc['_id']}",
            details={"content_type": doc["content_type"], "size": doc["size"], **details})
