"""One app per package with FakeAIServer as the AI provider; a fresh tenancy per module."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import pytest_asyncio

from core.kernel.app import create_app
from core.testing.fake_ai import FakeAIServer
from core.testing.tenancy import seed_personas
from tests.integration.wecomply.support import WeComplyApp


@pytest_asyncio.fixture(scope="package", loop_scope="session")
async def wecomply_app(fake_ai_settings: Any) -> AsyncIterator[tuple[Any, Any]]:
    settings = fake_ai_settings.model_copy(update={
        "mongodb_database": f"{fake_ai_settings.mongodb_database}_wecomply",
        "openai_model": "gpt-wecomply-test"})
    app = create_app(settings)
    async with app.test_app() as test_app:
        services = app.extensions["synergyhub"]
        assert services.storage is not None and services.ai is not None
        yield test_app, services


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def wc(wecomply_app: tuple[Any, Any], fake_ai: FakeAIServer, synergyhub_stack: Any
             ) -> AsyncIterator[WeComplyApp]:
    test_app, services = wecomply_app
    personas = await seed_personas(services.db, synergyhub_stack.firebase_auth_host,
                                   enabled_plugins=["wecomply"])
    async with httpx.AsyncClient(trust_env=False, timeout=10) as http:
        yield WeComplyApp(test_app, services, personas, fake_ai, http)


@pytest.fixture(autouse=True)
def _reset_fake(fake_ai: FakeAIServer) -> None:
    fake_ai.reset()
