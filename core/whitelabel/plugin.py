"""White-label, registered as the kernel default plugin ``kernel.whitelabel``.

Contributes the branding, landing-page and domain API, the public pages and
theme assets, and fills ``services.whitelabel`` when serving starts. Plugins'
``register_landing_sections`` and ``register_theme_assets`` are collected on
first use, not inside this ``startup`` (see docs/decisions.md).
"""

from __future__ import annotations

from typing import Any

from quart import Blueprint

from core.hooks import PluginManifest, hookimpl


@hookimpl
def plugin_manifest() -> PluginManifest:
    return PluginManifest(
        name="kernel.whitelabel", version="1",
        title="White-label: themes, branding, landing pages, custom domains",
    )


@hookimpl
def register_models() -> list[type]:
    """Branding images are account-scope resources behind the scoped repository."""
    from core.whitelabel.assets import BrandingImage

    return [BrandingImage]


@hookimpl
def register_routes() -> list[Blueprint]:
    from core.whitelabel.public import create_public_blueprint
    from core.whitelabel.routes import create_blueprint

    return [create_blueprint(), create_public_blueprint()]


@hookimpl
async def startup(services: Any) -> None:
    from core.whitelabel.service import WhiteLabelService

    services.whitelabel = await WhiteLabelService.open(services)


@hookimpl
async def shutdown(services: Any) -> None:
    services.whitelabel = None
