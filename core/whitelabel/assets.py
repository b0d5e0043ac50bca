"""Branding images (logos, favicons) that account admins upload, served at ``/media/<id>``.

An image is an account-scope :class:`ScopedResource`: every authenticated read
and write goes through the scoped repository, so members read and account
admins (and above) write, by the same rules as any resource. The flow is the
documents' one: declare type and size, PUT the bytes to a signed URL, complete
(the object exists with that size and type, and its bytes sniff as that type).
Raster images only (PNG, JPEG, WebP, ICO; never SVG, a script carrier).

The one read outside the repository is the public ``/media/<id>``: like a
published page, a confirmed image is public, and the caller checks that the
request's host may show its tenant. The app serves the bytes itself, so a
landing page's ``img-src 'self'`` covers them on every host.
"""

from __future__ import annotations

import re
import secrets
from dataclasses import dataclass
from typing import Any, ClassVar, Final, Literal

from pydantic import Field

from core.kernel.errors import Conflict, NotFound, Unprocessable
from core.storage.policy import BRANDING_IMAGES, object_name
from core.storage.port import ObjectMissing, SignedUrl, StorageService
from core.storage.uploads import UploadRefused, confirm_upload
from core.tenancy.audit import AuditLog
from core.tenancy.models import AccountContext, Scope, ScopedResource, utcnow
from core.tenancy.repository import RepositoryFactory, ScopedRepository
from core.tenancy.rules import can_write

__all__ = ["MEDIA_PREFIX", "BrandingAssets", "BrandingImage", "MediaFile", "asset_id_of"]

MEDIA_PREFIX: Final = "/media/"
USE: Final = "branding"
MAX_ASSETS_PER_ACCOUNT: Final = 50
_ASSET_ID = re.compile(r"^[0-9a-f]{24}$")


class BrandingImage(ScopedResource):
    collection: ClassVar[str] = "branding_assets"
    filterable: ClassVar[frozenset[str]] = frozenset({"status", "content_type"})
    sortable: ClassVar[frozenset[str]] = frozenset({"created_at"})
    indexes: ClassVar[tuple[tuple[tuple[str, int], ...], ...]] = ()

    content_type: str = Field(max_length=100)
    size: int = Field(ge=1, le=BRANDING_IMAGES.max_bytes)
    # "pending" until POST .../complete confirms the stored bytes.
    status: Literal["pending", "ready"] = "pending"
    # Server-generated storage object name; never sent to clients.
    object_name: str = Field(max_length=400)
    # The object generation that was confirmed; /media serves only that one.
    generation: int | None = None


def asset_id_of(url: str) -> str | None:
    """The image id a ``/media/<id>`` URL names, or None for any other URL."""
    if not url.startswith(MEDIA_PREFIX):
        return None
    candidate = url[len(MEDIA_PREFIX):]
    return candidate if _ASSET_ID.match(candidate) else None


def public(image: BrandingImage) -> dict[str, Any]:
    """What the API shows of an image (never the object name)."""
    return {"id": image.id, "url": f"{MEDIA_PREFIX}{image.id}", "status": image.status,
            "content_type": image.content_type, "size": image.size,
            "created_at": image.created_at.isoformat()}


@dataclass(frozen=True)
class MediaFile:
    """What ``GET /media/<id>`` sends."""

    body: bytes
    content_type: str
    etag: str
    account_id: str
    solution_id: str


class BrandingAssets:
    """The use cases over branding images: the scoped repository plus the storage port."""

    def __init__(self, database: Any, audit: AuditLog, repositories: RepositoryFactory) -> None:
        self.collection = database[BrandingImage.collection]  # the public read only
        self.audit = audit
        self.repositories = repositories

    def _repo(self, ctx: AccountContext) -> ScopedRepository[BrandingImage]:
        return self.repositories.bind(BrandingImage, ctx)

    async def _writable(self, ctx: AccountContext, asset_id: str) -> BrandingImage:
        """The image if the caller may change it; 404 exactly like a missing id."""
        image = await self._repo(ctx).get(asset_id)
        if not can_write(ctx.principal, image):
            raise NotFound("No such resource.")
        return image

    async def start(self, ctx: AccountContext, storage: StorageService, *, content_type: str,
                    size: int) -> tuple[BrandingImage, SignedUrl]:
        """A pending image and the signed PUT for its bytes (account scope: admins)."""
        refused = BRANDING_IMAGES.refusal(content_type, size)
        if refused is not None:
            slug, detail = refused
            raise Unprocessable(detail, type_slug=slug)
        repo = self._repo(ctx)
        await self._drop_abandoned(repo, storage)
        if await repo.count() >= MAX_ASSETS_PER_ACCOUNT:
            raise Conflict(f"An account keeps at most {MAX_ASSETS_PER_ACCOUNT} branding "
                           "images; delete unused ones first.", type_slug="too-many-assets")
        name = object_name(solution_id=ctx.solution.id, account_id=ctx.account.id, use=USE,
                           resource_id=secrets.token_hex(12))
        image = await repo.insert({"content_type": content_type, "size": size,
                                   "object_name": name}, scope=Scope.ACCOUNT)
        signed = await storage.signed_upload(name, content_type=content_type, size=size,
                                             ttl=BRANDING_IMAGES.upload_ttl)
        return image, signed

    @staticmethod
    async def _drop_abandoned(repo: ScopedRepository[BrandingImage],
                              storage: StorageService) -> None:
        """Uploads started and never completed within twice their URL's lifetime."""
        cutoff = utcnow() - BRANDING_IMAGES.upload_ttl * 2
        pending = await repo.list(filters={"status": "pending"}, sort="created_at",
                                  limit=MAX_ASSETS_PER_ACCOUNT)
        for image in pending.items:
            if image.created_at < cutoff:
                await repo.delete(image.id)
                await storage.delete(image.object_name)

    async def complete(self, ctx: AccountContext, storage: StorageService,
                       asset_id: str) -> BrandingImage:
        """Confirm the uploaded bytes; a mismatch discards image and object (422)."""
        image = await self._writable(ctx, asset_id)
        if image.status == "ready":
            return image
        try:
            stored, sniffed = await confirm_upload(
                storage, BRANDING_IMAGES, image.object_name, content_type=image.content_type,
                size=image.size)
        except UploadRefused as refused:
            await self._repo(ctx).delete(image.id)
            await storage.delete(image.object_name)
            await self._audit(ctx, "branding.image_refused", image, reason=refused.slug,
                              sniffed_type=refused.sniffed)
            raise Unprocessable(f"{refused.detail} The upload was discarded; start a new one.",
                                type_slug=refused.slug) from None
        ready = await self._repo(ctx).update(image.id, {"status": "ready",
                                                        "generation": stored.generation})
        await self._audit(ctx, "branding.image_uploaded", ready, sniffed_type=sniffed)
        return ready

    async def all_for(self, ctx: AccountContext) -> list[BrandingImage]:
        page = await self._repo(ctx).list(sort="-created_at", limit=MAX_ASSETS_PER_ACCOUNT)
        return page.items

    async def delete(self, ctx: AccountContext, storage: StorageService, asset_id: str, *,
                     in_use: set[str]) -> None:
        """Remove an image nothing uses (``in_use``: branding and published page; 409)."""
        image = await self._writable(ctx, asset_id)
        if image.id in in_use:
            raise Conflict("The account's branding or its published page uses this image; "
                           "point logo_url or favicon_url elsewhere (and publish again) "
                           "first.", type_slug="asset-in-use")
        # The record first: a file left behind is harmless (purge removes it), a record
        # naming a missing file is not.
        await self._repo(ctx).delete(image.id)
        await storage.delete(image.object_name)
        await self._audit(ctx, "branding.image_deleted", image)

    async def ready(self, ctx: AccountContext, asset_id: str) -> bool:
        """Is this a confirmed image of the context's account (what branding may name)?"""
        try:
            return (await self._repo(ctx).get(asset_id)).status == "ready"
        except NotFound:
            return False

    async def public_record(self, asset_id: str) -> dict[str, Any] | None:
        """A confirmed image's record for ``/media`` (public, like a published page)."""
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

    async def _audit(self, ctx: AccountContext, action: str, image: BrandingImage,
                     **details: Any) -> None:
        await self.audit.record(
            action, actor=ctx.principal, account_id=ctx.account.id,
            solution_id=ctx.solution.id, target=f"{BrandingImage.collection}:{image.id}",
            details={"content_type": image.content_type, "size": image.size, **details})
