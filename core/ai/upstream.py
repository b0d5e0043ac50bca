"""Turn SDK and transport failures into :class:`AIUpstreamError`.

Shared by the gateway and the token providers so every AI call fails the
same way: a short message with the host, status and provider error code,
never the key, never the upstream body (providers echo partial keys and user
content there), and no exception chaining (the SDK exception holds the
request, Authorization header included, and tracebacks end up in logs).
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Final, TypeVar

import httpx
import httpx2
import openai

from core.ai.errors import AIUpstreamError

__all__ = [
    "UPSTREAM_ERRORS",
    "CallContext",
    "guarded",
    "redact",
    "safe_code",
    "status_error",
    "upstream_error",
]

T = TypeVar("T")

log = logging.getLogger("core.ai")

#: What an SDK or HTTP call can raise that we translate (TimeoutError: our deadline).
UPSTREAM_ERRORS: Final = (openai.OpenAIError, httpx2.HTTPError, httpx.HTTPError, TimeoutError)

_SAFE_CODE_RE: Final = re.compile(r"^[A-Za-z0-9_.\-]{1,64}$")

_STATUS_HINTS: Final = {
    401: ": check the API key",
    403: ": the key may not have access to this model or project",
    404: ": check the model name and base_url",
    422: ": the provider rejected the pinned session configuration",
    429: ": rate limited or out of quota",
}


@dataclass(frozen=True, slots=True)
class CallContext:
    """What a message may safely say about the call, plus the secrets to scrub."""

    provider: str
    host: str
    timeout_seconds: float
    attempts: int
    deadline_seconds: float
    secrets: tuple[str, ...] = ()


def safe_code(value: object) -> str | None:
    """Keep a provider error code only if it is a short identifier."""
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    if isinstance(value, str) and _SAFE_CODE_RE.match(value):
        return value
    return None


def redact(message: str, secrets: Iterable[str]) -> str:
    """Belt and braces: a key must never reach a message, whatever built it."""
    for secret in secrets:
        if secret:
            message = message.replace(secret, "[redacted]")
    return message


def status_error(
    ctx: CallContext, status: int, *, code: str | None = None, request_id: str | None = None
) -> AIUpstreamError:
    """An HTTP error answer, described by status and code only."""
    shown = f" ({code})" if code else ""
    message = f"{ctx.provider} at {ctx.host} answered HTTP {status}{shown}"
    return _build(
        ctx,
        message + _STATUS_HINTS.get(status, ""),
        status=status,
        code=code,
        request_id=request_id,
        retryable=status in (408, 409, 429) or status >= 500,
        cause="status",
    )


def upstream_error(exc: BaseException, ctx: CallContext) -> AIUpstreamError:
    """Translate one failure; raise the result ``from None``."""
    attempts = f"{ctx.attempts} attempt{'s' if ctx.attempts != 1 else ''}"
    if isinstance(exc, openai.APIStatusError):
        return status_error(
            ctx, exc.status_code, code=safe_code(exc.code), request_id=exc.request_id
        )
    if isinstance(exc, (openai.APITimeoutError, httpx.TimeoutException, httpx2.TimeoutException)):
        message = (
            f"{ctx.provider} at {ctx.host} did not answer within "
            f"{ctx.timeout_seconds:g}s ({attempts})"
        )
    elif isinstance(exc, TimeoutError):
        message = (
            f"{ctx.provider} at {ctx.host} did not finish within the "
            f"{ctx.deadline_seconds:g}s deadline"
        )
    elif isinstance(exc, (openai.APIConnectionError, httpx.TransportError, httpx2.TransportError)):
        message = f"could not reach {ctx.provider} at {ctx.host} ({attempts})"
    elif isinstance(exc, openai.APIResponseValidationError):
        return _build(
            ctx,
            f"{ctx.provider} at {ctx.host} answered with an unexpected response shape",
            retryable=False,
            cause=type(exc).__name__,
        )
    elif isinstance(exc, openai.APIError):
        code = safe_code(exc.code)
        shown = f" ({code})" if code else ""
        return _build(
            ctx,
            f"{ctx.provider} at {ctx.host} reported an error{shown}",
            code=code,
            retryable=True,
            cause=type(exc).__name__,
        )
    else:
        message = f"{ctx.provider} call to {ctx.host} failed ({type(exc).__name__})"
    return _build(ctx, message, retryable=True, cause=type(exc).__name__)


async def guarded(ctx: CallContext, call: Callable[[], Awaitable[T]]) -> T:
    """Await ``call()`` under the call's deadline; failures become AIUpstreamError.

    The error is raised outside the ``except`` block on purpose: ``raise ...
    from None`` only hides the SDK exception from tracebacks, it still sits in
    ``__context__`` (with the request and its Authorization header) for any
    error reporter that walks the chain.
    """
    try:
        async with asyncio.timeout(ctx.deadline_seconds):
            return await call()
    except UPSTREAM_ERRORS as exc:
        failure = upstream_error(exc, ctx)
    raise failure


def _build(
    ctx: CallContext,
    message: str,
    *,
    status: int | None = None,
    code: str | None = None,
    request_id: str | None = None,
    retryable: bool,
    cause: str,
) -> AIUpstreamError:
    # A provider may echo the key back as its error "code" (or request id):
    # short identifiers pass safe_code, so drop any that carry a secret.
    code, request_id = (
        None if value and redact(value, ctx.secrets) != value else value
        for value in (code, request_id)
    )
    log.warning(
        "ai upstream error",
        extra={
            "ai_provider": ctx.provider,
            "ai_host": ctx.host,
            "ai_status": status,
            "ai_code": code,
            "ai_request_id": request_id,
            "ai_error": cause,
        },
    )
    return AIUpstreamError(
        redact(message, ctx.secrets),
        provider=ctx.provider,
        status_code=status,
        upstream_code=code,
        request_id=request_id,
        retryable=retryable,
    )
