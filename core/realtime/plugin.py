"""``kernel.realtime``: opens the Socket.IO channel with the app and fills ``services.realtime``."""

from __future__ import annotations

from typing import Any

from core.hooks import PluginManifest, hookimpl
from core.realtime.channel import EXTRAS_KEY, RealtimeChannel


@hookimpl
def plugin_manifest() -> PluginManifest:
    return PluginManifest(
        name="realtime", version="1", title="Real-time channel",
        description="Socket.IO namespaces per plugin, kernel-named rooms, emit facade.",
    )


@hookimpl
async def startup(services: Any) -> None:
    """Start the sweeper and the Redis listener on the serving loop.

    An app built with ``create_app`` alone (no Socket.IO mounted) still gets
    a working ``services.realtime``: emits reach other processes through
    Redis, or nobody.
    """
    channel = services.extras.get(EXTRAS_KEY)
    if channel is None:
        channel = RealtimeChannel(services, mounted=False)
        services.extras[EXTRAS_KEY] = channel
    await channel.start()
    services.realtime = channel.realtime


@hookimpl
async def shutdown(services: Any) -> None:
    channel = services.extras.get(EXTRAS_KEY)
    if channel is not None:
        await channel.stop()
    services.realtime = None
