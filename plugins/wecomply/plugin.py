"""Hook implementations of the wecomply plugin."""

from __future__ import annotations

from quart import Blueprint

from core.hooks import PluginManifest, hookimpl
from plugins.wecomply.settings import SolutionSettings

blueprint = Blueprint("wecomply", __name__)


@blueprint.get("/")
async def overview(account_id: str) -> dict[str, str]:
    """Reachable only when the account's Solution enables the plugin."""
    return {"plugin": "wecomply", "account_id": account_id, "status": "ready"}


@hookimpl
def plugin_manifest() -> PluginManifest:
    return PluginManifest(
        name="wecomply",
        version="0.1.0",
        title="WeComply",
        description="policies, attestations and grounded Q&A over source-of-truth documents.",
        solution_settings=SolutionSettings,
    )


@hookimpl
def register_routes() -> Blueprint:
    return blueprint
