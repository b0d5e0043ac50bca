"""One app for the studio suites: the real kernel, the studio plugin from its entry
point, its own database with a seeded tenancy whose home Solution enables studio, and
the AI gateway pointed at a FakeAIServer (the only test double: the OpenAI stand-in)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from pydantic import SecretStr

from core.kernel.app import create_app
from core.testing.fake_ai import FakeAIServer
from core.testing.tenancy import Personas, seed_personas

PROBLEM = "application/problem+json"
MODEL = "gpt-studio-test"


@dataclass
class Studio:
    test_app: Any
    services: Any
    personas: Personas
    fake: FakeAIServer

    @property
    def home(self) -> str:
        return self.personas.home_account

    def url(self, path: str, account: str | None = None) -> str:
        return f"/api/v1/accounts/{account or self.home}/studio{path}"

    async def call(self, method: str, path: str, persona: str = "MEMBER", *,
                   json_body: Any = None, account: str | None = None,
                   raw: bytes | None = None) -> tuple[int, Any]:
        client = self.test_app.test_client()
        headers = self.personas[persona].headers()
        kwargs: dict[str, Any] = {"headers": headers}
        if json_body is not None:
            kwargs["json"] = json_body
        if raw is not None:
            kwargs["data"] = raw
            headers["Content-Type"] = "application/json"
        response = await getattr(client, method)(self.url(path, account), **kwargs)
        text = await response.get_data(as_text=True)
        if response.status_code >= 400:
            assert response.content_type == PROBLEM, (response.status_code, text)
        body = json.loads(text) if text else None
        return response.status_code, body

    async def ok(self, method: str, path: str, persona: str = "MEMBER", *,
                 json_body: Any = None, status: int = 200, account: str | None = None) -> Any:
        code, body = await self.call(method, path, persona, json_body=json_body,
                                     account=account)
        assert code == status, (code, body)
        return body

    async def problem(self, method: str, path: str, persona: str = "MEMBER", *,
                      json_body: Any = None, status: int, account: str | None = None
                      ) -> dict[str, Any]:
        code, body = await self.call(method, path, persona, json_body=json_body,
                                     account=account)
        assert code == status, (code, body)
        assert body["status"] == status and body["detail"], body
        assert body["type"].startswith("https://synergyhub.dev/problems/"), body
        assert "Traceback" not in json.dumps(body)
        return dict(body)

    async def prompt(self, persona: str = "MEMBER", **fields: Any) -> dict[str, Any]:
        body = {"title": "A prompt", "template": "Hello {{ name }}",
                "variables": [{"name": "name"}], **fields}
        result: dict[str, Any] = await self.ok("post", "/prompts", persona, json_body=body,
                                               status=201)
        return result


@pytest_asyncio.fixture(scope="package", loop_scope="session")
async def studio(synergyhub_settings: Any, synergyhub_stack: Any) -> AsyncIterator[Studio]:
    with FakeAIServer() as fake:
        settings = synergyhub_settings.model_copy(update={
            "mongodb_database": f"{synergyhub_settings.mongodb_database}_studio",
            "openai_api_key": SecretStr(fake.openai_key),
            "openai_base_url": fake.openai_base_url,
            "openai_model": MODEL,
        })
        app = create_app(settings)
        async with app.test_app() as test_app:
            services = app.extensions["synergyhub"]
            personas = await seed_personas(services.db, synergyhub_stack.firebase_auth_host,
                                           enabled_plugins=["studio"])
            yield Studio(test_app, services, personas, fake)


@pytest.fixture
def fake(studio: Studio) -> FakeAIServer:
    studio.fake.reset()
    return studio.fake
