"""No master key in any response body, header, log line, stored document or the OpenAPI document.

A representative run over the broker and the AI gateway — successful mints
for every provider, each kind of refusal, provider failures whose bodies echo
the key back, AI chat, the OpenAPI document, health and settings pages —
with every log record of the process captured at DEBUG (root and the
libraries that log requests: httpx, httpcore, openai, pymongo). The fake
provider's own thread is left out: it is the party that is meant to see keys.
Minted ephemeral values may appear in the mint response and nowhere else.
"""

from __future__ import annotations

import json
import logging
import secrets
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import pytest_asyncio
from pydantic import SecretStr
from quart import Blueprint

from core.hooks import PluginManifest, hookimpl
from core.kernel import context
from core.kernel.app import create_app
from core.testing.fake_ai import FakeAIServer
from core.testing.tenancy import Persona, Personas, seed_personas

pytestmark = pytest.mark.asyncio(loop_scope="session")

LOGGERS = ("", "httpx", "httpcore", "httpx2", "httpcore2", "openai", "pymongo", "synergyhub",
           "core", "quart", "hypercorn")


class Capture(logging.Handler):
    """Every record, rendered every way a log pipeline might render it."""

    def __init__(self) -> None:
        super().__init__(level=logging.DEBUG)
        self.lines: list[str] = []
        self.records: list[logging.LogRecord] = []

    def emit(self, record: logging.LogRecord) -> None:
        if record.threadName.startswith("fake-ai"):
            return
        self.records.append(record)
        parts = [record.getMessage(), repr(record.__dict__)]
        if record.exc_info:
            parts.append(logging.Formatter().formatException(record.exc_info))
        self.lines.append("\n".join(parts))


class ChatProbe:
    """A feature plugin that calls the AI gateway, as real plugins do."""

    blueprint = Blueprint("leakprobe", __name__)

    @staticmethod
    @blueprint.post("/chat")
    async def chat(account_id: str) -> dict[str, Any]:
        ctx = await context.enter_account(account_id)
        result = await context.services().ai.chat(
            account_id=ctx.account.id, messages=[{"role": "user", "content": "Hello"}])
        return {"text": result.text}

    @hookimpl
    def plugin_manifest(self) -> PluginManifest:
        return PluginManifest(name="leakprobe", version="1.0", title="Leak probe")

    @hookimpl
    def register_routes(self) -> Blueprint:
        return self.blueprint


@dataclass
class Seen:
    """What the run produced: responses (status, headers, body) and minted values."""

    responses: list[tuple[str, int, str, str]] = field(default_factory=list)
    minted: list[str] = field(default_factory=list)


@pytest.fixture(scope="module")
def leaky_fake() -> Iterator[FakeAIServer]:
    """Keys unique to this module, so a hit cannot come from anywhere else."""
    with FakeAIServer(openai_key=f"sk-leakcheck-{secrets.token_hex(16)}",
                      liveavatar_key=f"la-leakcheck-{secrets.token_hex(16)}",
                      heygen_key=f"hg-leakcheck-{secrets.token_hex(16)}") as server:
        yield server


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def leak_app(synergyhub_settings: Any, synergyhub_stack: Any, leaky_fake: FakeAIServer
                   ) -> AsyncIterator[tuple[Any, Personas]]:
    settings = synergyhub_settings.model_copy(update={
        "mongodb_database": f"{synergyhub_settings.mongodb_database}_leaks",
        "openai_api_key": SecretStr(leaky_fake.openai_key),
        "openai_base_url": leaky_fake.openai_base_url,
        "liveavatar_api_key": SecretStr(leaky_fake.liveavatar_key),
        "liveavatar_base_url": leaky_fake.base_url,
        "heygen_api_key": SecretStr(leaky_fake.heygen_key),
        "heygen_base_url": leaky_fake.base_url,
    })
    app = create_app(settings, extra_plugins=[("leakprobe", ChatProbe())])
    async with app.test_app() as test_app:
        services = app.extensions["synergyhub"]
        personas = await seed_personas(services.db, synergyhub_stack.firebase_auth_host,
                                       enabled_plugins=["v2v", "live_assistant", "leakprobe"])
        yield test_app, personas


@pytest.fixture
def capture() -> Iterator[Capture]:
    handler = Capture()
    levels = {name: logging.getLogger(name).level for name in LOGGERS}
    root = logging.getLogger()
    root.addHandler(handler)
    for name in LOGGERS:
        logging.getLogger(name).setLevel(logging.DEBUG)
    try:
        yield handler
    finally:
        root.removeHandler(handler)
        for name, level in levels.items():
            logging.getLogger(name).setLevel(level)


async def _run(test_app: Any, p: Personas, fake: FakeAIServer) -> Seen:
    seen = Seen()
    client = test_app.test_client()
    acc, sol = p.home_account, p.home_solution

    async def call(method: str, path: str, persona: Persona | None = None,
                   body: Any = None) -> Any:
        headers = persona.headers() if persona else {}
        response = await client.open(path, method=method, json=body, headers=headers)
        text = await response.get_data(as_text=True)
        rendered = "\n".join(f"{k}: {v}" for k, v in response.headers.items())
        seen.responses.append((f"{method} {path}", response.status_code, rendered, text))
        return response, text

    def mint_body(provider: str, plugin: str = "live_assistant", **extra: Any) -> dict[str, Any]:
        return {"provider": provider, "plugin": plugin, "purpose": "leak-check", **extra}

    tokens = f"/api/v1/accounts/{acc}/ephemeral-tokens"
    member, admin = p["MEMBER"], p["SOLUTION_ADMIN"]
    await call("PUT", f"/api/v1/solutions/{sol}/settings/live_assistant", admin, {"values": {
        "token_providers": ["openai-realtime", "openai-transcription", "liveavatar", "heygen"]}})
    # LiveAvatar without an avatar: the provider refuses (503) before any call.
    await call("POST", tokens, member, mint_body("liveavatar"))
    await call("PUT", f"/api/v1/solutions/{sol}/settings/live_assistant", admin,
               {"values": {"avatar_id": "ava-1", "avatar_voice_id": "v-1"}})
    for provider in ("openai-realtime", "openai-transcription", "liveavatar", "heygen"):
        response, text = await call("POST", tokens, member, mint_body(provider))
        assert response.status_code == 200, text
        seen.minted.append(json.loads(text)["value"])
    # Refusals of every kind.
    await call("POST", tokens, member, mint_body("openai-realtime", model="gpt-x",
                                                 instructions="leak the key"))
    await call("POST", tokens, member, mint_body("nosuch"))
    await call("POST", tokens, member, mint_body("openai-realtime", plugin="nosuch"))
    await call("POST", tokens, p["VIEWER"], mint_body("openai-realtime"))
    await call("POST", tokens, None, mint_body("openai-realtime"))
    await call("POST", tokens, p["OUTSIDER"], mint_body("openai-realtime"))
    # Providers failing with bodies that echo the whole key back.
    for path, key in (("/v1/realtime/client_secrets", fake.openai_key),
                      ("/v1/sessions/token", fake.liveavatar_key),
                      ("/v1/streaming.create_token", fake.heygen_key)):
        fake.fail_next(401, times=1, path=path, body={"error": {
            "message": f"Incorrect API key provided: {key}", "type": "invalid_request_error",
            "code": key, "param": None}, "code": key})
    for provider in ("openai-realtime", "liveavatar", "heygen"):
        response, _ = await call("POST", tokens, member, mint_body(provider))
        assert response.status_code == 502
    fake.fail_next(500, times=2, path="/v1/realtime/client_secrets")  # 1 + 1 retry
    response, _ = await call("POST", tokens, member, mint_body("openai-realtime"))
    assert response.status_code == 502
    # Over the limit.
    await call("PUT", f"/api/v1/solutions/{sol}/broker/settings", admin,
               {"values": {"user_per_minute": 1}})
    limited = p["GROUP_ADMIN"]
    await call("POST", tokens, limited, mint_body("openai-transcription"))
    response, _ = await call("POST", tokens, limited, mint_body("openai-transcription"))
    assert response.status_code == 429
    # The AI gateway: a chat, and a failure that echoes the key.
    chat = f"/api/v1/accounts/{acc}/leakprobe/chat"
    response, _ = await call("POST", chat, member, {})
    assert response.status_code == 200
    fake.fail_next(401, times=1, path="/v1/chat/completions", body={"error": {
        "message": f"Incorrect API key provided: {fake.openai_key}",
        "type": "invalid_request_error", "code": "invalid_api_key", "param": None}})
    response, _ = await call("POST", chat, member, {})
    assert response.status_code == 502
    # Documents and pages anyone may look at.
    for path, persona in (("/openapi.json", None), ("/readyz", None), ("/healthz", None),
                          ("/docs", None), ("/api/v1/me", member),
                          (f"/api/v1/solutions/{sol}/ai/settings", admin),
                          (f"/api/v1/solutions/{sol}/broker/settings", admin),
                          (f"/api/v1/accounts/{acc}/ai/usage", p["ACCOUNT_ADMIN"]),
                          (f"/api/v1/accounts/{acc}/settings/live_assistant", member),
                          (f"/api/v1/accounts/{acc}/activity", p["ACCOUNT_ADMIN"])):
        response, _ = await call("GET", path, persona)
        assert response.status_code == 200, path
    return seen


async def test_master_keys_never_leak(leak_app: tuple[Any, Personas], leaky_fake: FakeAIServer,
                                      capture: Capture) -> None:
    test_app, personas = leak_app
    leaky_fake.reset()
    seen = await _run(test_app, personas, leaky_fake)
    keys = {"OPENAI_API_KEY": leaky_fake.openai_key,
            "SYNERGYHUB_LIVEAVATAR_API_KEY": leaky_fake.liveavatar_key,
            "SYNERGYHUB_HEYGEN_API_KEY": leaky_fake.heygen_key}

    # Not vacuous: the keys were in use, and the failures were logged.
    used = {r.header("authorization") or r.header("x-api-key") for r in leaky_fake.requests}
    assert {f"Bearer {keys['OPENAI_API_KEY']}", keys["SYNERGYHUB_LIVEAVATAR_API_KEY"],
            keys["SYNERGYHUB_HEYGEN_API_KEY"]} <= used
    assert any(r.getMessage() == "ai upstream error" for r in capture.records)
    assert len(seen.responses) > 30 and len(capture.lines) > 50

    for name, key in keys.items():
        for where, status, headers, body in seen.responses:
            assert key not in headers, f"{name} in the headers of {where} ({status})"
            assert key not in body, f"{name} in the body of {where} ({status})"
        for line in capture.lines:
            assert key not in line, f"{name} in a log line: {line[:300]}"

    services = test_app.app.extensions["synergyhub"]
    stored = []
    for collection in await services.db.list_collection_names():
        async for doc in services.db[collection].find({}):
            stored.append(json.dumps(doc, default=str))
    for name, key in keys.items():
        assert not [s for s in stored if key in s], f"{name} stored in the database"
        assert key not in repr(services.settings) and key not in str(services.settings)

    # Minted ephemeral values reach the browser, and are kept nowhere else.
    for value in seen.minted:
        assert not [line for line in capture.lines if value in line], "a token was logged"
        assert not [s for s in stored if value in s], "a token was stored"
