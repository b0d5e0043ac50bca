"""Ephemeral-token providers against FakeAIServer (openai SDK and httpx for real)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta

import httpx
import pytest
from pydantic import SecretStr

from core.ai.clients import OpenAIClientPool
from core.ai.errors import AIUnavailable, AIUpstreamError
from core.ai.tokens import (
    HeyGenLegacyProvider,
    LiveAvatarProvider,
    MintedToken,
    MintRequest,
    OpenAIRealtimeProvider,
    OpenAITranscriptionProvider,
    ProviderClients,
    ProviderCredentials,
    TokenProvider,
    clamp_ttl,
    scrub_secrets,
)
from core.testing.fake_ai import FakeAIServer, key_only_in

PINNED = MintRequest(
    model="gpt-realtime-pinned",
    voice="marin",
    instructions="You are the Northside Hospital intake assistant.",
    ttl_seconds=120,
)


@asynccontextmanager
async def clients() -> AsyncIterator[ProviderClients]:
    pool = OpenAIClientPool()
    async with httpx.AsyncClient() as http:
        try:
            yield ProviderClients(http=http, openai=pool)
        finally:
            await pool.aclose()


def openai_creds(fake: FakeAIServer, **extra: object) -> ProviderCredentials:
    return ProviderCredentials.model_validate(
        {"api_key": fake.openai_key, "base_url": fake.openai_base_url, **extra}
    )


def assert_no_secret(token: MintedToken, *secrets: str) -> None:
    for text in (repr(token), str(token), token.model_dump_json(), json.dumps(token.session)):
        for secret in secrets:
            assert secret not in text
    assert token.value not in repr(token)  # the ephemeral value stays out of logs too


def test_every_provider_meets_the_protocol() -> None:
    providers = [
        OpenAIRealtimeProvider(),
        OpenAITranscriptionProvider(),
        LiveAvatarProvider(),
        HeyGenLegacyProvider(),
    ]
    assert all(isinstance(p, TokenProvider) for p in providers)
    assert [p.name for p in providers if isinstance(p, TokenProvider)] == [
        "openai-realtime",
        "openai-transcription",
        "liveavatar",
        "heygen",
    ]


@pytest.mark.asyncio
async def test_openai_realtime_mint_sends_pinned_session(fake: FakeAIServer) -> None:
    tools = ({"type": "function", "name": "lookup_patient", "parameters": {"type": "object"}},)
    request = PINNED.model_copy(update={"tools": tools})
    before = datetime.now(UTC)
    async with clients() as c:
        token = await OpenAIRealtimeProvider().mint(
            request=request, credentials=openai_creds(fake), clients=c
        )
    sent = fake.requests_to("/v1/realtime/client_secrets")
    assert len(sent) == 1
    body = sent[0].json
    assert body["expires_after"] == {"anchor": "created_at", "seconds": 120}
    assert body["session"] == {
        "type": "realtime",
        "model": "gpt-realtime-pinned",
        "instructions": "You are the Northside Hospital intake assistant.",
        "audio": {"output": {"voice": "marin"}},
        "tools": [dict(t) for t in tools],
    }
    assert key_only_in(sent, fake.openai_key, "authorization")
    assert token.provider == "openai-realtime"
    assert token.value.startswith("ek_")
    assert token.session["model"] == "gpt-realtime-pinned"
    assert token.session_id is not None and token.session_id.startswith("sess_")
    assert before + timedelta(seconds=110) < token.expires_at < before + timedelta(seconds=130)
    assert token.ttl_enforced
    assert_no_secret(token, fake.openai_key)
    assert token.model_dump()["value"] == token.value  # the browser does get the value


@pytest.mark.asyncio
async def test_openai_transcription_mint_puts_model_under_audio_input(fake: FakeAIServer) -> None:
    request = MintRequest(
        model="gpt-4o-transcribe", instructions="Medical vocabulary.", language="en"
    )
    async with clients() as c:
        token = await OpenAITranscriptionProvider().mint(
            request=request, credentials=openai_creds(fake), clients=c
        )
    session = fake.requests_to("/v1/realtime/client_secrets")[0].json["session"]
    assert session == {
        "type": "transcription",
        "audio": {
            "input": {
                "transcription": {
                    "model": "gpt-4o-transcribe",
                    "prompt": "Medical vocabulary.",
                    "language": "en",
                }
            }
        },
    }
    assert token.provider == "openai-transcription"
    assert token.session["type"] == "transcription"
    assert_no_secret(token, fake.openai_key)


@pytest.mark.asyncio
@pytest.mark.parametrize(("ttl", "ceiling", "sent"), [(1, 7200, 10), (100_000, 300, 300)])
async def test_ttl_is_clamped(fake: FakeAIServer, ttl: int, ceiling: int, sent: int) -> None:
    request = PINNED.model_copy(update={"ttl_seconds": ttl, "ttl_ceiling_seconds": ceiling})
    async with clients() as c:
        await OpenAIRealtimeProvider().mint(
            request=request, credentials=openai_creds(fake), clients=c
        )
    assert fake.last_request.json["expires_after"]["seconds"] == sent


def test_clamp_ttl_bounds() -> None:
    assert clamp_ttl(MintRequest(ttl_seconds=5), 7200) == 10
    assert clamp_ttl(MintRequest(ttl_seconds=600), 7200) == 600
    assert clamp_ttl(MintRequest(ttl_seconds=9000), 7200) == 7200
    assert clamp_ttl(MintRequest(ttl_seconds=9000, ttl_ceiling_seconds=60), 7200) == 60
    assert clamp_ttl(MintRequest(ttl_seconds=600), 30) == 30


@pytest.mark.asyncio
async def test_pinned_mcp_credentials_are_scrubbed_from_the_echo(fake: FakeAIServer) -> None:
    mcp_secret = "mcp-bearer-0123456789"
    tool = {
        "type": "mcp",
        "server_label": "records",
        "server_url": "https://mcp.example.test",
        "authorization": mcp_secret,
        "headers": {"X-Api-Key": mcp_secret},
    }
    async with clients() as c:
        token = await OpenAIRealtimeProvider().mint(
            request=PINNED.model_copy(update={"tools": (tool,)}),
            credentials=openai_creds(fake),
            clients=c,
        )
    assert fake.last_request.json["session"]["tools"][0]["authorization"] == mcp_secret
    assert token.session["tools"][0]["server_label"] == "records"
    assert_no_secret(token, fake.openai_key, mcp_secret)


@pytest.mark.asyncio
async def test_openai_mint_wrong_key_and_5xx(fake: FakeAIServer) -> None:
    wrong = ProviderCredentials(
        api_key=SecretStr("sk-not-the-key-999999"), base_url=fake.openai_base_url
    )
    async with clients() as c:
        with pytest.raises(AIUpstreamError) as info:
            await OpenAIRealtimeProvider().mint(request=PINNED, credentials=wrong, clients=c)
        assert info.value.status_code == 401
        assert "sk-not-the-key-999999" not in str(info.value)
        assert info.value.__context__ is None

        fake.fail_next(status=500, times=1, retry_after_ms=10)
        token = await OpenAIRealtimeProvider().mint(
            request=PINNED, credentials=openai_creds(fake, max_retries=1), clients=c
        )
        assert token.value.startswith("ek_")

        fake.fail_next(status=500, times=5, retry_after_ms=10)
        with pytest.raises(AIUpstreamError) as info:
            await OpenAIRealtimeProvider().mint(
                request=PINNED, credentials=openai_creds(fake, max_retries=1), clients=c
            )
        assert info.value.status_code == 500


@pytest.mark.asyncio
async def test_old_realtime_sessions_shape_is_refused_by_the_fake(fake: FakeAIServer) -> None:
    async with httpx.AsyncClient(base_url=fake.openai_base_url) as http:
        auth = {"Authorization": f"Bearer {fake.openai_key}"}
        old = await http.post("/realtime/sessions", json={"model": "gpt-realtime"}, headers=auth)
        flat = await http.post(
            "/realtime/client_secrets", json={"model": "gpt-realtime"}, headers=auth
        )
        top_model = await http.post(
            "/realtime/client_secrets",
            json={"session": {"type": "transcription", "model": "x"}},
            headers=auth,
        )
        short = await http.post(
            "/realtime/client_secrets",
            json={"expires_after": {"anchor": "created_at", "seconds": 5}},
            headers=auth,
        )
        anonymous = await http.post("/realtime/client_secrets", json={})
    assert old.status_code == 400
    assert flat.status_code == 400 and flat.json()["error"]["code"] == "unknown_parameter"
    assert top_model.status_code == 400
    assert short.status_code == 400
    assert anonymous.status_code == 401


@pytest.mark.asyncio
async def test_liveavatar_mint(fake: FakeAIServer) -> None:
    request = MintRequest(
        avatar_id="3c90c3cc-0d44-4b50-8888-8dd25736052a",
        voice="voice-1",
        language="en",
        ttl_seconds=300,
        options={"avatar_persona": {"context_id": "ctx-1"}, "is_sandbox": True},
    )
    creds = ProviderCredentials(api_key=SecretStr(fake.liveavatar_key), base_url=fake.base_url)
    async with clients() as c:
        token = await LiveAvatarProvider().mint(request=request, credentials=creds, clients=c)
    sent = fake.requests_to("/v1/sessions/token")
    assert len(sent) == 1
    assert sent[0].json == {
        "mode": "FULL",
        "avatar_id": "3c90c3cc-0d44-4b50-8888-8dd25736052a",
        "avatar_persona": {"voice_id": "voice-1", "language": "en", "context_id": "ctx-1"},
        "is_sandbox": True,
    }
    assert key_only_in(sent, fake.liveavatar_key, "x-api-key")
    assert token.provider == "liveavatar"
    assert token.session_id is not None
    assert token.session["session_id"] == token.session_id
    assert token.value.count(".") == 2  # the fake's JWT-shaped session token
    assert not token.ttl_enforced
    # expires_at comes from the token's exp (fake: +1 h), not our 300 s policy
    assert token.expires_at > datetime.now(UTC) + timedelta(minutes=50)
    assert_no_secret(token, fake.liveavatar_key)


@pytest.mark.asyncio
async def test_liveavatar_needs_an_avatar_and_the_right_key(fake: FakeAIServer) -> None:
    creds = ProviderCredentials(api_key=SecretStr(fake.liveavatar_key), base_url=fake.base_url)
    wrong = ProviderCredentials(api_key=SecretStr("la-wrong-key-123456"), base_url=fake.base_url)
    async with clients() as c:
        with pytest.raises(AIUnavailable, match="avatar_id"):
            await LiveAvatarProvider().mint(request=MintRequest(), credentials=creds, clients=c)
        assert fake.requests == []
        with pytest.raises(AIUpstreamError) as info:
            await LiveAvatarProvider().mint(
                request=MintRequest(avatar_id="a"), credentials=wrong, clients=c
            )
    assert info.value.status_code == 401
    assert info.value.upstream_code == "4010"
    assert "la-wrong-key-123456" not in str(info.value)
    assert "Invalid API key" not in str(info.value)  # upstream body is not repeated


@pytest.mark.asyncio
async def test_liveavatar_retries_5xx_then_gives_up(fake: FakeAIServer) -> None:
    creds = ProviderCredentials(
        api_key=SecretStr(fake.liveavatar_key), base_url=fake.base_url, max_retries=1
    )
    request = MintRequest(avatar_id="a")
    async with clients() as c:
        fake.fail_next(status=503, times=1)
        token = await LiveAvatarProvider().mint(request=request, credentials=creds, clients=c)
        assert token.value
        assert len(fake.requests_to("/v1/sessions/token")) == 2
        fake.reset()
        fake.fail_next(status=503, times=3)
        with pytest.raises(AIUpstreamError) as info:
            await LiveAvatarProvider().mint(request=request, credentials=creds, clients=c)
    assert info.value.status_code == 503
    assert len(fake.requests_to("/v1/sessions/token")) == 2


@pytest.mark.asyncio
async def test_avatar_timeout(fake: FakeAIServer) -> None:
    creds = ProviderCredentials(
        api_key=SecretStr(fake.heygen_key),
        base_url=fake.base_url,
        timeout_seconds=0.3,
        max_retries=0,
    )
    fake.delay_next(2.0)
    async with clients() as c:
        with pytest.raises(AIUpstreamError, match=r"did not answer within 0\.3s"):
            await HeyGenLegacyProvider().mint(request=PINNED, credentials=creds, clients=c)


@pytest.mark.asyncio
async def test_heygen_legacy_mint(fake: FakeAIServer) -> None:
    creds = ProviderCredentials(api_key=SecretStr(fake.heygen_key), base_url=fake.base_url)
    request = MintRequest(avatar_id="Anna_public", voice="v1", ttl_seconds=900)
    before = datetime.now(UTC)
    async with clients() as c:
        token = await HeyGenLegacyProvider().mint(request=request, credentials=creds, clients=c)
        wrong = ProviderCredentials(api_key=SecretStr("hg-wrong-1234567"), base_url=fake.base_url)
        with pytest.raises(AIUpstreamError) as info:
            await HeyGenLegacyProvider().mint(request=request, credentials=wrong, clients=c)
    sent = fake.requests_to("/v1/streaming.create_token")
    assert key_only_in(sent, fake.heygen_key, "x-api-key") is False  # the wrong key was sent too
    assert key_only_in(sent[:1], fake.heygen_key, "x-api-key")
    assert token.provider == "heygen"
    assert token.session == {"avatar_id": "Anna_public", "voice": "v1"}
    assert not token.ttl_enforced
    assert before + timedelta(seconds=890) < token.expires_at < before + timedelta(seconds=910)
    assert_no_secret(token, fake.heygen_key)
    assert info.value.status_code == 401
    assert info.value.upstream_code == "400112"
    assert "hg-wrong-1234567" not in str(info.value)


@pytest.mark.asyncio
async def test_redirects_are_not_followed_with_the_key() -> None:
    seen: list[str] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(str(request.url))
        return httpx.Response(307, headers={"Location": "https://elsewhere.test/steal"})

    creds = ProviderCredentials(
        api_key=SecretStr("la-key-0000000000"), base_url="https://api.liveavatar.test"
    )
    async with httpx.AsyncClient(transport=httpx.MockTransport(handler)) as http:
        pool = OpenAIClientPool()
        with pytest.raises(AIUpstreamError) as info:
            await LiveAvatarProvider().mint(
                request=MintRequest(avatar_id="a"),
                credentials=creds,
                clients=ProviderClients(http=http, openai=pool),
            )
        await pool.aclose()
    assert seen == ["https://api.liveavatar.test/v1/sessions/token"]
    assert info.value.status_code == 307


def test_scrub_secrets() -> None:
    echoed = {
        "id": "sess_1",
        "client_secret": {"value": "ek_x"},
        "max_output_tokens": 100,
        "tools": [{"name": "t", "api_key": "k", "headers": {"a": "b"}, "note": "uses sk-master"}],
    }
    assert scrub_secrets(echoed, ["sk-master"]) == {
        "id": "sess_1",
        "max_output_tokens": 100,
        "tools": [{"name": "t", "note": "uses [redacted]"}],
    }


def test_credentials_validation() -> None:
    for bad in ({"api_key": " "}, {"api_key": "k", "base_url": "https://u:p@h"}):
        with pytest.raises(ValueError):
            ProviderCredentials.model_validate(bad)
    creds = ProviderCredentials(api_key=SecretStr("very-secret-key"))
    assert "very-secret-key" not in repr(creds)
    assert "very-secret-key" not in creds.model_dump_json()
