"""AIGateway against FakeAIServer, through the real openai SDK and httpx2."""

from __future__ import annotations

import json
import logging
import time

import pytest

from core.ai.errors import AIOutputError, AIUnavailable, AIUpstreamError
from core.ai.gateway import AIGateway, AIProviderConfig, ChatResult, Usage
from core.ai.usage import InMemoryUsageMeter, UsageRecord
from core.testing.fake_ai import FakeAIServer, key_only_in

USER = [{"role": "user", "content": "Say hello"}]


def _with(config: AIProviderConfig, **changes: object) -> AIProviderConfig:
    return AIProviderConfig.model_validate({**config.model_dump(), **changes})


@pytest.mark.asyncio
async def test_chat_returns_text_usage_and_meters(
    fake: FakeAIServer, config: AIProviderConfig
) -> None:
    fake.next_chat_reply("Hello there!", usage=(12, 3))
    meter = InMemoryUsageMeter()
    async with AIGateway() as gateway:
        result = await gateway.chat(
            config=config, messages=USER, meter=meter, account_id="acc-1", temperature=0.2
        )
    assert result == ChatResult(
        text="Hello there!",
        model=config.default_model,
        usage=Usage(prompt_tokens=12, completion_tokens=3, total_tokens=15),
        finish_reason="stop",
    )
    assert meter.records == [UsageRecord("acc-1", 1, 12, 3)]
    sent = fake.requests_to("/v1/chat/completions")
    assert len(sent) == 1
    assert sent[0].json["model"] == config.default_model  # the pinned model
    assert sent[0].json["messages"] == USER
    assert sent[0].json["temperature"] == 0.2
    assert key_only_in(sent, fake.openai_key, "authorization")


@pytest.mark.asyncio
async def test_model_override_and_default_config(
    fake: FakeAIServer, config: AIProviderConfig
) -> None:
    meter = InMemoryUsageMeter()
    async with AIGateway(default_config=config, meter=meter) as gateway:
        result = await gateway.chat(messages=USER, model="other-model", account_id="acc-2")
        await gateway.chat(messages=USER)  # no account: platform call, not metered
    assert result.model == "other-model"
    assert result.text == "fake reply to: Say hello"
    assert fake.requests_to("/v1/chat/completions")[0].json["model"] == "other-model"
    assert [r.account_id for r in meter.records] == ["acc-2"]


@pytest.mark.asyncio
async def test_streaming_yields_deltas_in_order_then_usage(
    fake: FakeAIServer, config: AIProviderConfig
) -> None:
    fake.next_chat_reply("Hello, streaming world", chunks=["Hel", "lo, ", "stream", "ing world"])
    meter = InMemoryUsageMeter()
    async with AIGateway() as gateway:
        stream = await gateway.stream_chat(
            config=config, messages=USER, meter=meter, account_id="acc-s"
        )
        async with stream:
            deltas = [d async for d in stream]
    assert deltas == ["Hel", "lo, ", "stream", "ing world"]
    assert stream.result is not None
    assert stream.result.text == "Hello, streaming world"
    assert stream.result.finish_reason == "stop"
    usage = stream.result.usage
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens > 0
    assert meter.records == [UsageRecord("acc-s", 1, usage.prompt_tokens, usage.completion_tokens)]
    body = fake.requests_to("/v1/chat/completions")[0].json
    assert body["stream"] is True
    assert body["stream_options"] == {"include_usage": True}
    assert body["model"] == config.default_model


@pytest.mark.asyncio
async def test_stream_closed_early_meters_an_estimate_once(
    fake: FakeAIServer, config: AIProviderConfig
) -> None:
    fake.next_chat_reply("one two three four five six")
    meter = InMemoryUsageMeter()
    async with AIGateway() as gateway:
        stream = await gateway.stream_chat(
            config=config, messages=USER, meter=meter, account_id="acc-e"
        )
        async with stream:
            first = await stream.__anext__()
        await stream.aclose()  # idempotent
    assert first == "one "
    assert stream.result is None
    assert len(meter.records) == 1
    assert meter.records[0].requests == 1
    assert meter.records[0].prompt_tokens >= 1


@pytest.mark.asyncio
async def test_stream_cut_before_finish_is_an_upstream_error(
    fake: FakeAIServer, config: AIProviderConfig
) -> None:
    fake.cut_next_stream("partial answer that never ends", after_chunks=2)
    meter = InMemoryUsageMeter()
    got: list[str] = []
    async with AIGateway() as gateway:
        stream = await gateway.stream_chat(
            config=config, messages=USER, meter=meter, account_id="acc-c"
        )
        with pytest.raises(AIUpstreamError, match="ended the stream before"):
            async for delta in stream:
                got.append(delta)
    assert got == ["partial ", "answer "]
    assert stream.result is None
    assert len(meter.records) == 1


@pytest.mark.asyncio
async def test_stream_connect_errors_raise_before_iteration(
    fake: FakeAIServer, config: AIProviderConfig
) -> None:
    fake.fail_next(status=503)
    async with AIGateway() as gateway:
        with pytest.raises(AIUpstreamError) as info:
            await gateway.stream_chat(config=config, messages=USER)
    assert info.value.status_code == 503


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "reply",
    [
        '{"score": 7, "tags": ["a", "b"]}',
        'Sure! Here is the JSON:\n```json\n{"score": 7, "tags": ["a", "b"]}\n```\nAnything else?',
        'The result is {"score": 7, "tags": ["a", "b"]} as requested.',
        '```\n{"score": 7, "tags": ["a", "b"],}\n```',
    ],
)
async def test_chat_json_extracts_from_fenced_and_prosy_output(
    fake: FakeAIServer, config: AIProviderConfig, reply: str
) -> None:
    fake.next_chat_reply(reply)
    async with AIGateway() as gateway:
        value, result = await gateway.chat_json(
            config=config,
            messages=[{"role": "user", "content": "Rate it; answer in JSON"}],
            response_format={"type": "json_object"},
            expect=dict,
        )
    assert value == {"score": 7, "tags": ["a", "b"]}
    assert result.text == reply
    sent = fake.requests_to("/v1/chat/completions")[0].json
    assert sent["response_format"] == {"type": "json_object"}


@pytest.mark.asyncio
async def test_chat_json_truncated_output_raises_and_still_meters(
    fake: FakeAIServer, config: AIProviderConfig
) -> None:
    fake.next_chat_reply('{"items": [{"id": 1}, {"id": 2', finish_reason="length", usage=(9, 50))
    meter = InMemoryUsageMeter()
    async with AIGateway() as gateway:
        with pytest.raises(AIOutputError) as info:
            await gateway.chat_json(
                config=config, messages=USER, max_tokens=50, meter=meter, account_id="acc-j"
            )
    assert info.value.truncated
    assert "ended before the JSON closed" in str(info.value)
    assert "token limit" in str(info.value)
    assert meter.records == [UsageRecord("acc-j", 1, 9, 50)]
    assert fake.requests_to("/v1/chat/completions")[0].json["max_completion_tokens"] == 50


@pytest.mark.asyncio
async def test_chat_json_without_json_raises_output_error(
    fake: FakeAIServer, config: AIProviderConfig
) -> None:
    fake.next_chat_reply("I cannot help with that.")
    async with AIGateway() as gateway:
        with pytest.raises(AIOutputError, match="no JSON") as info:
            await gateway.chat_json(config=config, messages=USER)
    assert not info.value.truncated


@pytest.mark.asyncio
async def test_chat_json_refuses_bare_scalars(fake: FakeAIServer, config: AIProviderConfig) -> None:
    fake.next_chat_reply("42")
    async with AIGateway() as gateway:
        with pytest.raises(AIOutputError, match="object or array"):
            await gateway.chat_json(config=config, messages=USER)


@pytest.mark.asyncio
async def test_500_then_success_is_retried(fake: FakeAIServer, config: AIProviderConfig) -> None:
    fake.fail_next(status=500, times=1, retry_after_ms=10)
    fake.next_chat_reply("after retry")
    async with AIGateway() as gateway:
        result = await gateway.chat(config=_with(config, max_retries=1), messages=USER)
    assert result.text == "after retry"
    sent = fake.requests_to("/v1/chat/completions")
    assert len(sent) == 2
    assert [r.header("x-stainless-retry-count") for r in sent] == ["0", "1"]


@pytest.mark.asyncio
async def test_retries_are_bounded(fake: FakeAIServer, config: AIProviderConfig) -> None:
    fake.fail_next(status=500, times=3, retry_after_ms=10)
    async with AIGateway() as gateway:
        with pytest.raises(AIUpstreamError) as info:
            await gateway.chat(config=_with(config, max_retries=1), messages=USER)
    assert info.value.status_code == 500
    assert info.value.retryable
    assert info.value.request_id is not None and info.value.request_id.startswith("req_")
    assert len(fake.requests_to("/v1/chat/completions")) == 2  # 1 try + 1 retry, not 3


@pytest.mark.asyncio
async def test_client_errors_are_not_retried(fake: FakeAIServer, config: AIProviderConfig) -> None:
    async with AIGateway() as gateway:
        with pytest.raises(AIUpstreamError) as info:
            # json_object without the word "json" in the messages: OpenAI answers 400
            await gateway.chat(
                config=_with(config, max_retries=2),
                messages=USER,
                response_format={"type": "json_object"},
            )
    assert info.value.status_code == 400
    assert not info.value.retryable
    assert len(fake.requests_to("/v1/chat/completions")) == 1


@pytest.mark.asyncio
async def test_delay_beyond_timeout_raises_upstream_error(
    fake: FakeAIServer, config: AIProviderConfig
) -> None:
    fake.delay_next(6.0)
    started = time.monotonic()
    async with AIGateway() as gateway:
        with pytest.raises(AIUpstreamError, match=r"did not answer within 0\.3s") as info:
            await gateway.chat(config=_with(config, timeout_seconds=0.3), messages=USER)
    assert time.monotonic() - started < 4.5  # gave up long before the 6 s reply
    assert info.value.status_code is None
    assert info.value.retryable


@pytest.mark.asyncio
async def test_timeout_then_success_within_retries(
    fake: FakeAIServer, config: AIProviderConfig
) -> None:
    fake.delay_next(2.0, times=1)
    fake.next_chat_reply("second attempt")
    async with AIGateway() as gateway:
        result = await gateway.chat(
            config=_with(config, timeout_seconds=0.3, max_retries=1), messages=USER
        )
    assert result.text == "second attempt"


@pytest.mark.asyncio
async def test_errors_never_carry_the_key_or_the_upstream_body(
    fake: FakeAIServer, config: AIProviderConfig
) -> None:
    # A misbehaving proxy that echoes the whole key and the prompt in its error body.
    fake.fail_next(
        status=502,
        body={"error": {"message": f"bad gateway for {fake.openai_key}: Say hello", "code": "x"}},
    )
    async with AIGateway() as gateway:
        with pytest.raises(AIUpstreamError) as info:
            await gateway.chat(config=config, messages=USER)
    err = info.value
    assert fake.openai_key not in str(err)
    assert "Say hello" not in str(err)
    assert "bad gateway" not in str(err)
    assert err.__cause__ is None and err.__context__ is None  # no SDK exception attached
    assert err.upstream_code == "x"


@pytest.mark.asyncio
async def test_wrong_key_is_reported_without_the_key(
    fake: FakeAIServer, config: AIProviderConfig
) -> None:
    wrong = "sk-wrong-key-abcdefghijklmnop"
    async with AIGateway() as gateway:
        with pytest.raises(AIUpstreamError) as info:
            await gateway.chat(config=_with(config, api_key=wrong), messages=USER)
    assert info.value.status_code == 401
    assert info.value.upstream_code == "invalid_api_key"
    assert "check the API key" in str(info.value)
    assert wrong not in str(info.value)
    assert wrong[-4:] not in str(info.value)  # the upstream's partial echo is dropped too


@pytest.mark.asyncio
async def test_unreachable_provider(config: AIProviderConfig) -> None:
    dead = _with(config, base_url="http://127.0.0.1:9/v1", timeout_seconds=1)
    async with AIGateway() as gateway:
        with pytest.raises(AIUpstreamError, match="could not reach"):
            await gateway.chat(config=dead, messages=USER)


@pytest.mark.asyncio
async def test_no_provider_configured_is_ai_unavailable() -> None:
    async with AIGateway() as gateway:
        with pytest.raises(AIUnavailable) as info:
            await gateway.chat(messages=USER)
        with pytest.raises(AIUnavailable):
            await gateway.stream_chat(messages=USER)
        with pytest.raises(AIUnavailable):
            await gateway.chat_json(messages=USER)
    message = str(info.value)
    assert "OPENAI_API_KEY" in message
    assert "config=" in message  # the standalone gateway: a key, or a config per call


def test_from_env() -> None:
    assert AIProviderConfig.from_env({}) is None
    assert AIProviderConfig.from_env({"OPENAI_API_KEY": "  "}) is None
    cfg = AIProviderConfig.from_env(
        {"OPENAI_API_KEY": "sk-env", "OPENAI_MODEL": "m-env", "OPENAI_BASE_URL": "http://x/v1/"}
    )
    assert isinstance(cfg, AIProviderConfig)
    assert (cfg.default_model, cfg.base_url) == ("m-env", "http://x/v1")
    assert "sk-env" not in repr(cfg)
    assert "sk-env" not in cfg.model_dump_json()


@pytest.mark.parametrize(
    "changes",
    [
        {"api_key": ""},
        {"base_url": "ftp://x"},
        {"base_url": "https://u:p@x/v1"},
        {"max_retries": 9},
    ],
)
def test_config_validation(changes: dict[str, object]) -> None:
    data: dict[str, object] = {"api_key": "sk-x", **changes}
    with pytest.raises(ValueError):
        AIProviderConfig.model_validate(data)


@pytest.mark.asyncio
async def test_platform_env_org_and_project_do_not_leak(
    fake: FakeAIServer, config: AIProviderConfig, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_ORG_ID", "org-platform")
    monkeypatch.setenv("OPENAI_PROJECT_ID", "proj-platform")
    async with AIGateway() as gateway:
        await gateway.chat(config=config, messages=USER)
        await gateway.chat(config=_with(config, organization="org-solution"), messages=USER)
    first, second = fake.requests_to("/v1/chat/completions")
    assert first.header("openai-organization") is None
    assert first.header("openai-project") is None
    assert second.header("openai-organization") == "org-solution"


@pytest.mark.asyncio
async def test_clients_are_cached_per_config(config: AIProviderConfig) -> None:
    async with AIGateway() as gateway:
        a = gateway._client(config)
        b = gateway._client(config.model_copy())
        c = gateway._client(_with(config, api_key="sk-another"))
        assert a is b
        assert a is not c


@pytest.mark.asyncio
async def test_meter_failure_does_not_lose_the_answer(
    fake: FakeAIServer, config: AIProviderConfig, caplog: pytest.LogCaptureFixture
) -> None:
    class BrokenMeter:
        async def record(
            self, *, account_id: str, requests: int, prompt_tokens: int, completion_tokens: int
        ) -> None:
            raise RuntimeError("db down")

    fake.next_chat_reply("still here")
    with caplog.at_level(logging.ERROR, logger="core.ai.gateway"):
        async with AIGateway() as gateway:
            result = await gateway.chat(
                config=config, messages=USER, meter=BrokenMeter(), account_id="acc-x"
            )
    assert result.text == "still here"
    assert "ai usage meter failed" in caplog.text


@pytest.mark.asyncio
async def test_bad_arguments_fail_before_any_request(
    fake: FakeAIServer, config: AIProviderConfig
) -> None:
    async with AIGateway() as gateway:
        with pytest.raises(ValueError):
            await gateway.chat(config=config, messages=[])
        with pytest.raises(ValueError):
            await gateway.chat(config=config, messages=[{"content": "no role"}])
        with pytest.raises(ValueError, match="account_id"):
            await gateway.chat(config=config, messages=USER, meter=InMemoryUsageMeter())
    assert fake.requests == []


@pytest.mark.asyncio
async def test_results_are_json_serialisable(fake: FakeAIServer, config: AIProviderConfig) -> None:
    async with AIGateway() as gateway:
        result = await gateway.chat(config=config, messages=USER)
    assert json.loads(result.model_dump_json())["usage"]["total_tokens"] > 0
