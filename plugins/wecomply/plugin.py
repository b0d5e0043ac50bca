"""Hook implementations of the wecomply plugin: only public hooks and kernel services."""

from __future__ import annotations

from typing import Any

from quart import Blueprint

from core.hooks import PluginManifest, hookimpl
from plugins.wecomply.settings import SolutionSettings


@hookimpl
def plugin_manifest() -> PluginManifest:
    return PluginManifest(
        name="wecomply",
        version="0.2.0",
        title="WeComply",
        description="policies, attestations and grounded Q&A over source-of-truth documents.",
        solution_settings=SolutionSettings,
    )


@hookimpl
def register_routes() -> Blueprint:
    from plugins.wecomply.routes import make_blueprint

    return make_blueprint()


@hookimpl
def register_models() -> list[Any]:
    from plugins.wecomply.models import MODELS

    return list(MODELS)
