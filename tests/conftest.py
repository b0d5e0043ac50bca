"""Kernel test suite configuration: faulty plugins prove fault isolation."""

from __future__ import annotations

import asyncio
import time
from typing import Any, ClassVar

import pytest
from quart import Blueprint

from core.hooks import PluginManifest, hookimpl


class BoomPlugin:
    """A feature plugin whose route raises and whose startup raises."""

    blueprint = Blueprint("boom", __name__)

    @staticmethod
    @blueprint.get("/explode")
    async def explode(account_id: str) -> dict[str, str]:
        raise RuntimeError("database password is hunter2")

    @hookimpl
    def plugin_manifest(self) -> PluginManifest:
        return PluginManifest(name="boom", version="1.0", title="Boom")

    @hookimpl
    def register_routes(self) -> Blueprint:
        return self.blueprint

    @hookimpl
    def startup(self) -> None:
        raise RuntimeError("boom plugin cannot start")


class HangingPlugin:
    """A plugin that hangs in a sync hook and in an async hook."""

    @hookimpl
    def plugin_manifest(self) -> PluginManifest:
        return PluginManifest(name="hang", version="1.0", title="Hang")

    @hookimpl
    def register_models(self) -> list[object]:
        time.sleep(3600)
        return []

    @hookimpl
    async def startup(self) -> None:
        await asyncio.sleep(3600)


@pytest.fixture(scope="session")
def synergyhub_extra_plugins() -> list[tuple[str, object]]:
    return [("boom", BoomPlugin()), ("hang", HangingPlugin()),
            ("rtprobe", RealtimeProbePlugin())]


class RealtimeProbePlugin:
    """Socket.IO handlers (namespace ``/rtprobe``) for the real-time e2e tests and Redis test."""

    touched: ClassVar[dict[str, int]] = {}

    @hookimpl
    def plugin_manifest(self) -> PluginManifest:
        from pydantic import BaseModel, ConfigDict

        class ProbeSettings(BaseModel):
            model_config = ConfigDict(extra="forbid")
            greeting: str = "hello"

        return PluginManifest(name="rtprobe", version="1.0", title="Realtime probe",
                              solution_settings=ProbeSettings)

    @hookimpl
    def register_socket_handlers(self) -> dict[str, Any]:
        from typing import Literal

        from pydantic import BaseModel, Field

        from core.kernel.errors import Forbidden
        from core.realtime import SocketContext, socket_handler

        class Echo(BaseModel):
            text: str = Field(max_length=200)
            n: int = 0

        class Broadcast(BaseModel):
            room: Literal["account", "group", "user"] = "account"
            group_id: str | None = None
            message: str = Field(default="", max_length=200)
            sent_at: float | None = None

        @socket_handler(payload_model=Echo)
        async def echo(ctx: SocketContext, payload: Echo) -> dict[str, Any]:
            return {"text": payload.text, "n": payload.n, "uid": ctx.principal.uid,
                    "account_id": ctx.account.id, "solution_id": ctx.solution.id}

        async def touch(ctx: SocketContext, payload: dict[str, Any]) -> int:
            uid = ctx.principal.uid
            RealtimeProbePlugin.touched[uid] = RealtimeProbePlugin.touched.get(uid, 0) + 1
            return RealtimeProbePlugin.touched[uid]

        async def count(ctx: SocketContext, payload: dict[str, Any]) -> int:
            return RealtimeProbePlugin.touched.get(ctx.principal.uid, 0)

        @socket_handler(payload_model=Broadcast)
        async def broadcast(ctx: SocketContext, payload: Broadcast) -> dict[str, Any]:
            data = {"message": payload.message, "sent_at": payload.sent_at,
                    "from": ctx.principal.uid, "account_id": ctx.account.id}
            if payload.room == "account":
                await ctx.realtime.emit_to_account("rtprobe", ctx.account.id, "news", data)
            elif payload.room == "group" and payload.group_id:
                await ctx.realtime.emit_to_group("rtprobe", payload.group_id, "news", data)
            else:
                await ctx.realtime.emit_to_user("rtprobe", ctx.principal.uid, "news", data)
            return {"sent": True}

        async def fail(ctx: SocketContext, payload: dict[str, Any]) -> None:
            raise RuntimeError("database password is hunter2")

        async def forbid(ctx: SocketContext, payload: dict[str, Any]) -> None:
            raise Forbidden("The probe refuses this.")

        async def chunks(ctx: SocketContext, payload: dict[str, Any]) -> dict[str, int]:
            for i in range(3):
                await ctx.reply("chunk", {"i": i})
            return {"chunks": 3}

        async def settings(ctx: SocketContext, payload: dict[str, Any]) -> dict[str, Any]:
            return await ctx.plugin_settings()

        return {"echo": echo, "touch": touch, "count": count, "broadcast": broadcast,
                "fail": fail, "forbid": forbid, "chunks": chunks, "settings": settings}
