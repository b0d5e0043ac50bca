"""Exception types of the AI kernel services.

Callers (routes, plugins) map these to problem+json without knowing which SDK
or provider produced them, and none of them ever carries a credential or the
raw upstream body: both can end up in logs or API responses.
"""

from __future__ import annotations


class AIError(Exception):
    """Base class, so a route can catch every AI failure in one place."""


class AIUnavailable(AIError):
    """No provider is configured for this call (maps to 503).

    The message names the settings an operator has to set, because the person
    reading it is usually the one who can fix it.
    """


class AIUpstreamError(AIError):
    """The provider failed (HTTP error, timeout, connection) after bounded retries.

    Only safe, structured facts are kept: the status, the provider's short
    error code, its request id. The upstream body is dropped because providers
    echo (partially redacted) keys and user content in it.
    """

    def __init__(
        self,
        message: str,
        *,
        provider: str = "openai",
        status_code: int | None = None,
        upstream_code: str | None = None,
        request_id: str | None = None,
        retryable: bool = False,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.status_code = status_code
        self.upstream_code = upstream_code
        self.request_id = request_id
        self.retryable = retryable


class AIOutputError(AIError):
    """The model answered, but not with the structure we asked for (maps to 502).

    ``truncated`` tells a caller that retrying with a larger token budget may help.
    """

    def __init__(self, message: str, *, truncated: bool = False) -> None:
        super().__init__(message)
        self.truncated = truncated
