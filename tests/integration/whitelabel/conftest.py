"""A white-label app of its own: the kernel plus the ``wlprobe`` assets plugin.

Its own database (the session's name + ``_wl``), a dict-backed DNS resolver
injected before start-up, short look-up TTLs so cross-instance staleness can be
observed quickly, and a seeded tenancy whose home Solution enables ``wlprobe``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import pytest_asyncio

from core.kernel.app import create_app
from core.testing.tenancy import Personas, seed_personas
from core.whitelabel.domains import DictResolver
from tests.integration.whitelabel.support import PLUGIN, AssetsPlugin

LOOKUP_TTL = 0.3
PLATFORM_HOST = "platform.test"


@dataclass
class WhiteLabelApp:
    test_app: Any
    services: Any
    resolver: DictResolver
    personas: Personas

    @property
    def whitelabel(self) -> Any:
        return self.services.whitelabel

    def client(self) -> Any:
        return self.test_app.test_client()


@pytest.fixture(scope="package")
def wl_settings(synergyhub_settings: Any) -> Any:
    return synergyhub_settings.model_copy(update={
        "mongodb_database": f"{synergyhub_settings.mongodb_database}_wl",
        "platform_hosts": ["localhost", "127.0.0.1", PLATFORM_HOST],
    })


@pytest_asyncio.fixture(scope="package", loop_scope="session")
async def wl(wl_settings: Any, synergyhub_stack: Any, tmp_path_factory: pytest.TempPathFactory
             ) -> AsyncIterator[WhiteLabelApp]:
    plugin = AssetsPlugin(Path(tmp_path_factory.mktemp("wlprobe")))
    app = create_app(wl_settings, extra_plugins=[(PLUGIN, plugin)], load_entrypoints=False)
    resolver = DictResolver()
    services = app.extensions["synergyhub"]
    services.extras["whitelabel.resolver"] = resolver
    async with app.test_app() as test_app:
        assert services.whitelabel is not None, services.plugins.faults_by_plugin()
        services.whitelabel.set_lookup_ttl(LOOKUP_TTL)
        personas = await seed_personas(services.db, synergyhub_stack.firebase_auth_host,
                                       enabled_plugins=[PLUGIN])
        yield WhiteLabelApp(test_app, services, resolver, personas)


@pytest.fixture
def client(wl: WhiteLabelApp) -> Any:
    """Shadows the session ``client``: this package talks to its own app."""
    return wl.client()


@pytest.fixture
def personas(wl: WhiteLabelApp) -> Personas:
    return wl.personas
