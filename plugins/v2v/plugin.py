"""Hook implementations of the v2v plugin."""

from __future__ import annotations

from quart import Blueprint

from core.hooks import PluginManifest, hookimpl
from plugins.v2v.settings import SolutionSettings

blueprint = Blueprint("v2v", __name__)


@blueprint.get("/")
async def overview(account_id: str) -> dict[str, str]:
    """Reachable only when the account's Solution enables the plugin."""
    return {"plugin": "v2v", "account_id": account_id, "status": "ready"}


@hookimpl
def plugin_manifest() -> PluginManifest:
    return PluginManifest(
        name="v2v",
        version="0.1.0",
        title="Voice to Voice",
        description="speech-to-speech sessions brokered with ephemeral OpenAI Realtime tokens.",
        solution_settings=SolutionSettings,
    )


@hookimpl
def register_routes() -> Blueprint:
    return blueprint
