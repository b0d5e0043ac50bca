"""A pool of ``openai.AsyncOpenAI`` clients, one per (base_url, key, limits).

Solutions may bring their own key, so there is one SDK client per
configuration; they all share a single ``httpx2`` connection pool, which makes
a client cheap to create and safe to drop from the LRU without closing
anything another coroutine is still using.
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Final

import httpx2
import openai
from pydantic import SecretStr

__all__ = ["OpenAIClientPool"]

DEFAULT_MAX_CLIENTS: Final = 256


def _fingerprint(secret: SecretStr) -> str:
    """Cache key part for a secret: the key itself never becomes a dict key."""
    return hashlib.sha256(secret.get_secret_value().encode()).hexdigest()


class OpenAIClientPool:
    """Hands out cached SDK clients; ``aclose()`` closes the shared connection pool."""

    def __init__(
        self,
        *,
        max_clients: int = DEFAULT_MAX_CLIENTS,
        http_client: httpx2.AsyncClient | None = None,
    ) -> None:
        self._max_clients = max_clients
        self._clients: OrderedDict[tuple[object, ...], openai.AsyncOpenAI] = OrderedDict()
        self._http: httpx2.AsyncClient | None = http_client
        self._owns_http = http_client is None
        self._closed = False

    def _shared_http(self) -> httpx2.AsyncClient:
        if self._http is None:
            # The SDK's subclass keeps its connection limits and redirect policy.
            self._http = openai.DefaultAsyncHttpxClient()
        return self._http

    def get(
        self,
        *,
        base_url: str,
        api_key: SecretStr,
        timeout_seconds: float,
        max_retries: int,
        organization: str | None = None,
        project: str | None = None,
    ) -> openai.AsyncOpenAI:
        """Return the client for this configuration, creating it on first use."""
        if self._closed:
            raise RuntimeError("OpenAIClientPool is closed")
        key = (
            base_url.rstrip("/"),
            _fingerprint(api_key),
            float(timeout_seconds),
            int(max_retries),
            organization,
            project,
        )
        client = self._clients.get(key)
        if client is not None:
            self._clients.move_to_end(key)
            return client
        client = openai.AsyncOpenAI(
            api_key=api_key.get_secret_value(),
            base_url=base_url,
            timeout=timeout_seconds,
            max_retries=max_retries,
            http_client=self._shared_http(),
            organization=organization,
            project=project,
        )
        # The SDK fills these from OPENAI_ORG_ID / OPENAI_PROJECT_ID /
        # OPENAI_ADMIN_KEY when not given: a Solution's own key must not travel
        # with the platform's organization header, so pin them to what we chose.
        client.organization = organization
        client.project = project
        client.admin_api_key = None
        self._clients[key] = client
        while len(self._clients) > self._max_clients:
            self._clients.popitem(last=False)
        return client

    async def aclose(self) -> None:
        """Close the shared connection pool (if we created it) and forget every client."""
        self._closed = True
        self._clients.clear()
        if self._http is not None and self._owns_http:
            await self._http.aclose()
        self._http = None
