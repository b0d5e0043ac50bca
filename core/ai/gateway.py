"""The AI gateway: one async service every plugin uses to talk to a chat model.

Plugins never import ``openai`` (see ARCHITECTURE §2); they receive an
:class:`AIGateway` and a resolved :class:`AIProviderConfig` (platform key or a
Solution's own). The gateway owns the things that are easy to get wrong per
call site: bounded retries with an overall deadline, error messages that never
carry a key or an upstream body, usage metering, and JSON extraction.
"""

from __future__ import annotations

import logging
import math
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from types import TracebackType
from typing import Any, Final, Self, cast
from urllib.parse import urlsplit

import openai
from openai import AsyncStream
from openai.types.chat import ChatCompletion, ChatCompletionChunk, ChatCompletionMessageParam
from openai.types.chat.completion_create_params import ResponseFormat
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from core.ai.clients import OpenAIClientPool
from core.ai.errors import AIOutputError, AIUnavailable, AIUpstreamError
from core.ai.json_extract import extract_json
from core.ai.upstream import UPSTREAM_ERRORS, CallContext, guarded, upstream_error
from core.ai.usage import UsageMeter

__all__ = [
    "DEFAULT_BASE_URL",
    "DEFAULT_CHAT_MODEL",
    "AIGateway",
    "AIProviderConfig",
    "ChatResult",
    "ChatStream",
    "Usage",
]

log = logging.getLogger(__name__)

DEFAULT_BASE_URL: Final = "https://api.openai.com/v1"
DEFAULT_CHAT_MODEL: Final = "gpt-4.1-mini"
#: Mirrors the SDK's exponential backoff cap, used to size the overall deadline.
_MAX_BACKOFF_SECONDS: Final = 8.0

UNAVAILABLE_MESSAGE: Final = (
    "No AI provider is configured: set OPENAI_API_KEY (and optionally OPENAI_BASE_URL, "
    "OPENAI_MODEL), or pass config= to the call."
)


class AIProviderConfig(BaseModel):
    """Where and how to call an OpenAI-compatible chat API.

    ``timeout_seconds`` bounds each attempt; ``max_retries`` bounds the extra
    attempts (the SDK retries 408/409/429/5xx and connection errors);
    :attr:`deadline_seconds` bounds the whole call including back-off, so a
    provider's ``Retry-After: 120`` cannot hold a request open for minutes.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    base_url: str = DEFAULT_BASE_URL
    api_key: SecretStr
    default_model: str = Field(default=DEFAULT_CHAT_MODEL, min_length=1)
    timeout_seconds: float = Field(default=30.0, gt=0, le=600)
    max_retries: int = Field(default=2, ge=0, le=5)
    organization: str | None = None
    project: str | None = None

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("base_url must be an http(s) URL")
        if parts.username or parts.password:
            raise ValueError("base_url must not embed credentials; use api_key")
        return value.rstrip("/")

    @field_validator("api_key")
    @classmethod
    def _non_blank(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("api_key is empty")
        return value

    @property
    def host(self) -> str:
        """The provider's host name: safe to show in messages and logs."""
        return urlsplit(self.base_url).hostname or "?"

    @property
    def deadline_seconds(self) -> float:
        """Upper bound for one call: every attempt times out plus worst-case back-off."""
        backoff = sum(min(0.5 * 2.0**n, _MAX_BACKOFF_SECONDS) for n in range(self.max_retries))
        return self.timeout_seconds * (self.max_retries + 1) + backoff + 1.0

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> AIProviderConfig | None:
        """The platform default from ``OPENAI_*`` variables; ``None`` without a key."""
        env = os.environ if environ is None else environ
        key = env.get("OPENAI_API_KEY", "").strip()
        if not key:
            return None
        data: dict[str, Any] = {"api_key": key}
        if env.get("OPENAI_BASE_URL"):
            data["base_url"] = env["OPENAI_BASE_URL"]
        if env.get("OPENAI_MODEL"):
            data["default_model"] = env["OPENAI_MODEL"]
        return cls(**data)


class Usage(BaseModel):
    """Token counts as the provider reported them (or estimated, see ChatStream)."""

    model_config = ConfigDict(frozen=True)

    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0


class ChatResult(BaseModel):
    """One completed answer. ``finish_reason == "length"`` means it was cut off."""

    model_config = ConfigDict(frozen=True)

    text: str
    model: str
    usage: Usage
    finish_reason: str | None = None
    refusal: str | None = None


def _context(config: AIProviderConfig) -> CallContext:
    return CallContext(
        provider="AI provider",
        host=config.host,
        timeout_seconds=config.timeout_seconds,
        attempts=config.max_retries + 1,
        deadline_seconds=config.deadline_seconds,
        secrets=(config.api_key.get_secret_value(),),
    )


def _response_format(value: Mapping[str, Any] | None) -> ResponseFormat | openai.Omit:
    return cast(ResponseFormat, dict(value)) if value is not None else openai.omit


def _estimate_tokens(chars: int) -> int:
    """~4 characters per token: only used when a stream is cut before usage arrives."""
    return math.ceil(chars / 4)


def _estimated(prompt_chars: int, completion: ChatCompletion) -> Usage:
    """For OpenAI-compatible servers that omit ``usage``: metering must not read 0."""
    answer = sum(len(c.message.content or "") for c in completion.choices)
    prompt, output = _estimate_tokens(prompt_chars), _estimate_tokens(answer)
    return Usage(prompt_tokens=prompt, completion_tokens=output, total_tokens=prompt + output)


def _message_chars(messages: Sequence[Mapping[str, Any]]) -> int:
    total = 0
    for message in messages:
        content = message.get("content")
        if isinstance(content, str):
            total += len(content)
        elif isinstance(content, list):
            for part in content:
                if isinstance(part, Mapping) and isinstance(part.get("text"), str):
                    total += len(part["text"])
    return total


RecordUsage = Callable[[Usage], Awaitable[None]]


class ChatStream(AsyncIterator[str]):
    """Text deltas of one streamed answer; :attr:`result` once it has finished.

    Use it as ``async with await gateway.stream_chat(...) as stream`` so a
    client that goes away closes the upstream connection too. Usage is metered
    exactly once: from the provider's final usage chunk, or, when the stream is
    abandoned or breaks before that chunk, from a character-based estimate (so
    an aborted stream is never free).
    """

    def __init__(
        self,
        stream: AsyncStream[ChatCompletionChunk],
        *,
        config: AIProviderConfig,
        model: str,
        prompt_chars: int,
        record: RecordUsage,
    ) -> None:
        self._stream = stream
        self._config = config
        self._model = model
        self._prompt_chars = prompt_chars
        self._record = record
        self._parts: list[str] = []
        self._usage: Usage | None = None
        self._finish_reason: str | None = None
        self._refusal: list[str] = []
        self._result: ChatResult | None = None
        self._recorded = False
        self._closed = False

    @property
    def result(self) -> ChatResult | None:
        """The whole answer, available after the iteration ended normally."""
        return self._result

    @property
    def usage(self) -> Usage | None:
        return self._result.usage if self._result is not None else self._usage

    def __aiter__(self) -> ChatStream:
        return self

    async def __anext__(self) -> str:
        if self._closed:
            raise StopAsyncIteration
        try:
            while True:
                try:
                    chunk = await self._stream.__anext__()
                except StopAsyncIteration:
                    await self._finish()
                    raise
                delta = self._absorb(chunk)
                if delta:
                    return delta
        except UPSTREAM_ERRORS as exc:
            failure = upstream_error(exc, _context(self._config))
        # Raised outside the except block: no SDK exception in __context__.
        await self._abort()
        raise failure

    def _absorb(self, chunk: ChatCompletionChunk) -> str:
        if chunk.model:
            self._model = chunk.model
        if chunk.usage is not None:
            self._usage = Usage(
                prompt_tokens=chunk.usage.prompt_tokens,
                completion_tokens=chunk.usage.completion_tokens,
                total_tokens=chunk.usage.total_tokens,
            )
        text = ""
        for choice in chunk.choices:
            if choice.index != 0:
                continue
            if choice.finish_reason is not None:
                self._finish_reason = choice.finish_reason
            if choice.delta.refusal:
                self._refusal.append(choice.delta.refusal)
            if choice.delta.content:
                text += choice.delta.content
        if text:
            self._parts.append(text)
        return text

    def _estimated_usage(self) -> Usage:
        prompt = _estimate_tokens(self._prompt_chars)
        completion = _estimate_tokens(sum(len(p) for p in self._parts))
        return Usage(
            prompt_tokens=prompt, completion_tokens=completion, total_tokens=prompt + completion
        )

    async def _meter(self, usage: Usage) -> None:
        if not self._recorded:
            self._recorded = True
            await self._record(usage)

    async def _finish(self) -> None:
        self._closed = True
        if self._finish_reason is None:
            # Body ended without a finish_reason: the connection was cut and
            # the text is partial. Never hand that out as a complete answer.
            await self._meter(self._usage or self._estimated_usage())
            raise AIUpstreamError(
                f"the AI provider at {self._config.host} ended the stream before the "
                "answer finished",
                retryable=True,
            )
        usage = self._usage or self._estimated_usage()
        self._result = ChatResult(
            text="".join(self._parts),
            model=self._model,
            usage=usage,
            finish_reason=self._finish_reason,
            refusal="".join(self._refusal) or None,
        )
        await self._meter(usage)

    async def _abort(self) -> None:
        self._closed = True
        try:
            await self._stream.close()
        finally:
            await self._meter(self._usage or self._estimated_usage())

    async def aclose(self) -> None:
        """Stop early: closes the upstream response and meters what was used."""
        if not self._closed:
            await self._abort()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()


class AIGateway:
    """Chat completions over ``openai.AsyncOpenAI``, with our errors and metering.

    ``default_config`` is the platform provider (usually
    :meth:`AIProviderConfig.from_env`); a call may pass a Solution's own
    ``config`` instead. Metering happens when a call names an ``account_id``
    and a meter is available (per call, or the gateway's default).
    """

    def __init__(
        self,
        *,
        default_config: AIProviderConfig | None = None,
        meter: UsageMeter | None = None,
        clients: OpenAIClientPool | None = None,
    ) -> None:
        self.default_config = default_config
        self._meter = meter
        self._owns_clients = clients is None
        self.clients = clients or OpenAIClientPool()

    #: What AIUnavailable says when no provider is configured (names what to set).
    unavailable_message: str = UNAVAILABLE_MESSAGE

    # -- plumbing -----------------------------------------------------------

    def resolve_config(self, config: AIProviderConfig | None) -> AIProviderConfig:
        """The call's provider, or :class:`AIUnavailable` naming the settings to set."""
        resolved = config or self.default_config
        if resolved is None:
            raise AIUnavailable(self.unavailable_message)
        return resolved

    async def config_for(self, account_id: str | None) -> AIProviderConfig | None:
        """The provider a call without ``config`` uses; subclasses pick one per account."""
        _ = account_id
        return self.default_config

    def _client(self, config: AIProviderConfig) -> openai.AsyncOpenAI:
        return self.clients.get(
            base_url=config.base_url,
            api_key=config.api_key,
            timeout_seconds=config.timeout_seconds,
            max_retries=config.max_retries,
            organization=config.organization,
            project=config.project,
        )

    def _recorder(self, meter: UsageMeter | None, account_id: str | None) -> RecordUsage:
        if meter is not None and account_id is None:
            raise ValueError("meter= needs account_id= to know whom to charge")
        target = meter or self._meter

        async def record(usage: Usage) -> None:
            if target is None or account_id is None:
                return
            try:
                await target.record(
                    account_id=account_id,
                    requests=1,
                    prompt_tokens=usage.prompt_tokens,
                    completion_tokens=usage.completion_tokens,
                )
            except Exception:
                # The provider already answered (and billed): losing the answer
                # because the meter hiccuped would cost twice. Log loudly.
                log.exception("ai usage meter failed", extra={"account_id": account_id})

        return record

    @staticmethod
    def _check_messages(messages: Sequence[Mapping[str, Any]]) -> list[ChatCompletionMessageParam]:
        if isinstance(messages, (str, bytes)) or not messages:
            raise ValueError("messages must be a non-empty list of {role, content} mappings")
        for message in messages:
            if not isinstance(message, Mapping) or not isinstance(message.get("role"), str):
                raise ValueError("each message needs a string 'role'")
        return [cast(ChatCompletionMessageParam, dict(m)) for m in messages]

    # -- public API ---------------------------------------------------------

    async def chat(
        self,
        *,
        messages: Sequence[Mapping[str, Any]],
        config: AIProviderConfig | None = None,
        model: str | None = None,
        temperature: float | None = None,
        response_format: Mapping[str, Any] | None = None,
        max_tokens: int | None = None,
        meter: UsageMeter | None = None,
        account_id: str | None = None,
    ) -> ChatResult:
        """One non-streamed completion.

        Raises AIUnavailable, AIUpstreamError (after ``max_retries`` retries or
        the deadline), ValueError for malformed ``messages``.
        """
        cfg = self.resolve_config(config or await self.config_for(account_id))
        params = self._check_messages(messages)
        record = self._recorder(meter, account_id)
        client = self._client(cfg)
        completion: ChatCompletion = await guarded(
            _context(cfg),
            lambda: client.chat.completions.create(
                messages=params,
                model=model or cfg.default_model,
                temperature=temperature if temperature is not None else openai.omit,
                response_format=_response_format(response_format),
                max_completion_tokens=max_tokens if max_tokens is not None else openai.omit,
            ),
        )
        usage = (
            Usage(
                prompt_tokens=completion.usage.prompt_tokens,
                completion_tokens=completion.usage.completion_tokens,
                total_tokens=completion.usage.total_tokens,
            )
            if completion.usage is not None
            else _estimated(_message_chars(messages), completion)
        )
        await record(usage)
        if not completion.choices:
            raise AIUpstreamError(
                f"AI provider at {cfg.host} answered without any choices", retryable=True
            )
        choice = completion.choices[0]
        return ChatResult(
            text=choice.message.content or "",
            model=completion.model or (model or cfg.default_model),
            usage=usage,
            finish_reason=choice.finish_reason,
            refusal=choice.message.refusal,
        )

    async def stream_chat(
        self,
        *,
        messages: Sequence[Mapping[str, Any]],
        config: AIProviderConfig | None = None,
        model: str | None = None,
        temperature: float | None = None,
        response_format: Mapping[str, Any] | None = None,
        max_tokens: int | None = None,
        meter: UsageMeter | None = None,
        account_id: str | None = None,
    ) -> ChatStream:
        """Start a streamed completion; iterate the returned :class:`ChatStream`.

        Awaiting this connects (with retries) before returning, so a route
        learns about 401/429/5xx while it can still answer with an error
        instead of a half-sent event stream.
        """
        cfg = self.resolve_config(config or await self.config_for(account_id))
        params = self._check_messages(messages)
        record = self._recorder(meter, account_id)
        client = self._client(cfg)
        chosen = model or cfg.default_model
        stream: AsyncStream[ChatCompletionChunk] = await guarded(
            _context(cfg),
            lambda: client.chat.completions.create(
                messages=params,
                model=chosen,
                stream=True,
                stream_options={"include_usage": True},
                temperature=temperature if temperature is not None else openai.omit,
                response_format=_response_format(response_format),
                max_completion_tokens=max_tokens if max_tokens is not None else openai.omit,
            ),
        )
        return ChatStream(
            stream,
            config=cfg,
            model=chosen,
            prompt_chars=_message_chars(messages),
            record=record,
        )

    async def chat_json(
        self,
        *,
        messages: Sequence[Mapping[str, Any]],
        config: AIProviderConfig | None = None,
        model: str | None = None,
        temperature: float | None = None,
        response_format: Mapping[str, Any] | None = None,
        max_tokens: int | None = None,
        meter: UsageMeter | None = None,
        account_id: str | None = None,
        expect: type[dict[Any, Any]] | type[list[Any]] | None = None,
    ) -> tuple[dict[str, Any] | list[Any], ChatResult]:
        """A completion whose answer must contain JSON; returns (value, result).

        Usage is metered before parsing (the tokens were spent either way).
        Raises :class:`AIOutputError` when no usable JSON is found; its
        ``truncated`` flag is set when the model stopped before the JSON closed.
        """
        result = await self.chat(
            messages=messages,
            config=config,
            model=model,
            temperature=temperature,
            response_format=response_format,
            max_tokens=max_tokens,
            meter=meter,
            account_id=account_id,
        )
        try:
            value = extract_json(result.text, expect=expect)
        except AIOutputError as err:
            if err.truncated and result.finish_reason == "length":
                raise AIOutputError(
                    f"{err} (the model hit its token limit: raise max_tokens or ask for less)",
                    truncated=True,
                ) from None
            raise
        if not isinstance(value, (dict, list)):
            raise AIOutputError(
                f"expected a JSON object or array, the model returned {type(value).__name__}"
            )
        return value, result

    async def aclose(self) -> None:
        """Close the connection pool (only if this gateway created it)."""
        if self._owns_clients:
            await self.clients.aclose()

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()
