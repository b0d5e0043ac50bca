"""Kernel test suite configuration: faulty plugins prove fault isolation."""

from __future__ import annotations

import asyncio
import time

import pytest
from quart import Blueprint

from core.hooks import PluginManifest, hookimpl


class BoomPlugin:
    """A feature plugin whose route raises and whose startup raises."""

    blueprint = Blueprint("boom", __name__)

    @staticmethod
    @blueprint.get("/explode")
    async def explode(account_id: str) -> dict[str, str]:
        raise RuntimeError("database password is hunter2")

    @hookimpl
    def plugin_manifest(self) -> PluginManifest:
        return PluginManifest(name="boom", version="1.0", title="Boom")

    @hookimpl
    def register_routes(self) -> Blueprint:
        return self.blueprint

    @hookimpl
    def startup(self) -> None:
        raise RuntimeError("boom plugin cannot start")


class HangingPlugin:
    """A plugin that hangs in a sync hook and in an async hook."""

    @hookimpl
    def plugin_manifest(self) -> PluginManifest:
        return PluginManifest(name="hang", version="1.0", title="Hang")

    @hookimpl
    def register_models(self) -> list[object]:
        time.sleep(3600)
        return []

    @hookimpl
    async def startup(self) -> None:
        await asyncio.sleep(3600)


@pytest.fixture(scope="session")
def synergyhub_extra_plugins() -> list[tuple[str, object]]:
    return [("boom", BoomPlugin()), ("hang", HangingPlugin())]
