"""Hook implementations of the studio plugin (only public hooks and kernel services)."""

from __future__ import annotations

from typing import Any

from quart import Blueprint

from core.hooks import PluginManifest, hookimpl
from core.tenancy.models import ScopedResource
from plugins.studio.settings import SolutionSettings


@hookimpl
def plugin_manifest() -> PluginManifest:
    return PluginManifest(
        name="studio",
        version="0.2.0",
        title="Prompt Studio",
        description="Versioned prompts, test cases and runs through the AI gateway.",
        solution_settings=SolutionSettings,
    )


@hookimpl
def register_routes() -> Blueprint:
    from plugins.studio.routes import build_blueprint

    return build_blueprint()


@hookimpl
def register_models() -> list[type[ScopedResource]]:
    from plugins.studio.models import Prompt, PromptVersion, Run, TestCase

    return [Prompt, PromptVersion, TestCase, Run]


@hookimpl
def register_socket_handlers() -> dict[str, Any]:
    from plugins.studio.sockets import handlers

    return handlers()
