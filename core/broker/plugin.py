"""The token broker, registered as the kernel plugin ``kernel.broker``."""

from __future__ import annotations

from typing import Any

from quart import Blueprint

from core.hooks import PluginManifest, hookimpl


@hookimpl
def plugin_manifest() -> PluginManifest:
    return PluginManifest(name="kernel.broker", version="1", title="Ephemeral-token broker")


@hookimpl
def register_routes() -> list[Blueprint]:
    from core.broker.routes import blueprint

    return [blueprint]


@hookimpl
async def startup(services: Any) -> None:
    """Build the broker into ``services.broker`` (providers are collected on first mint)."""
    from core.broker.service import TokenBroker

    broker = TokenBroker(settings=services.settings, registry=services.plugins,
                         database=services.db, cascade=services.tenancy.cascade,
                         audit=services.tenancy.audit, http=services.http)
    await broker.open()
    services.broker = broker


@hookimpl
async def shutdown(services: Any) -> None:
    broker = services.broker
    services.broker = None
    if broker is not None:
        await broker.close()
