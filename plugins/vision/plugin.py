"""Hook implementations of the vision plugin."""

from __future__ import annotations

from quart import Blueprint

from core.hooks import PluginManifest, hookimpl
from plugins.vision.settings import SolutionSettings

blueprint = Blueprint("vision", __name__)


@blueprint.get("/")
async def overview(account_id: str) -> dict[str, str]:
    """Reachable only when the account's Solution enables the plugin."""
    return {"plugin": "vision", "account_id": account_id, "status": "ready"}


@hookimpl
def plugin_manifest() -> PluginManifest:
    return PluginManifest(
        name="vision",
        version="0.1.0",
        title="Vision",
        description="image and document analysis through the AI gateway.",
        solution_settings=SolutionSettings,
    )


@hookimpl
def register_routes() -> Blueprint:
    return blueprint
