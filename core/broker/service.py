"""The ephemeral-token broker: mint browser credentials without handing out a master key.

A mint is allowed when the account's Solution enables the plugin, the caller
is at least a MEMBER of the account, the plugin's settings list the provider
in ``token_providers`` and the account and user are within their limits. The
session (model, voice, instructions, tools …) comes only from the plugin's
resolved settings (platform defaults → Solution → Account), the TTL is capped
by the Solution's ceiling, and every mint is audited without the token or key.

Providers come from the ``register_token_providers`` hook, collected once per
process on first use; the kernel's AI plugin contributes the built-in ones.
The service never sees a Quart request: routes pass the account context.
"""

from __future__ import annotations

import asyncio
import logging
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Final

from pydantic import SecretStr, ValidationError

from core.ai.clients import OpenAIClientPool
from core.ai.errors import AIUnavailable, AIUpstreamError
from core.ai.tokens import (
    OPENAI_MAX_TTL_SECONDS,
    MintedToken,
    MintRequest,
    ProviderClients,
    ProviderCredentials,
    TokenProvider,
    clamp_ttl,
    scrub_secrets,
)
from core.ai.upstream import redact
from core.broker.counters import COLLECTION, Verdict, WindowCounters
from core.broker.namespaces import SolutionNamespace
from core.broker.settings import NAMESPACE, BrokerSettings
from core.kernel.errors import NotFound, Problem, RateLimited, ServiceUnavailable, Unprocessable
from core.kernel.plugins import PluginRegistry
from core.kernel.settings import Settings
from core.tenancy.audit import AuditLog
from core.tenancy.cascade import CascadeStore
from core.tenancy.models import AccountContext, Role, Solution
from core.tenancy.service import require_rank

__all__ = ["PINNED_KEYS", "ProviderEntry", "TokenBroker"]

log = logging.getLogger("synergyhub.broker")

HOOK: Final = "register_token_providers"
PROVIDER_NAME: Final = re.compile(r"^[a-z0-9][a-z0-9_.-]{0,62}$")
#: Upper bound of one provider call, whatever the provider does with its own timeouts.
MINT_DEADLINE_SECONDS: Final = 45.0

#: MintRequest field ← plugin settings key, per provider. Avatar and
#: transcription providers read their own keys so that an OpenAI voice or a
#: realtime model is never sent to a service that means something else by it.
PINNED_KEYS: Final[dict[str, dict[str, str]]] = {
    "openai-realtime": {"model": "model", "voice": "voice", "instructions": "instructions",
                        "tools": "tools", "language": "language"},
    "openai-transcription": {"model": "transcription_model",
                             "instructions": "transcription_prompt", "language": "language"},
    "liveavatar": {"avatar_id": "avatar_id", "voice": "avatar_voice_id", "language": "language"},
    "heygen": {"avatar_id": "avatar_id", "voice": "avatar_voice_id", "language": "language"},
}
DEFAULT_PINNED_KEYS: Final = {"model": "model", "voice": "voice", "instructions": "instructions",
                              "tools": "tools", "language": "language", "avatar_id": "avatar_id"}


@dataclass(frozen=True, slots=True)
class _CredentialSpec:
    key: str  # Settings attribute holding the secret
    base_url: str  # Settings attribute holding the base URL
    hint: str  # what an operator sets, for the 503 message


_OPENAI = _CredentialSpec(
    "openai_api_key", "openai_base_url",
    "set OPENAI_API_KEY (environment variable, or a file of that name in "
    "SYNERGYHUB_SECRETS_DIR); SYNERGYHUB_OPENAI_BASE_URL optionally points at another "
    "OpenAI-compatible endpoint",
)
BUILTIN_CREDENTIALS: Final[dict[str, _CredentialSpec]] = {
    "openai-realtime": _OPENAI,
    "openai-transcription": _OPENAI,
    "liveavatar": _CredentialSpec(
        "liveavatar_api_key", "liveavatar_base_url",
        "set SYNERGYHUB_LIVEAVATAR_API_KEY (environment variable or secret file); "
        "SYNERGYHUB_LIVEAVATAR_BASE_URL optionally overrides https://api.liveavatar.com",
    ),
    "heygen": _CredentialSpec(
        "heygen_api_key", "heygen_base_url",
        "set SYNERGYHUB_HEYGEN_API_KEY (environment variable or secret file); "
        "SYNERGYHUB_HEYGEN_BASE_URL optionally overrides https://api.heygen.com",
    ),
}


@dataclass(frozen=True, slots=True)
class ProviderEntry:
    """A registered provider, the plugin that contributed it and its credentials."""

    provider: TokenProvider
    owner: str
    kernel: bool
    credentials: ProviderCredentials | None
    missing: str  # the operator's fix when ``credentials`` is None


@dataclass(frozen=True, slots=True)
class Minted:
    """A minted token plus what the broker decided (for the route and the audit)."""

    token: MintedToken
    ttl_seconds: int


def _credentials(settings: Settings, name: str, provider: Any
                 ) -> tuple[ProviderCredentials | None, str]:
    """Credentials for a provider from settings only; else the message naming what to set."""
    spec = BUILTIN_CREDENTIALS.get(name)
    if spec is None:
        hook = getattr(provider, "credentials_from", None)
        hint = str(getattr(provider, "credentials_hint", "")) or (
            f"the provider {name!r} does not say which setting holds its key")
        if not callable(hook):
            return None, hint
        try:
            found = hook(settings)
        except Exception as exc:  # a plugin bug must not leak its message (it may hold a key)
            log.error("token provider credentials failed",
                      extra={"provider": name, "error": type(exc).__name__})
            return None, hint
        return (found, "") if isinstance(found, ProviderCredentials) else (None, hint)
    key: SecretStr | None = getattr(settings, spec.key)
    if key is None or not key.get_secret_value().strip():
        return None, spec.hint
    try:
        return ProviderCredentials(api_key=key, base_url=getattr(settings, spec.base_url)), ""
    except ValidationError:
        return None, f"{spec.base_url.upper()} must be an http(s) URL without credentials"


def pinned_request(provider: str, keys: Mapping[str, str], values: Mapping[str, Any],
                   policy: BrokerSettings) -> MintRequest:
    """The MintRequest a plugin's resolved settings pin (never anything from the client)."""
    fields: dict[str, Any] = {}
    for field, key in keys.items():
        value = values.get(key)
        if value is None or value == "" or value == []:
            continue
        fields[field] = tuple(value) if field == "tools" and isinstance(value, list) else value
    ceiling = policy.ttl_ceiling_seconds
    wanted = values.get("token_ttl_seconds")
    fields["ttl_seconds"] = (min(wanted, ceiling) if isinstance(wanted, int) and wanted > 0
                             else ceiling)
    fields["ttl_ceiling_seconds"] = ceiling
    try:
        return MintRequest.model_validate(fields)
    except ValidationError as exc:
        bad = sorted({str(e["loc"][0]) for e in exc.errors(include_url=False,
                                                            include_input=False) if e["loc"]})
        raise ServiceUnavailable(
            f"The plugin's settings do not make a valid {provider} session "
            f"(check: {', '.join(keys.get(b, b) for b in bad) or 'settings'}).",
            type_slug="provider-misconfigured",
        ) from None


class TokenBroker:
    """Mints ephemeral tokens for an account context (the use case behind the route)."""

    def __init__(self, *, settings: Settings, registry: PluginRegistry, database: Any,
                 cascade: CascadeStore, audit: AuditLog, http: Any) -> None:
        self.settings = settings
        self.registry = registry
        self.audit = audit
        self.store = cascade
        self.policy: SolutionNamespace[BrokerSettings] = SolutionNamespace(
            cascade, NAMESPACE, BrokerSettings)
        self.counters = WindowCounters(database[COLLECTION])
        self.pool = OpenAIClientPool()
        self.clients = ProviderClients(http=http, openai=self.pool)
        self._providers: dict[str, ProviderEntry] | None = None
        self._lock = asyncio.Lock()

    async def open(self) -> None:
        await self.counters.create_indexes()

    async def close(self) -> None:
        await self.pool.aclose()

    # -- providers ------------------------------------------------------------------

    async def providers(self) -> dict[str, ProviderEntry]:
        """Every registered provider by name (the hook is called once per process)."""
        if self._providers is not None:
            return self._providers
        async with self._lock:
            if self._providers is None:
                self._providers = await self._collect()
        return self._providers

    async def _collect(self) -> dict[str, ProviderEntry]:
        found: dict[str, ProviderEntry] = {}
        for result in await self.registry.call(HOOK):
            items = result.value if isinstance(result.value, list | tuple) else [result.value]
            for item in items:
                name = getattr(item, "name", None)
                if not isinstance(item, TokenProvider) or not isinstance(name, str):
                    self.registry.record_fault(result.plugin, HOOK, TypeError(
                        "a token provider needs a string 'name' and an async 'mint'"))
                    continue
                if not PROVIDER_NAME.match(name) or name in found:
                    self.registry.record_fault(result.plugin, HOOK, ValueError(
                        f"token provider name {name!r} is invalid or already registered"))
                    continue
                credentials, missing = _credentials(self.settings, name, item)
                found[name] = ProviderEntry(item, result.plugin,
                                            self.registry.is_kernel(result.plugin),
                                            credentials, missing)
        return found

    def _available(self, entry: ProviderEntry, solution: Solution) -> bool:
        """Kernel providers always; a feature plugin's only where its Solution enables it."""
        return entry.kernel or entry.owner in solution.enabled_plugins

    # -- settings -------------------------------------------------------------------

    async def plugin_settings(self, ctx: AccountContext, plugin: str) -> dict[str, Any]:
        """The plugin's settings as the cascade resolves them for this account.

        Settings given when the Solution enabled the plugin are the base of
        the Solution level; the cascade's Solution layer (with its locks) and
        the Account layer apply on top.
        """
        info = self.registry.infos[plugin]
        return await self.store.plugin_values(plugin, info.manifest.solution_settings, ctx)

    # -- minting --------------------------------------------------------------------

    async def mint(self, ctx: AccountContext, *, provider: str, plugin: str,
                   purpose: str) -> Minted:
        """Mint one token; raises problems a route answers as they are."""
        info = self.registry.infos.get(plugin)
        if info is None or info.kernel or plugin not in ctx.solution.enabled_plugins:
            raise NotFound(f"No plugin named {plugin!r} is enabled for this account.",
                           type_slug="plugin-not-enabled")
        require_rank(ctx.principal, ctx, Role.MEMBER)
        providers = await self.providers()
        entry = providers.get(provider)
        if entry is None or not self._available(entry, ctx.solution):
            offered = sorted(n for n, e in providers.items() if self._available(e, ctx.solution))
            raise Unprocessable(f"Unknown token provider {provider!r}; this Solution offers: "
                                f"{', '.join(offered) or 'none'}.", type_slug="unknown-provider")
        values, policy = await asyncio.gather(self.plugin_settings(ctx, plugin),
                                              self.policy.values(ctx.solution.id))
        allowed = values.get("token_providers")
        if not isinstance(allowed, list) or provider not in allowed:
            shown = ", ".join(map(str, allowed or [])) if isinstance(allowed, list) else ""
            raise Unprocessable(
                f"Plugin {plugin!r} does not mint {provider!r} tokens (its token_providers "
                f"setting allows: {shown or 'none'}).", type_slug="provider-not-allowed")
        if entry.credentials is None:
            raise ServiceUnavailable(f"The token provider {provider!r} is not configured: "
                                     f"{entry.missing}.", type_slug="provider-not-configured")
        keys = getattr(entry.provider, "settings_keys", None)
        if not isinstance(keys, Mapping):
            keys = PINNED_KEYS.get(provider, DEFAULT_PINNED_KEYS)
        request = pinned_request(provider, keys, values, policy)
        limits = policy.limits()
        verdict = await self.counters.take(limits, account_id=ctx.account.id,
                                           uid=ctx.principal.uid)
        if not verdict.allowed:
            raise _rate_limited(verdict)
        try:
            token = await self._call(entry, provider, request)
        except Exception:
            # The provider failed: no token, so no mint to count.
            await self.counters.give_back(limits, verdict, account_id=ctx.account.id,
                                          uid=ctx.principal.uid)
            raise
        ttl = clamp_ttl(request, OPENAI_MAX_TTL_SECONDS)
        await self.audit.record(
            "broker.token_minted", actor=ctx.principal, account_id=ctx.account.id,
            solution_id=ctx.solution.id, target=plugin,
            details={"provider": provider, "plugin": plugin, "purpose": purpose,
                     "ttl_seconds": ttl, "expires_at": token.expires_at.isoformat(),
                     "ttl_enforced": token.ttl_enforced, "session_id": token.session_id,
                     "model": request.model},
        )
        return Minted(token=token, ttl_seconds=ttl)

    async def _call(self, entry: ProviderEntry, name: str, request: MintRequest) -> MintedToken:
        credentials = entry.credentials
        assert credentials is not None
        secret = credentials.api_key.get_secret_value()
        failure: Problem | None = None
        try:
            async with asyncio.timeout(MINT_DEADLINE_SECONDS):
                token = await entry.provider.mint(request=request, credentials=credentials,
                                                  clients=self.clients)
        except AIUnavailable as exc:
            failure = ServiceUnavailable(
                f"The token provider {name!r} cannot mint: {redact(str(exc), (secret,))}",
                type_slug="provider-not-configured")
        except AIUpstreamError as exc:
            failure = Problem(f"The token provider {name!r} failed: "
                              f"{redact(str(exc), (secret,))}", status=502,
                              type_slug="provider-error", retryable=exc.retryable)
        except TimeoutError:
            failure = Problem(f"The token provider {name!r} did not answer within "
                              f"{MINT_DEADLINE_SECONDS:g}s.", status=504,
                              type_slug="provider-timeout")
        except Exception as exc:
            # A plugin's provider: its message may carry anything, so only the type is kept.
            log.error("token provider raised", extra={"provider": name,
                                                      "error": type(exc).__name__})
            failure = Problem(f"The token provider {name!r} failed ({type(exc).__name__}).",
                              status=502, type_slug="provider-error")
        if failure is not None:
            # Raised outside the except blocks: no SDK exception (holding the
            # request and its auth header) stays chained to the problem.
            raise failure
        if not isinstance(token, MintedToken) or not token.value or secret in token.value:
            log.error("token provider returned an unusable token", extra={"provider": name})
            raise Problem(f"The token provider {name!r} returned no usable token.", status=502,
                          type_slug="provider-error")
        clean = scrub_secrets(token.session, (secret,))
        return token if clean == token.session else token.model_copy(update={"session": clean})


def _rate_limited(verdict: Verdict) -> RateLimited:
    limit = verdict.limit
    assert limit is not None
    per = "minute" if limit.seconds == 60 else "UTC day" if limit.seconds == 86_400 else (
        f"{limit.seconds} s")
    allowed = limit.user if verdict.which == "user" else limit.account
    who = "you in this account" if verdict.which == "user" else "this account"
    return RateLimited(
        f"Token limit reached: {allowed} per {per} for {who}. "
        f"Retry in {verdict.retry_after} s.",
        type_slug="token-quota-exceeded",
        headers={"Retry-After": str(verdict.retry_after)},
        limit=f"{verdict.which}_per_{limit.name}", retry_after=verdict.retry_after,
    )
