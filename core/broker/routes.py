"""Broker HTTP API: mint ephemeral tokens; read and set a Solution's broker policy."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from quart import Blueprint, request
from quart_schema import document_request, document_response, validate_request

from core.broker.service import TokenBroker
from core.broker.settings import check_broker_write
from core.kernel import context
from core.kernel.errors import ServiceUnavailable, Unprocessable, validation_error_list

blueprint = Blueprint("broker", __name__, url_prefix="/api/v1")

NAME = r"^[a-z0-9][a-z0-9_.-]{0,62}$"
#: Fields a client might try to send that the server pins from settings.
PINNED_FIELDS = frozenset({
    "model", "voice", "instructions", "tools", "language", "avatar_id", "session",
    "ttl", "ttl_seconds", "expires_after", "audio", "transcription_model", "options",
})


class MintIn(BaseModel):
    """What a browser may ask for; everything about the session is pinned by the server."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    provider: str = Field(pattern=NAME, max_length=63,
                          description="e.g. openai-realtime, openai-transcription, liveavatar")
    plugin: str = Field(pattern=NAME, max_length=63,
                        description="the feature plugin the session is for, e.g. v2v")
    purpose: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9 _.:-]{0,79}$",
                         description="a short label kept in the audit log")


class MintOut(BaseModel):
    value: str = Field(description="the ephemeral credential for the browser")
    expires_at: datetime
    provider: str
    session: dict[str, Any] = Field(description="the effective, server-pinned session")


class PolicyIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    values: dict[str, Any] = Field(default_factory=dict)


def _broker() -> TokenBroker:
    broker: TokenBroker | None = context.services().broker
    if broker is None:
        raise ServiceUnavailable("The token broker did not start; /readyz shows why.")
    return broker


async def _mint_input() -> MintIn:
    """Parse the body ourselves so a pinned field gets a message that says why."""
    data = await request.get_json(silent=True)
    if not isinstance(data, dict):
        raise Unprocessable("Send a JSON object: {provider, plugin, purpose}.")
    refused = sorted(str(k) for k in data if k in PINNED_FIELDS)
    if refused:
        raise Unprocessable(
            f"These are pinned server-side from the plugin's settings and cannot be sent: "
            f"{', '.join(refused)}. Send only provider, plugin and purpose.",
            type_slug="pinned-by-server", refused=refused,
        )
    try:
        return MintIn.model_validate(data)
    except ValidationError as exc:
        raise Unprocessable("The request does not match the expected schema.",
                            errors=validation_error_list(exc)) from None


@blueprint.post("/accounts/<account_id>/ephemeral-tokens")
@document_request(MintIn)
@document_response(MintOut, 200)
async def mint_token(account_id: str) -> tuple[dict[str, Any], int, dict[str, str]]:
    """Mint a short-lived provider token for a browser session of a plugin.

    Needs MEMBER (or above) of the account, a plugin the account's Solution
    enables and a provider the plugin's settings allow. The session is pinned
    from the plugin's settings; sending model, voice, instructions or tools
    is refused (422). 429 with Retry-After past the account's or user's
    limits; 503 when the provider's key is not configured.
    """
    ctx = await context.enter_account(account_id)
    data = await _mint_input()
    minted = await _broker().mint(ctx, provider=data.provider, plugin=data.plugin,
                                  purpose=data.purpose)
    token = minted.token
    body = MintOut(value=token.value, expires_at=token.expires_at, provider=token.provider,
                   session=token.session).model_dump(mode="json")
    return body, 200, {"Cache-Control": "no-store", "Pragma": "no-cache"}


@blueprint.get("/solutions/<solution_id>/broker/settings")
async def get_broker_settings(solution_id: str) -> dict[str, Any]:
    """The Solution's token TTL ceiling and mint limits, with provenance."""
    _, solution = await context.enter_solution_admin(solution_id, write=False)
    return {"namespace": "broker", "values": await _broker().policy.resolved(solution.id)}


@blueprint.put("/solutions/<solution_id>/broker/settings")
@validate_request(PolicyIn)
async def put_broker_settings(solution_id: str, data: PolicyIn) -> dict[str, Any]:
    """SOLUTION_ADMIN may lower the platform defaults; raising them needs SUPERADMIN."""
    principal, solution = await context.enter_solution_admin(solution_id, write=True)
    broker = _broker()
    clean = await broker.policy.write(principal, solution.id, data.values, check_broker_write)
    await context.services().tenancy.audit.record(
        "settings.changed", actor=principal, solution_id=solution.id, target="broker",
        details={"level": "solution", "keys": sorted(clean), "values": clean})
    return {"namespace": "broker", "values": await broker.policy.resolved(solution.id)}
