"""The fake itself: lifecycle, recording, scripting and the minimal Responses API."""

from __future__ import annotations

import httpx
import openai
import pytest

from core.testing.fake_ai import FakeAIServer


def test_server_lifecycle_and_free_ports() -> None:
    with FakeAIServer() as one, FakeAIServer() as two:
        assert one.port != two.port
        assert one.base_url.startswith("http://127.0.0.1:")
        response = httpx.post(f"{one.base_url}/v1/nowhere", json={})
        assert response.status_code == 404
        assert one.requests[0].path == "/v1/nowhere"
    with pytest.raises(httpx.ConnectError):
        httpx.post(f"{one.base_url}/v1/nowhere", json={}, timeout=1)
    server = FakeAIServer().start()
    server.stop()
    server.stop()  # idempotent


@pytest.mark.asyncio
async def test_responses_endpoint_through_the_sdk(fake: FakeAIServer) -> None:
    fake.next_chat_reply("from responses", usage=(4, 2))
    client = openai.AsyncOpenAI(
        api_key=fake.openai_key, base_url=fake.openai_base_url, max_retries=0
    )
    async with client:
        response = await client.responses.create(model="gpt-pinned", input="hi")
    assert response.output_text == "from responses"
    assert response.usage is not None and response.usage.total_tokens == 6
    recorded = fake.last_request
    assert recorded.method == "POST"
    assert recorded.json == {"model": "gpt-pinned", "input": "hi"}
    assert recorded.secret_locations(fake.openai_key) == ["header:authorization"]


@pytest.mark.asyncio
async def test_scripts_are_consumed_in_order_and_by_path(fake: FakeAIServer) -> None:
    fake.fail_next(status=429, times=2, path="/v1/sessions/token")
    async with httpx.AsyncClient(base_url=fake.base_url) as http:
        other = await http.post(
            "/v1/streaming.create_token", headers={"x-api-key": fake.heygen_key}
        )
        first = await http.post("/v1/sessions/token", json={})
        second = await http.post("/v1/sessions/token", json={})
        third = await http.post(
            "/v1/sessions/token", json={}, headers={"X-API-KEY": fake.liveavatar_key}
        )
    assert other.status_code == 200 and other.json()["data"]["token"]
    assert [first.status_code, second.status_code] == [429, 429]
    assert third.status_code == 422  # past the script: real validation (no avatar_id)
    assert len(fake.requests) == 4


def test_next_chat_reply_checks_chunks(fake: FakeAIServer) -> None:
    with pytest.raises(ValueError):
        fake.next_chat_reply("abc", chunks=["a", "b"])
