"""``services.ai`` as plugins use it: settings, per-Solution overrides, metering, 503/502.

A probe feature plugin calls ``services.ai.chat(account_id=..., ...)`` from a
route, the way a real plugin would; the provider is FakeAIServer, reached by
the real openai SDK.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from quart import Blueprint, request

from core.ai.gateway import AIProviderConfig
from core.ai.plugin import SolutionAIGateway
from core.hooks import PluginManifest, hookimpl
from core.kernel import context
from core.kernel.app import create_app
from core.testing.fake_ai import FakeAIServer, key_only_in
from core.testing.tenancy import Personas, seed_personas

pytestmark = pytest.mark.asyncio(loop_scope="session")

CHAT_PATH = "/v1/chat/completions"
PLUGIN = "aiprobe"


class AIProbePlugin:
    """A feature plugin whose routes use the AI gateway through the kernel services."""

    blueprint = Blueprint("aiprobe", __name__)

    @staticmethod
    @blueprint.post("/summarize")
    async def summarize(account_id: str) -> dict[str, Any]:
        ctx = await context.enter_account(account_id)
        text = (await request.get_json())["text"]
        result = await context.services().ai.chat(
            account_id=ctx.account.id,
            messages=[{"role": "system", "content": "Summarize."},
                      {"role": "user", "content": text}])
        return {"summary": result.text, "model": result.model}

    @staticmethod
    @blueprint.post("/extract")
    async def extract(account_id: str) -> dict[str, Any]:
        ctx = await context.enter_account(account_id)
        value, _ = await context.services().ai.chat_json(
            account_id=ctx.account.id, messages=[{"role": "user", "content": "Give JSON."}])
        return {"value": value}

    @staticmethod
    @blueprint.post("/stream")
    async def stream(account_id: str) -> dict[str, Any]:
        ctx = await context.enter_account(account_id)
        parts = []
        async with await context.services().ai.stream_chat(
                account_id=ctx.account.id, messages=[{"role": "user", "content": "Hi"}]) as s:
            async for delta in s:
                parts.append(delta)
        return {"text": "".join(parts)}

    @hookimpl
    def plugin_manifest(self) -> PluginManifest:
        return PluginManifest(name=PLUGIN, version="1.0", title="AI probe")

    @hookimpl
    def register_routes(self) -> Blueprint:
        return self.blueprint


@dataclass
class AIApp:
    test_app: Any
    services: Any
    personas: Personas
    fake: FakeAIServer

    def client(self) -> Any:
        return self.test_app.test_client()

    def url(self, action: str, account_id: str | None = None) -> str:
        return f"/api/v1/accounts/{account_id or self.personas.home_account}/{PLUGIN}/{action}"


async def _build(settings: Any) -> Any:
    return create_app(settings, extra_plugins=[(PLUGIN, AIProbePlugin())])


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def ai(fake_ai_settings: Any, fake_ai: FakeAIServer, synergyhub_stack: Any
             ) -> AsyncIterator[AIApp]:
    settings = fake_ai_settings.model_copy(update={
        "mongodb_database": f"{fake_ai_settings.mongodb_database}_aiwiring",
        "openai_model": "gpt-platform-default"})
    app = await _build(settings)
    async with app.test_app() as test_app:
        services = app.extensions["synergyhub"]
        personas = await seed_personas(services.db, synergyhub_stack.firebase_auth_host,
                                       enabled_plugins=["v2v", PLUGIN])
        yield AIApp(test_app, services, personas, fake_ai)


@pytest.fixture
def fake(ai: AIApp) -> FakeAIServer:
    ai.fake.reset()
    return ai.fake


async def _problem(response: Any, status: int) -> dict[str, Any]:
    text = await response.get_data(as_text=True)
    assert response.status_code == status, text
    assert response.content_type == "application/problem+json"
    body: dict[str, Any] = json.loads(text)
    return body


async def test_services_ai_is_the_gateway_configured_from_settings(ai: AIApp) -> None:
    gateway = ai.services.ai
    assert isinstance(gateway, SolutionAIGateway)
    config = gateway.default_config
    assert isinstance(config, AIProviderConfig)
    assert config.base_url == ai.fake.openai_base_url
    assert config.default_model == "gpt-platform-default"
    assert config.api_key.get_secret_value() == ai.fake.openai_key


async def test_plugin_chat_uses_the_platform_provider_and_meters_usage(
        ai: AIApp, fake: FakeAIServer) -> None:
    p = ai.personas
    fake.next_chat_reply("A short summary.", usage=(40, 7))
    response = await ai.client().post(ai.url("summarize"), json={"text": "Long text"},
                                      headers=p["MEMBER"].headers())
    assert response.status_code == 200, await response.get_data(as_text=True)
    assert await response.get_json() == {"summary": "A short summary.",
                                         "model": "gpt-platform-default"}
    sent = fake.requests_to(CHAT_PATH)
    assert len(sent) == 1 and sent[0].json["model"] == "gpt-platform-default"
    assert key_only_in(sent, fake.openai_key, "authorization")

    fake.next_chat_reply('Here you go: ```json\n{"ok": true}\n```', usage=(10, 5))
    response = await ai.client().post(ai.url("extract"), headers=p["MEMBER"].headers())
    assert (await response.get_json()) == {"value": {"ok": True}}

    usage = await ai.client().get(f"/api/v1/accounts/{p.home_account}/ai/usage",
                                  headers=p["ACCOUNT_ADMIN"].headers())
    assert usage.status_code == 200
    totals = (await usage.get_json())["totals"]
    assert totals == {"requests": 2, "prompt_tokens": 50, "completion_tokens": 12}
    denied = await ai.client().get(f"/api/v1/accounts/{p.home_account}/ai/usage",
                                   headers=p["MEMBER"].headers())
    await _problem(denied, 403)


async def test_streaming_meters_too(ai: AIApp, fake: FakeAIServer) -> None:
    account = ai.personas.home_account
    before = await ai.services.ai.meter.days(account)
    fake.next_chat_reply("one two three", usage=(3, 3))
    response = await ai.client().post(ai.url("stream"), headers=ai.personas["MEMBER"].headers())
    assert (await response.get_json()) == {"text": "one two three"}
    after = await ai.services.ai.meter.days(account)
    assert after[0]["requests"] == (before[0]["requests"] if before else 0) + 1


async def test_solution_overrides_model_and_only_superadmin_sets_base_url(
        ai: AIApp, fake: FakeAIServer) -> None:
    p = ai.personas
    url = f"/api/v1/solutions/{p.home_solution}/ai/settings"
    response = await ai.client().put(url, json={"values": {"default_model": "gpt-solution"}},
                                     headers=p["SOLUTION_ADMIN"].headers())
    assert response.status_code == 200, await response.get_data(as_text=True)
    assert (await response.get_json())["values"]["default_model"]["source"] == "solution"
    try:
        response = await ai.client().post(ai.url("summarize"), json={"text": "x"},
                                          headers=p["MEMBER"].headers())
        assert (await response.get_json())["model"] == "gpt-solution"
        assert fake.requests_to(CHAT_PATH)[-1].json["model"] == "gpt-solution"

        # Another Solution keeps the platform default.
        other = p.tenants[1].accounts[0]
        assert await ai.services.ai.config_for(other) is ai.services.ai.default_config

        response = await ai.client().put(
            url, json={"values": {"base_url": "https://collector.example/v1"}},
            headers=p["SOLUTION_ADMIN"].headers())
        assert "SUPERADMIN" in (await _problem(response, 403))["detail"]
        for bad in ("ftp://x", "https://user:pw@host/v1", "not a url"):
            response = await ai.client().put(url, json={"values": {"base_url": bad}},
                                             headers=p["SUPERADMIN"].headers())
            await _problem(response, 422)
        response = await ai.client().put(url, json={"values": {"api_key": "sk-nope"}},
                                         headers=p["SUPERADMIN"].headers())
        await _problem(response, 422)
        response = await ai.client().put(
            url, json={"values": {"base_url": fake.openai_base_url + "/"}},
            headers=p["SUPERADMIN"].headers())
        assert response.status_code == 200
        body = await (await ai.client().get(url, headers=p["SOLUTION_ADMIN"].headers())
                      ).get_json()
        assert body["values"]["base_url"]["value"] == fake.openai_base_url
        assert body["platform"] == {"configured": True, "model": "gpt-platform-default"}
        assert fake.openai_key not in json.dumps(body)
        member = await ai.client().get(url, headers=p["MEMBER"].headers())
        await _problem(member, 403)
    finally:
        await ai.client().put(url, json={"values": {"default_model": None, "base_url": None}},
                              headers=p["SUPERADMIN"].headers())


async def test_upstream_failure_is_a_502_problem_without_the_key(ai: AIApp,
                                                                 fake: FakeAIServer) -> None:
    fake.fail_next(401, times=3, path=CHAT_PATH, body={"error": {
        "message": f"Incorrect API key provided: {fake.openai_key}", "type": "invalid_request",
        "code": "invalid_api_key", "param": None}})
    response = await ai.client().post(ai.url("summarize"), json={"text": "x"},
                                      headers=ai.personas["MEMBER"].headers())
    body = await _problem(response, 502)
    assert body["type"].endswith("/ai-upstream-error")
    assert "401" in body["detail"] and fake.openai_key not in json.dumps(body)


async def test_no_provider_configured_answers_503_saying_what_to_set(
        ai: AIApp, fake: FakeAIServer) -> None:
    settings = ai.services.settings.model_copy(update={"openai_api_key": None})
    app = await _build(settings)
    async with app.test_app() as test_app:
        assert app.extensions["synergyhub"].ai.default_config is None
        response = await test_app.test_client().post(
            ai.url("summarize"), json={"text": "x"}, headers=ai.personas["MEMBER"].headers())
        body = await _problem(response, 503)
        assert "OPENAI_API_KEY" in body["detail"]
        assert body["type"].endswith("/ai-not-configured")
    assert fake.requests == []
