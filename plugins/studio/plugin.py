"""Hook implementations of the studio plugin."""

from __future__ import annotations

from quart import Blueprint

from core.hooks import PluginManifest, hookimpl
from plugins.studio.settings import SolutionSettings

blueprint = Blueprint("studio", __name__)


@blueprint.get("/")
async def overview(account_id: str) -> dict[str, str]:
    """Reachable only when the account's Solution enables the plugin."""
    return {"plugin": "studio", "account_id": account_id, "status": "ready"}


@hookimpl
def plugin_manifest() -> PluginManifest:
    return PluginManifest(
        name="studio",
        version="0.1.0",
        title="Prompt Studio",
        description="versioned prompts, test cases and runs through the AI gateway.",
        solution_settings=SolutionSettings,
    )


@hookimpl
def register_routes() -> Blueprint:
    return blueprint
