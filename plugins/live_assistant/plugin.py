"""Hook implementations of the live_assistant plugin."""

from __future__ import annotations

from quart import Blueprint

from core.hooks import PluginManifest, hookimpl
from plugins.live_assistant.settings import SolutionSettings

blueprint = Blueprint("live_assistant", __name__)


@blueprint.get("/")
async def overview(account_id: str) -> dict[str, str]:
    """Reachable only when the account's Solution enables the plugin."""
    return {"plugin": "live_assistant", "account_id": account_id, "status": "ready"}


@hookimpl
def plugin_manifest() -> PluginManifest:
    return PluginManifest(
        name="live_assistant",
        version="0.1.0",
        title="Live Assistant",
        description="real-time voice assistant over OpenAI Realtime.",
        solution_settings=SolutionSettings,
    )


@hookimpl
def register_routes() -> Blueprint:
    return blueprint
