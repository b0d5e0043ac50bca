"""Ephemeral-token providers: mint short-lived browser credentials.

The browser talks to OpenAI Realtime or an avatar service directly, with a
token our server minted using the master key. Three rules hold for every
provider here:

* the session configuration comes from :class:`MintRequest`, which the
  broker builds from server-side settings, never from client input;
* the TTL is clamped to ``[10, min(request ceiling, provider maximum)]``;
* the master key travels only in the provider's auth header, and neither the
  :class:`MintedToken` nor any error message contains it.

Quotas, audit and routes are the broker's job (wired elsewhere).
"""

from __future__ import annotations

import asyncio
import base64
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, Protocol, cast, runtime_checkable
from urllib.parse import urlsplit

import httpx
from openai.types.realtime import client_secret_create_params
from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator

from core.ai.clients import OpenAIClientPool
from core.ai.errors import AIUnavailable, AIUpstreamError
from core.ai.gateway import DEFAULT_BASE_URL
from core.ai.upstream import (
    UPSTREAM_ERRORS,
    CallContext,
    guarded,
    safe_code,
    status_error,
    upstream_error,
)

__all__ = [
    "MIN_TTL_SECONDS",
    "HeyGenLegacyProvider",
    "LiveAvatarProvider",
    "MintRequest",
    "MintedToken",
    "OpenAIRealtimeProvider",
    "OpenAITranscriptionProvider",
    "ProviderClients",
    "ProviderCredentials",
    "TokenProvider",
    "clamp_ttl",
    "scrub_secrets",
]

MIN_TTL_SECONDS: Final = 10
OPENAI_MAX_TTL_SECONDS: Final = 7200
LIVEAVATAR_BASE_URL: Final = "https://api.liveavatar.com"
HEYGEN_BASE_URL: Final = "https://api.heygen.com"

_SECRET_KEY_RE: Final = re.compile(
    r"^(authorization|headers|token|secret|password|api[-_]?key|client_secret)$"
    r"|(_key|_secret|_token|_password)$",
    re.IGNORECASE,
)


class ProviderCredentials(BaseModel):
    """The master key (and where to use it) for one provider, from server settings."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    api_key: SecretStr
    base_url: str | None = None
    timeout_seconds: float = Field(default=10.0, gt=0, le=120)
    max_retries: int = Field(default=1, ge=0, le=3)

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("base_url must be an http(s) URL")
        if parts.username or parts.password:
            raise ValueError("base_url must not embed credentials")
        return value.rstrip("/")

    @field_validator("api_key")
    @classmethod
    def _non_blank(cls, value: SecretStr) -> SecretStr:
        if not value.get_secret_value().strip():
            raise ValueError("api_key is empty")
        return value


class MintRequest(BaseModel):
    """Server-pinned session configuration for one mint.

    Built by the broker from Solution/Account settings. Never construct it
    from request bodies: whatever is in here the browser gets to use.
    ``options`` carries provider-specific pinned extras, deep-merged under
    the named fields (e.g. ``{"output_modalities": ["audio"]}`` for OpenAI,
    ``{"avatar_persona": {"context_id": ...}}`` for LiveAvatar).
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    model: str | None = None
    voice: str | None = None
    instructions: str | None = None
    tools: tuple[dict[str, Any], ...] = ()
    language: str | None = None
    avatar_id: str | None = None
    ttl_seconds: int = Field(default=600, ge=1)
    ttl_ceiling_seconds: int = Field(default=OPENAI_MAX_TTL_SECONDS, ge=MIN_TTL_SECONDS)
    options: dict[str, Any] = Field(default_factory=dict)


class MintedToken(BaseModel):
    """What the broker hands the browser: the ephemeral value and the session it opens.

    ``value`` is left out of ``repr`` so a logged token object does not leak
    it; it is in ``model_dump()`` because the browser needs it.
    ``ttl_enforced`` is False when the provider has no TTL parameter and
    ``expires_at`` is our reading of its token (or our policy), not a promise.
    """

    model_config = ConfigDict(frozen=True)

    provider: str
    value: str = Field(repr=False)
    expires_at: datetime
    session: dict[str, Any]
    session_id: str | None = None
    ttl_enforced: bool = True


@dataclass(frozen=True, slots=True)
class ProviderClients:
    """Outbound clients a provider may use: plain httpx, and the OpenAI SDK pool."""

    http: httpx.AsyncClient
    openai: OpenAIClientPool


@runtime_checkable
class TokenProvider(Protocol):
    """Contract for ``register_token_providers()`` (see core.hooks.hookspecs)."""

    name: str

    async def mint(
        self,
        *,
        request: MintRequest,
        credentials: ProviderCredentials,
        clients: ProviderClients,
    ) -> MintedToken: ...


# -- helpers ----------------------------------------------------------------


def clamp_ttl(request: MintRequest, provider_max: int) -> int:
    """``ttl_seconds`` clamped to [10, min(ceiling, provider maximum)]."""
    upper = max(MIN_TTL_SECONDS, min(request.ttl_ceiling_seconds, provider_max))
    return max(MIN_TTL_SECONDS, min(request.ttl_seconds, upper))


def scrub_secrets(value: Any, secrets: Iterable[str] = ()) -> Any:
    """A copy of ``value`` without secret-looking keys or any known secret string.

    Providers echo the session they opened, and it can hold credentials the
    server pinned (an MCP tool's ``authorization``/``headers``) that must not
    reach the browser.
    """
    known = tuple(s for s in secrets if s)
    if isinstance(value, Mapping):
        return {
            k: scrub_secrets(v, known)
            for k, v in value.items()
            if not (isinstance(k, str) and _SECRET_KEY_RE.search(k))
        }
    if isinstance(value, (list, tuple)):
        return [scrub_secrets(v, known) for v in value]
    if isinstance(value, str):
        for secret in known:
            if secret in value:
                value = value.replace(secret, "[redacted]")
    return value


def _deep_merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _drop_none(value: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in value.items():
        if isinstance(item, dict):
            item = _drop_none(item)
            if not item:
                continue
        if item is None:
            continue
        out[key] = item
    return out


def _context(provider: str, base_url: str, credentials: ProviderCredentials) -> CallContext:
    attempts = credentials.max_retries + 1
    return CallContext(
        provider=provider,
        host=urlsplit(base_url).hostname or "?",
        timeout_seconds=credentials.timeout_seconds,
        attempts=attempts,
        deadline_seconds=credentials.timeout_seconds * attempts + 2.0 * credentials.max_retries + 1,
        secrets=(credentials.api_key.get_secret_value(),),
    )


def _jwt_expiry(token: str) -> datetime | None:
    """``exp`` of a JWT-shaped token, read (not verified) to report its real lifetime."""
    parts = token.split(".")
    if len(parts) != 3:
        return None
    try:
        padded = parts[1] + "=" * (-len(parts[1]) % 4)
        claims = json.loads(base64.urlsafe_b64decode(padded))
        exp = claims.get("exp") if isinstance(claims, dict) else None
        if isinstance(exp, (int, float)) and not isinstance(exp, bool):
            return datetime.fromtimestamp(exp, UTC)
    except (ValueError, OverflowError, OSError):
        return None
    return None


async def _post_json(
    http: httpx.AsyncClient,
    url: str,
    *,
    headers: Mapping[str, str],
    body: Mapping[str, Any] | None,
    ctx: CallContext,
    max_retries: int,
) -> dict[str, Any]:
    """POST with bounded retries on 429/5xx/transport errors; JSON object back.

    Redirects are never followed: httpx keeps custom headers such as
    ``X-API-KEY`` across a redirect, which would hand the key to another host.
    """
    attempt = 0
    while True:
        failure: AIUpstreamError | None = None
        try:
            async with asyncio.timeout(ctx.timeout_seconds + 1.0):
                response = await http.post(
                    url,
                    headers=dict(headers),
                    json=dict(body) if body is not None else None,
                    timeout=ctx.timeout_seconds,
                    follow_redirects=False,
                )
        except UPSTREAM_ERRORS as exc:
            failure = upstream_error(exc, ctx)
        if failure is not None:
            if failure.retryable and attempt < max_retries:
                attempt += 1
                await asyncio.sleep(0.25 * 2**attempt)
                continue
            raise failure
        status = response.status_code
        if (status == 429 or status >= 500) and attempt < max_retries:
            attempt += 1
            await asyncio.sleep(0.25 * 2**attempt)
            continue
        if status >= 300:
            try:
                payload = response.json()
            except ValueError:
                payload = None
            code = None
            if isinstance(payload, dict):
                error = payload.get("error")
                code = safe_code(
                    error.get("code") if isinstance(error, dict) else payload.get("code")
                )
            raise status_error(ctx, status, code=code) from None
        try:
            payload = response.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            raise AIUpstreamError(
                f"{ctx.provider} at {ctx.host} answered with a body that is not a JSON object",
                provider=ctx.provider,
                status_code=status,
            )
        return payload


# -- OpenAI Realtime ---------------------------------------------------------


class _OpenAIClientSecretProvider:
    """Shared minting via ``client.realtime.client_secrets.create``."""

    name: str
    fallback_model: str

    def __init__(self, *, default_base_url: str = DEFAULT_BASE_URL) -> None:
        self.default_base_url = default_base_url.rstrip("/")

    def build_session(self, request: MintRequest) -> dict[str, Any]:
        raise NotImplementedError

    async def mint(
        self,
        *,
        request: MintRequest,
        credentials: ProviderCredentials,
        clients: ProviderClients,
    ) -> MintedToken:
        base_url = credentials.base_url or self.default_base_url
        ctx = _context("OpenAI", base_url, credentials)
        ttl = clamp_ttl(request, OPENAI_MAX_TTL_SECONDS)
        session = self.build_session(request)
        client = clients.openai.get(
            base_url=base_url,
            api_key=credentials.api_key,
            timeout_seconds=credentials.timeout_seconds,
            max_retries=credentials.max_retries,
        )
        created = await guarded(
            ctx,
            lambda: client.realtime.client_secrets.create(
                expires_after={"anchor": "created_at", "seconds": ttl},
                session=cast(client_secret_create_params.Session, session),
            ),
        )
        if not created.value:
            raise AIUpstreamError("OpenAI answered without a client secret", provider="OpenAI")
        echoed = created.session.model_dump(mode="json", exclude_none=True)
        clean = scrub_secrets(echoed, ctx.secrets)
        return MintedToken(
            provider=self.name,
            value=created.value,
            expires_at=datetime.fromtimestamp(created.expires_at, UTC),
            session=clean,
            session_id=clean.get("id") if isinstance(clean.get("id"), str) else None,
        )


class OpenAIRealtimeProvider(_OpenAIClientSecretProvider):
    """Speech-to-speech sessions (``session.type = "realtime"``)."""

    name: str = "openai-realtime"
    fallback_model: str = "gpt-realtime"

    def build_session(self, request: MintRequest) -> dict[str, Any]:
        pinned = _drop_none(
            {
                "type": "realtime",
                "model": request.model or self.fallback_model,
                "instructions": request.instructions,
                "audio": {"output": {"voice": request.voice}},
            }
        )
        if request.tools:
            pinned["tools"] = [dict(t) for t in request.tools]
        return _deep_merge(request.options, pinned)


class OpenAITranscriptionProvider(_OpenAIClientSecretProvider):
    """Transcription-only sessions (``session.type = "transcription"``).

    A transcription session has no top-level ``model``/``instructions``: the
    model, the prompt (our ``instructions``) and the language live under
    ``audio.input.transcription``; the service rejects them at the top.
    """

    name: str = "openai-transcription"
    fallback_model: str = "gpt-4o-transcribe"

    def build_session(self, request: MintRequest) -> dict[str, Any]:
        pinned = _drop_none(
            {
                "type": "transcription",
                "audio": {
                    "input": {
                        "transcription": {
                            "model": request.model or self.fallback_model,
                            "prompt": request.instructions,
                            "language": request.language,
                        }
                    }
                },
            }
        )
        return _deep_merge(request.options, pinned)


# -- Avatars ---------------------------------------------------------------


class LiveAvatarProvider:
    """LiveAvatar session tokens (``POST /v1/sessions/token`` with ``X-API-KEY``).

    The service takes no TTL: ``expires_at`` is read from the token's ``exp``
    when it is a JWT, else our clamped TTL, and ``ttl_enforced`` is False.
    """

    name: str = "liveavatar"

    def __init__(
        self,
        *,
        default_base_url: str = LIVEAVATAR_BASE_URL,
        mode: Literal["FULL", "LITE", "CUSTOM"] = "FULL",
    ) -> None:
        self.default_base_url = default_base_url.rstrip("/")
        self.mode = mode

    def build_body(self, request: MintRequest) -> dict[str, Any]:
        if not request.avatar_id:
            raise AIUnavailable(
                "LiveAvatar needs an avatar: set avatar_id in the Solution's avatar settings"
            )
        pinned: dict[str, Any] = {"mode": self.mode, "avatar_id": request.avatar_id}
        if self.mode == "FULL":
            pinned["avatar_persona"] = _drop_none(
                {"voice_id": request.voice, "language": request.language}
            )
        return _deep_merge(request.options, pinned)

    async def mint(
        self,
        *,
        request: MintRequest,
        credentials: ProviderCredentials,
        clients: ProviderClients,
    ) -> MintedToken:
        base_url = credentials.base_url or self.default_base_url
        ctx = _context("LiveAvatar", base_url, credentials)
        ttl = clamp_ttl(request, OPENAI_MAX_TTL_SECONDS)
        body = self.build_body(request)
        payload = await _post_json(
            clients.http,
            f"{base_url}/v1/sessions/token",
            headers={
                "X-API-KEY": credentials.api_key.get_secret_value(),
                "Accept": "application/json",
            },
            body=body,
            ctx=ctx,
            max_retries=credentials.max_retries,
        )
        data = payload.get("data")
        token = data.get("session_token") if isinstance(data, dict) else None
        session_id = data.get("session_id") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            code = safe_code(payload.get("code"))
            raise AIUpstreamError(
                f"LiveAvatar answered without a session token{f' (code {code})' if code else ''}",
                provider="LiveAvatar",
                upstream_code=code,
            )
        now = datetime.now(UTC)
        expires_at = _jwt_expiry(token) or now + timedelta(seconds=ttl)
        session = scrub_secrets(
            {**body, "session_id": session_id if isinstance(session_id, str) else None},
            ctx.secrets,
        )
        return MintedToken(
            provider=self.name,
            value=token,
            expires_at=expires_at,
            session=session,
            session_id=session_id if isinstance(session_id, str) else None,
            ttl_enforced=False,
        )


class HeyGenLegacyProvider:
    """HeyGen streaming-avatar tokens (``POST /v1/streaming.create_token``, ``x-api-key``).

    Superseded by LiveAvatar; kept for Solutions still on the old SDK. The
    token pins nothing (the browser picks the avatar when it opens the
    session), so ``session`` only echoes our settings for the frontend.
    """

    name: str = "heygen"

    def __init__(self, *, default_base_url: str = HEYGEN_BASE_URL) -> None:
        self.default_base_url = default_base_url.rstrip("/")

    async def mint(
        self,
        *,
        request: MintRequest,
        credentials: ProviderCredentials,
        clients: ProviderClients,
    ) -> MintedToken:
        base_url = credentials.base_url or self.default_base_url
        ctx = _context("HeyGen", base_url, credentials)
        ttl = clamp_ttl(request, OPENAI_MAX_TTL_SECONDS)
        payload = await _post_json(
            clients.http,
            f"{base_url}/v1/streaming.create_token",
            headers={
                "x-api-key": credentials.api_key.get_secret_value(),
                "Accept": "application/json",
            },
            body=None,
            ctx=ctx,
            max_retries=credentials.max_retries,
        )
        data = payload.get("data")
        token = data.get("token") if isinstance(data, dict) else None
        if not isinstance(token, str) or not token:
            error = payload.get("error")
            code = safe_code(error.get("code")) if isinstance(error, dict) else None
            raise AIUpstreamError(
                f"HeyGen answered without a token{f' (code {code})' if code else ''}",
                provider="HeyGen",
                upstream_code=code,
            )
        session = scrub_secrets(
            _drop_none(
                {
                    "avatar_id": request.avatar_id,
                    "voice": request.voice,
                    "language": request.language,
                    **request.options,
                }
            ),
            ctx.secrets,
        )
        return MintedToken(
            provider=self.name,
            value=token,
            expires_at=_jwt_expiry(token) or datetime.now(UTC) + timedelta(seconds=ttl),
            session=session,
            ttl_enforced=False,
        )
