"""The AI gateway wired into the kernel as the plugin ``kernel.ai``.

At start-up ``services.ai`` becomes a :class:`SolutionAIGateway`: the
:class:`~core.ai.gateway.AIGateway` with the platform provider from settings
(``OPENAI_API_KEY``, ``SYNERGYHUB_OPENAI_BASE_URL``, ``SYNERGYHUB_OPENAI_MODEL``),
usage metered per account in MongoDB, and per-Solution ``base_url`` /
``default_model`` overrides from the settings namespace ``ai``. Plugins call
``services.ai.chat(account_id=..., messages=[...])``. The platform key is the
only key: a Solution cannot bring its own (secrets live in settings only), and
only a SUPERADMIN may point a Solution at another endpoint, because the
platform key travels to it.

This module also contributes the built-in ephemeral-token providers through
``register_token_providers`` and maps AI errors to problem+json for every
route (503 when no provider is configured, 502 when the provider fails).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, field_validator
from quart import Blueprint, Response
from quart_schema import validate_request

from core.ai.errors import AIOutputError, AIUnavailable, AIUpstreamError
from core.ai.gateway import AIGateway, AIProviderConfig
from core.ai.meter import MongoUsageMeter
from core.ai.tokens import (
    HeyGenLegacyProvider,
    LiveAvatarProvider,
    OpenAIRealtimeProvider,
    OpenAITranscriptionProvider,
)
from core.ai.upstream import redact
from core.ai.usage import UsageMeter
from core.broker.namespaces import SolutionNamespace
from core.hooks import PluginManifest, hookimpl
from core.kernel import context
from core.kernel.errors import Forbidden, problem_response
from core.kernel.settings import Settings
from core.tenancy import service as tenancy_service
from core.tenancy.models import ROLE_RANK, Principal, Role

__all__ = ["NAMESPACE", "UNAVAILABLE", "AISettings", "SolutionAIGateway", "platform_config"]

NAMESPACE: Final = "ai"
UNAVAILABLE: Final = (
    "No AI provider is configured: set OPENAI_API_KEY (environment variable, or a file of "
    "that name in SYNERGYHUB_SECRETS_DIR); SYNERGYHUB_OPENAI_BASE_URL and "
    "SYNERGYHUB_OPENAI_MODEL optionally choose another OpenAI-compatible endpoint and model."
)


class AISettings(BaseModel):
    """Per-Solution overrides of the platform provider (no keys: those are platform secrets)."""

    model_config = ConfigDict(extra="forbid")

    base_url: str | None = Field(None, max_length=500,
                                 description="OpenAI-compatible endpoint (SUPERADMIN only)")
    default_model: str | None = Field(None, min_length=1, max_length=100,
                                      description="chat model when a call names none")

    @field_validator("base_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None:
            return None
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError("base_url must be an http(s) URL")
        if parts.username or parts.password or parts.query or parts.fragment:
            raise ValueError("base_url must be a plain URL (no credentials, query or fragment)")
        return value.rstrip("/")


def check_ai_write(principal: Principal, values: Mapping[str, Any], defaults: BaseModel) -> None:
    """``base_url`` receives the platform's key, so only the platform operator sets it."""
    if "base_url" in values and not principal.is_superadmin:
        raise Forbidden("Only a platform SUPERADMIN can set base_url: the platform's API key "
                        "is sent to that endpoint.", type_slug="ai-base-url-forbidden")


def platform_config(settings: Settings) -> AIProviderConfig | None:
    """The platform provider from settings; ``None`` without a key (AI answers 503)."""
    key = settings.openai_api_key
    if key is None or not key.get_secret_value().strip():
        return None
    data: dict[str, Any] = {"api_key": key, "default_model": settings.openai_model}
    if settings.openai_base_url:
        data["base_url"] = settings.openai_base_url
    return AIProviderConfig.model_validate(data)


class SolutionAIGateway(AIGateway):
    """The gateway plugins use: a call naming ``account_id`` gets its Solution's provider.

    Without ``config`` a call resolves the account's Solution overrides over
    the platform provider, and its usage is metered to that account.
    """

    unavailable_message = UNAVAILABLE

    def __init__(self, *, default_config: AIProviderConfig | None, meter: UsageMeter,
                 overrides: SolutionNamespace[AISettings], directory: Any) -> None:
        super().__init__(default_config=default_config, meter=meter)
        self.meter = meter
        self.overrides = overrides
        self.directory = directory

    async def config_for(self, account_id: str | None) -> AIProviderConfig | None:
        """The provider for an account: its Solution's overrides on the platform's."""
        base = self.default_config
        if base is None or account_id is None:
            return base
        found = await self.directory.account_with_solution(account_id)
        if found is None:
            return base
        ai = await self.overrides.values(found[1].id)
        changes = {k: v for k, v in (("base_url", ai.base_url),
                                     ("default_model", ai.default_model)) if v is not None}
        if not changes:
            return base
        return AIProviderConfig.model_validate(
            {**base.model_dump(), "api_key": base.api_key, **changes})


# -- HTTP: problem+json for AI errors, Solution overrides, usage ------------------------

blueprint = Blueprint("ai", __name__, url_prefix="/api/v1")


def _safe(error: Exception) -> str:
    """The error's text with every configured key removed (belt and braces)."""
    settings = context.services().settings
    keys = (settings.openai_api_key, settings.liveavatar_api_key, settings.heygen_api_key)
    return redact(str(error), [k.get_secret_value() for k in keys if k is not None])


@blueprint.app_errorhandler(AIUnavailable)
async def _unavailable(error: AIUnavailable) -> Response:
    return problem_response(503, _safe(error), type_slug="ai-not-configured")


@blueprint.app_errorhandler(AIUpstreamError)
async def _upstream(error: AIUpstreamError) -> Response:
    return problem_response(502, _safe(error), type_slug="ai-upstream-error",
                            retryable=error.retryable)


@blueprint.app_errorhandler(AIOutputError)
async def _output(error: AIOutputError) -> Response:
    return problem_response(502, _safe(error), type_slug="ai-output-error",
                            truncated=error.truncated)


class AISettingsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    values: dict[str, Any] = Field(default_factory=dict)


def _gateway() -> SolutionAIGateway:
    gateway: SolutionAIGateway | None = context.services().ai
    if gateway is None:
        raise AIUnavailable("The AI gateway did not start; /readyz shows why.")
    return gateway


@blueprint.get("/solutions/<solution_id>/ai/settings")
async def get_ai_settings(solution_id: str) -> dict[str, Any]:
    """The Solution's AI overrides with provenance (the key is never shown)."""
    _, solution = await context.enter_solution_admin(solution_id, write=False)
    sid = solution.id
    gateway = _gateway()
    return {"namespace": NAMESPACE, "values": await gateway.overrides.resolved(sid),
            "platform": {"configured": gateway.default_config is not None,
                         "model": gateway.default_config.default_model
                         if gateway.default_config else None}}


@blueprint.put("/solutions/<solution_id>/ai/settings")
@validate_request(AISettingsIn)
async def put_ai_settings(solution_id: str, data: AISettingsIn) -> dict[str, Any]:
    """SOLUTION_ADMIN sets default_model; base_url needs SUPERADMIN."""
    principal, solution = await context.enter_solution_admin(solution_id, write=True)
    sid = solution.id
    gateway = _gateway()
    clean = await gateway.overrides.write(principal, sid, data.values, check_ai_write)
    await context.services().tenancy.audit.record(
        "settings.changed", actor=principal, solution_id=sid, target=NAMESPACE,
        details={"level": "solution", "keys": sorted(clean)})
    return {"namespace": NAMESPACE, "values": await gateway.overrides.resolved(sid)}


@blueprint.get("/accounts/<account_id>/ai/usage")
async def get_ai_usage(account_id: str) -> dict[str, Any]:
    """AI requests and tokens of the account per UTC day (ACCOUNT_ADMIN or above)."""
    ctx = await context.enter_account(account_id)
    if tenancy_service.effective_rank(ctx.principal, ctx) < ROLE_RANK[Role.ACCOUNT_ADMIN]:
        raise Forbidden("This needs ACCOUNT_ADMIN or above.")
    meter = _gateway().meter
    days = await meter.days(ctx.account.id) if isinstance(meter, MongoUsageMeter) else []
    totals = {key: sum(d[key] for d in days)
              for key in ("requests", "prompt_tokens", "completion_tokens")}
    return {"account_id": ctx.account.id, "days": days, "totals": totals}


# -- hooks -------------------------------------------------------------------------------


@hookimpl
def plugin_manifest() -> PluginManifest:
    return PluginManifest(name="kernel.ai", version="1", title="AI gateway and token providers")


@hookimpl
def register_routes() -> list[Blueprint]:
    return [blueprint]


@hookimpl
def register_token_providers() -> list[Any]:
    """The built-in providers; their keys come from settings (see core.broker.service)."""
    return [OpenAIRealtimeProvider(), OpenAITranscriptionProvider(), LiveAvatarProvider(),
            HeyGenLegacyProvider()]


@hookimpl
async def startup(services: Any) -> None:
    meter = MongoUsageMeter(services.db)
    await meter.create_indexes()
    services.ai = SolutionAIGateway(
        default_config=platform_config(services.settings), meter=meter,
        overrides=SolutionNamespace(services.tenancy.cascade, NAMESPACE, AISettings),
        directory=services.tenancy.directory,
    )


@hookimpl
async def shutdown(services: Any) -> None:
    gateway = services.ai
    services.ai = None
    if gateway is not None:
        await gateway.aclose()
