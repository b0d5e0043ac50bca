"""Socket.IO handlers of the ``/studio`` namespace.

The kernel authenticates the connection, re-checks the principal, the account
and the plugin's enablement for every event, and validates the payload
against ``payload_model``. Run output streams to the caller's ``user`` room
(join it with the kernel's ``join`` event, ``{"room": "user", "account_id"}``)
as ``run.started``, ``run.delta`` (``{run_id, seq, text}``), then
``run.completed`` or ``run.failed``; the acknowledgement carries the stored run.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

from plugins.studio.models import InputValue
from plugins.studio.routes import bounded_inputs
from plugins.studio.service import StudioService, public

if TYPE_CHECKING:
    from core.realtime import SocketContext


class RunPayload(BaseModel):
    model_config = ConfigDict(extra="forbid")

    prompt_id: str = Field(min_length=1, max_length=64)
    version: int | None = Field(None, ge=1)
    inputs: dict[str, InputValue | None] = Field(default_factory=dict)

    @field_validator("inputs")
    @classmethod
    def _bounded(cls, value: dict[str, Any]) -> dict[str, Any]:
        return bounded_inputs(value)


class RenderPayload(RunPayload):
    pass


def _service(ctx: SocketContext) -> StudioService:
    return StudioService(ctx.services, ctx.account_context)


async def run(ctx: SocketContext, payload: RunPayload) -> dict[str, Any]:
    """Run a prompt version; deltas go to the caller's user room, the ack is the run."""
    stored = await _service(ctx).run(payload.prompt_id, payload.version, payload.inputs)
    return public(stored)


async def render(ctx: SocketContext, payload: RenderPayload) -> dict[str, Any]:
    """Preview the rendered messages without calling the model."""
    return await _service(ctx).preview(payload.prompt_id, payload.version, payload.inputs)


# What ``core.realtime.socket_handler(payload_model=...)`` sets; spelled out so this
# module imports nothing from the channel itself.
run.payload_model = RunPayload  # type: ignore[attr-defined]
render.payload_model = RenderPayload  # type: ignore[attr-defined]


def handlers() -> dict[str, Any]:
    return {"run": run, "render": render}
