"""White-label API under /api/v1 (adapters: parse, call the service, shape JSON).

Account admins (and above) write; every write is audited by the service.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint, Response
from quart_schema import validate_querystring, validate_request

from core.kernel import context
from core.kernel.errors import NotFound, ServiceUnavailable
from core.storage.policy import BRANDING_IMAGES
from core.storage.routes import require_storage
from core.whitelabel.assets import public as image_view
from core.whitelabel.branding import BrandingSettings
from core.whitelabel.sections import MAX_SECTIONS
from core.whitelabel.service import WhiteLabelService

PREVIEW_MAX_SECONDS = 7 * 24 * 3600


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class DraftIn(Strict):
    sections: list[dict[str, Any]] = Field(max_length=MAX_SECTIONS)
    base_revision: int | None = Field(
        None, ge=0, description="the revision you edited (0 = no draft yet); 409 when stale"
    )


class ImageIn(Strict):
    content_type: str = Field(max_length=100, description="image/png, image/jpeg, "
                                                          "image/webp or image/x-icon")
    size: int = Field(ge=0, description="bytes; at most 1 MiB")


class RollbackIn(Strict):
    version: int = Field(ge=1)


class PreviewLinkIn(Strict):
    expires_in: int = Field(3600, ge=60, le=PREVIEW_MAX_SECONDS, description="seconds")


class DomainIn(Strict):
    domain: str = Field(min_length=1, max_length=253)


class VersionsQuery(BaseModel):
    cursor: int | None = Field(None, ge=1)
    limit: int = Field(20, ge=1, le=100)


def whitelabel() -> WhiteLabelService:
    service: WhiteLabelService | None = context.services().whitelabel
    if service is None:
        raise ServiceUnavailable("The white-label service is not running; try again shortly.")
    return service


def create_blueprint() -> Blueprint:
    """A fresh blueprint per app (see docs/plugin_hooks.md on module-level blueprints)."""
    bp = Blueprint("whitelabel", __name__, url_prefix="/api/v1")

    @bp.get("/themes")
    async def list_themes() -> dict[str, Any]:
        """Installed theme packs a Solution may choose (signed-in users)."""
        await context.authenticate()
        themes = whitelabel().themes
        return {"items": [
            {"name": p.name, "title": p.title, "description": p.description,
             "tokens": p.tokens.model_dump(mode="json")}
            for p in sorted(themes.values(), key=lambda p: p.name)
        ], "next_cursor": None}

    @bp.get("/accounts/<account_id>/branding")
    async def get_branding(account_id: str) -> dict[str, Any]:
        """Resolved branding with provenance, the account's overrides and a contrast report."""
        ctx = await context.enter_account(account_id)
        return await whitelabel().branding_view(ctx)

    @bp.put("/accounts/<account_id>/branding")
    @validate_request(BrandingSettings)
    async def put_branding(account_id: str, data: BrandingSettings) -> dict[str, Any]:
        """Replace the account's own branding; keys left out inherit from the Solution."""
        ctx = await context.enter_account(account_id)
        return await whitelabel().put_branding(ctx, data)

    @bp.post("/accounts/<account_id>/branding/images")
    @validate_request(ImageIn)
    async def start_image(account_id: str, data: ImageIn
                          ) -> tuple[dict[str, Any], int, dict[str, str]]:
        """A logo or favicon: PUT its bytes to ``upload.url`` with ``upload.headers``,
        then POST .../complete; use the answered ``url`` as logo_url or favicon_url."""
        ctx = await context.enter_account(account_id)
        image, signed = await whitelabel().assets.start(
            ctx, require_storage(), content_type=data.content_type, size=data.size)
        body = {"image": image_view(image), "max_bytes": BRANDING_IMAGES.max_bytes,
                "upload": {"url": signed.url, "method": signed.method,
                           "headers": signed.headers,
                           "expires_at": signed.expires_at.isoformat()}}
        return body, 201, {"Cache-Control": "no-store"}

    @bp.post("/accounts/<account_id>/branding/images/<image_id>/complete")
    async def complete_image(account_id: str, image_id: str) -> dict[str, Any]:
        """Confirm the upload (size, type sniffed from the bytes); 422 discards it."""
        ctx = await context.enter_account(account_id)
        return image_view(await whitelabel().assets.complete(ctx, require_storage(), image_id))

    @bp.get("/accounts/<account_id>/branding/images")
    async def list_images(account_id: str) -> dict[str, Any]:
        """The account's branding images, newest first (at most 50 are kept)."""
        ctx = await context.enter_account(account_id)
        images = await whitelabel().assets.all_for(ctx)
        return {"items": [image_view(image) for image in images], "next_cursor": None}

    @bp.delete("/accounts/<account_id>/branding/images/<image_id>")
    async def delete_image(account_id: str, image_id: str) -> tuple[str, int]:
        """Delete an image the account's branding does not use (409 when it does)."""
        ctx = await context.enter_account(account_id)
        await whitelabel().delete_image(ctx, require_storage(), image_id)
        return "", 204

    @bp.get("/accounts/<account_id>/landing-page")
    async def get_draft(account_id: str) -> dict[str, Any]:
        """The draft landing page (not public until published)."""
        ctx = await context.enter_account(account_id)
        return await whitelabel().draft_view(ctx)

    @bp.put("/accounts/<account_id>/landing-page")
    @validate_request(DraftIn)
    async def put_draft(account_id: str, data: DraftIn) -> dict[str, Any]:
        """Save the draft; rich text is sanitized as it is written."""
        ctx = await context.enter_account(account_id)
        return await whitelabel().save_draft(ctx, data.sections, data.base_revision)

    @bp.post("/accounts/<account_id>/landing-page/publish")
    async def publish(account_id: str) -> tuple[dict[str, Any], int]:
        """Publish the draft as a new version (refused below WCAG AA contrast)."""
        ctx = await context.enter_account(account_id)
        return await whitelabel().publish(ctx), 201

    @bp.get("/accounts/<account_id>/landing-page/versions")
    @validate_querystring(VersionsQuery)
    async def list_versions(account_id: str, query_args: VersionsQuery) -> dict[str, Any]:
        """Published versions, newest first; ``cursor`` is the last version seen."""
        ctx = await context.enter_account(account_id)
        return await whitelabel().versions(ctx, before=query_args.cursor, limit=query_args.limit)

    @bp.get("/accounts/<account_id>/landing-page/versions/<version>")
    async def get_version(account_id: str, version: str) -> dict[str, Any]:
        """One published version, exactly as it was published."""
        ctx = await context.enter_account(account_id)
        if not version.isdigit() or len(version) > 9:
            raise NotFound("There is no such published version.")
        return await whitelabel().version_view(ctx, int(version))

    @bp.post("/accounts/<account_id>/landing-page/rollback")
    @validate_request(RollbackIn)
    async def rollback(account_id: str, data: RollbackIn) -> tuple[dict[str, Any], int]:
        """Publish an exact copy of an earlier version (as a new version)."""
        ctx = await context.enter_account(account_id)
        return await whitelabel().rollback(ctx, data.version), 201

    @bp.post("/accounts/<account_id>/landing-page/preview-link")
    @validate_request(PreviewLinkIn)
    async def preview_link(account_id: str, data: PreviewLinkIn) -> tuple[dict[str, Any], int]:
        """A signed link to the current draft that expires."""
        ctx = await context.enter_account(account_id)
        return await whitelabel().preview_link(ctx, data.expires_in), 201

    @bp.post("/accounts/<account_id>/domains")
    @validate_request(DomainIn)
    async def add_domain(account_id: str, data: DomainIn) -> tuple[dict[str, Any], int]:
        """Claim a custom domain; it turns active after DNS TXT verification."""
        ctx = await context.enter_account(account_id)
        return await whitelabel().add_domain(ctx, data.domain), 201

    @bp.get("/accounts/<account_id>/domains")
    async def list_domains(account_id: str) -> dict[str, Any]:
        ctx = await context.enter_account(account_id)
        return await whitelabel().list_domains(ctx)

    @bp.get("/accounts/<account_id>/domains/<domain>")
    async def get_domain(account_id: str, domain: str) -> dict[str, Any]:
        ctx = await context.enter_account(account_id)
        return await whitelabel().get_domain(ctx, domain)

    @bp.delete("/accounts/<account_id>/domains/<domain>")
    async def delete_domain(account_id: str, domain: str) -> Response:
        ctx = await context.enter_account(account_id)
        await whitelabel().remove_domain(ctx, domain)
        return Response(status=204)

    @bp.post("/accounts/<account_id>/domains/<domain>/verify")
    async def verify_domain(account_id: str, domain: str) -> dict[str, Any]:
        """Look up the TXT record now; 422 with the expected record when missing."""
        ctx = await context.enter_account(account_id)
        return await whitelabel().verify_domain(ctx, domain)

    return bp
