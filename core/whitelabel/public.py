"""Public, unauthenticated routes: landing pages, previews, theme assets, tenant settings.

Landing pages are HTML with a strict, nonce-based Content-Security-Policy set
here (the kernel middleware only fills in headers a response does not carry).
Every "not here" case (unknown Host, unknown or archived tenant, nothing
published) answers the same 404 page, byte for byte.
"""

from __future__ import annotations

import secrets
from pathlib import Path

from pydantic import BaseModel, Field
from quart import Blueprint, Response, request, send_from_directory
from quart_schema import hide, validate_querystring

from core.kernel import context
from core.kernel.errors import NotFound
from core.whitelabel.cache import RenderedPage
from core.whitelabel.routes import whitelabel

PAGE_CSP = (
    "default-src 'none'; script-src 'nonce-{nonce}'; style-src 'self' 'nonce-{nonce}'; "
    "img-src 'self' https:; font-src 'self'; base-uri 'none'; object-src 'none'; "
    "form-action 'none'; frame-ancestors {ancestors}"
)
STATIC_PAGE_CSP = (
    "default-src 'none'; base-uri 'none'; object-src 'none'; form-action 'none'; "
    "frame-ancestors 'none'"
)
ASSET_MAX_AGE = 3600
SETTINGS_CACHE_CONTROL = "public, max-age=60"


def _static_page(title: str, text: str) -> bytes:
    return (
        '<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f'<meta name="robots" content="noindex"><title>{title}</title></head>'
        f"<body><main><h1>{title}</h1><p>{text}</p></main></body></html>\n"
    ).encode()


NOT_FOUND_PAGE = _static_page("Page not found", "There is no page at this address.")
EXPIRED_PAGE = _static_page(
    "Preview link expired", "This preview link has expired. Ask for a new one."
)


def _html(body: bytes, status: int) -> Response:
    response = Response(body, status=status, content_type="text/html; charset=utf-8")
    response.headers["Content-Security-Policy"] = STATIC_PAGE_CSP
    response.headers["Cache-Control"] = "no-store"
    return response


def not_found_page() -> Response:
    """The one 404 page of every public address."""
    return _html(NOT_FOUND_PAGE, 404)


def page_response(page: RenderedPage, *, preview: bool = False) -> Response:
    nonce = secrets.token_urlsafe(18)
    response = Response(page.body(nonce), status=200, content_type="text/html; charset=utf-8")
    headers = response.headers
    headers["Content-Security-Policy"] = PAGE_CSP.format(
        nonce=nonce, ancestors=page.frame_ancestors
    )
    if preview:
        headers["Cache-Control"] = "no-store"
        headers["X-Robots-Tag"] = "noindex, nofollow"
        headers["Referrer-Policy"] = "no-referrer"  # the link is the credential
    else:
        # Each response carries a fresh nonce, so shared caches must revalidate.
        headers["Cache-Control"] = "no-cache"
    return response


def _etag_matches(header: str, etag: str) -> bool:
    if not header:
        return False
    tags = [part.strip() for part in header.split(",")]
    return "*" in tags or any(t.removeprefix("W/") == etag for t in tags)


class TenantSettingsQuery(BaseModel):
    solution: str | None = Field(None, max_length=63, description="Solution slug")
    account: str | None = Field(None, max_length=63, description="Account slug")


def create_public_blueprint() -> Blueprint:
    bp = Blueprint("whitelabel_public", __name__)

    @bp.get("/")
    @hide
    async def domain_root() -> Response:
        """A tenant's own host (custom domain or account subdomain) serves its page."""
        service = whitelabel()
        tenant = await service.tenant_for_request(request.host, None, None)
        page = await service.public_page(tenant) if tenant is not None else None
        return page_response(page) if page is not None else not_found_page()

    @bp.get("/t/<solution_slug>/<account_slug>")
    @hide
    async def tenant_page(solution_slug: str, account_slug: str) -> Response:
        service = whitelabel()
        tenant = await service.tenant_for_request(request.host, solution_slug, account_slug)
        page = await service.public_page(tenant) if tenant is not None else None
        return page_response(page) if page is not None else not_found_page()

    @bp.get("/preview/<token>")
    @hide
    async def preview(token: str) -> Response:
        service = whitelabel()
        target = service.preview_target(token)
        if target is None or not await service.host_allows_account(
            request.host, target.account_id
        ):
            return not_found_page()
        if target.expired:
            return _html(EXPIRED_PAGE, 410)
        page = await service.preview_page(target.account_id)
        return page_response(page, preview=True) if page is not None else not_found_page()

    @bp.get("/media/<image_id>")
    @hide
    async def media(image_id: str) -> Response:
        """A confirmed branding image (logo, favicon) on a host that may show its tenant."""
        service = whitelabel()
        storage = context.services().storage
        found = await service.media_file(storage, request.host, image_id) if storage else None
        if found is None:
            return not_found_page()
        headers = {"ETag": found.etag, "Cache-Control": f"public, max-age={ASSET_MAX_AGE}",
                   "Content-Security-Policy": STATIC_PAGE_CSP,
                   "Content-Disposition": "inline"}
        if _etag_matches(request.headers.get("If-None-Match", ""), found.etag):
            return Response(b"", status=304, headers=headers)
        return Response(found.body, status=200, content_type=found.content_type,
                        headers=headers)

    @bp.get("/static/themes/<theme>/<path:filename>")
    @hide
    async def theme_asset(theme: str, filename: str) -> Response:
        directory = whitelabel().static_dir("themes", theme)
        return await _send(directory, filename)

    @bp.get("/static/plugins/<plugin>/<path:filename>")
    @hide
    async def plugin_asset(plugin: str, filename: str) -> Response:
        service = whitelabel()
        await service.extensions()
        return await _send(service.static_dir("plugins", plugin), filename)

    @bp.get("/api/v1/public/tenant-settings")
    @validate_querystring(TenantSettingsQuery)
    async def tenant_settings(query_args: TenantSettingsQuery) -> Response:
        """Theme tokens, branding and enabled plugins of one tenant, for the frontend.

        The tenant is the one the ``Host`` names (its custom domain or
        ``<account>.<solution domain>``) or, on platform hosts, the one named by
        ``?solution=<slug>&account=<slug>``. Public, cacheable, nothing private.
        """
        service = whitelabel()
        tenant = await service.tenant_for_request(
            request.host, query_args.solution, query_args.account
        )
        if tenant is None:
            raise NotFound(
                "No tenant here: call from the tenant's domain or name it with "
                "?solution=<slug>&account=<slug>.",
                type_slug="unknown-tenant",
            )
        data, etag = await service.tenant_settings(tenant)
        headers = {"ETag": etag, "Cache-Control": SETTINGS_CACHE_CONTROL,
                   "Access-Control-Allow-Origin": "*"}
        if _etag_matches(request.headers.get("If-None-Match", ""), etag):
            return Response(b"", status=304, headers=headers)
        return Response(data, status=200, content_type="application/json", headers=headers)

    return bp


async def _send(directory: Path | None, filename: str) -> Response:
    if directory is None:
        raise NotFound("No such file.")
    response = await send_from_directory(directory, filename, cache_timeout=ASSET_MAX_AGE)
    response.cache_control.public = True
    return response
