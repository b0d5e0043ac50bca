"""File storage, registered as the ``kernel.storage`` default plugin."""

from __future__ import annotations

import logging
from typing import Any

from quart import Blueprint

from core.hooks import PluginManifest, hookimpl

log = logging.getLogger("synergyhub.storage")


@hookimpl
def plugin_manifest() -> PluginManifest:
    return PluginManifest(name="kernel.storage", version="1",
                          title="File storage (signed URLs)")


@hookimpl
def register_routes() -> list[Blueprint]:
    from core.storage.routes import make_blueprint

    return [make_blueprint()]


@hookimpl
async def startup(services: Any) -> None:
    """Fill ``services.storage``; with the emulator, make the bucket if it is missing."""
    import asyncio

    from core.storage.gcs import GCSStorage

    # A throwaway signing key (RSA generation) is CPU work: keep it off the loop.
    storage = await asyncio.to_thread(GCSStorage.from_settings, services.settings)
    if storage is None:
        log.info("file storage is not configured (no STORAGE_EMULATOR_HOST in development)")
        return
    services.storage = storage
    await storage.ensure_bucket()


@hookimpl
async def shutdown(services: Any) -> None:
    storage = services.storage
    services.storage = None
    if storage is not None:
        await storage.close()
