"""Studio over Socket.IO end to end: the app under Hypercorn (HTTP + Socket.IO), real
Firebase emulator users, and FakeAIServer as the model. Run output streams to the
caller's ``user:<uid>`` room in the ``/studio`` namespace, and nobody else's."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import pytest_asyncio
import socketio
from pydantic import SecretStr

from core.kernel.app import create_app, create_asgi_app
from core.testing.fake_ai import FakeAIServer
from core.testing.pytest_plugin import LiveServer
from core.testing.tenancy import Personas, seed_personas

pytestmark = pytest.mark.asyncio(loop_scope="session")

NS = "/studio"
WAIT = 10.0


@dataclass
class Listener:
    client: socketio.AsyncClient
    events: dict[str, asyncio.Queue[Any]] = field(default_factory=lambda: defaultdict(
        asyncio.Queue))

    async def call(self, event: str, payload: Any) -> dict[str, Any]:
        ack: dict[str, Any] = await self.client.call(event, payload, namespace=NS, timeout=WAIT)
        return ack

    async def next(self, event: str) -> Any:
        return await asyncio.wait_for(self.events[event].get(), WAIT)

    def drain(self, event: str) -> list[Any]:
        queue, items = self.events[event], []
        while not queue.empty():
            items.append(queue.get_nowait())
        return items


@dataclass
class Live:
    url: str
    personas: Personas
    fake: FakeAIServer
    opened: list[socketio.AsyncClient] = field(default_factory=list)

    @property
    def home(self) -> str:
        return self.personas.home_account

    async def http(self, method: str, path: str, persona: str, body: Any = None) -> Any:
        async with httpx.AsyncClient(base_url=self.url, timeout=WAIT) as http:
            response = await http.request(
                method, f"/api/v1/accounts/{self.home}/studio{path}", json=body,
                headers=self.personas[persona].headers())
        return response

    async def listen(self, persona: str) -> Listener:
        client = socketio.AsyncClient(reconnection=False)
        listener = Listener(client)

        async def catch_all(event: str, *args: Any) -> None:
            listener.events[event].put_nowait(args[0] if len(args) == 1 else list(args))

        client.on("*", catch_all, namespace=NS)
        self.opened.append(client)
        await client.connect(self.url, auth={"token": self.personas[persona].token},
                             namespaces=[NS], transports=["websocket"], wait_timeout=WAIT)
        joined = await listener.call("join", {"room": "user", "account_id": self.home})
        assert joined["ok"], joined
        return listener


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def live(synergyhub_settings: Any, synergyhub_stack: Any) -> AsyncIterator[Live]:
    with FakeAIServer() as fake:
        settings = synergyhub_settings.model_copy(update={
            "mongodb_database": f"{synergyhub_settings.mongodb_database}_studio_rt",
            "openai_api_key": SecretStr(fake.openai_key),
            "openai_base_url": fake.openai_base_url,
        })
        seeding = create_app(settings)
        async with seeding.test_app():
            personas = await seed_personas(seeding.extensions["synergyhub"].db,
                                           synergyhub_stack.firebase_auth_host,
                                           enabled_plugins=["studio"])
        with LiveServer(create_asgi_app(settings)) as url:
            state = Live(url, personas, fake)
            try:
                yield state
            finally:
                for client in state.opened:
                    if client.connected:
                        await client.disconnect()


@pytest.fixture
def fake(live: Live) -> FakeAIServer:
    live.fake.reset()
    return live.fake


async def _prompt(live: Live, persona: str = "ACCOUNT_ADMIN", **fields: Any) -> str:
    body = {"title": "Streamed", "scope": "account", "template": "Tell {{ name }}",
            "variables": [{"name": "name"}], **fields}
    response = await live.http("POST", "/prompts", persona, body)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def test_http_run_streams_to_the_callers_room_only(live: Live, fake: FakeAIServer) -> None:
    member, admin = await live.listen("MEMBER"), await live.listen("ACCOUNT_ADMIN")
    prompt_id = await _prompt(live)
    chunks = ["a" * 250, "b" * 250, "c" * 10]
    fake.next_chat_reply("".join(chunks), chunks=chunks)

    response = await live.http("POST", f"/prompts/{prompt_id}/runs", "MEMBER",
                               {"inputs": {"name": "Ann"}})
    assert response.status_code == 201, response.text
    run = response.json()
    started = await member.next("run.started")
    assert started == {"run_id": run["id"], "prompt_id": prompt_id, "version": 1}
    completed = await member.next("run.completed")
    assert completed["id"] == run["id"] and completed["output"] == run["output"]
    deltas = member.drain("run.delta")
    assert [d["seq"] for d in deltas] == list(range(len(deltas))) and len(deltas) >= 2
    assert {d["run_id"] for d in deltas} == {run["id"]}
    assert "".join(d["text"] for d in deltas) == "".join(chunks) == run["output"]
    assert "read_keys" not in completed and "write_keys" not in completed
    # The account admin, connected to the same namespace, saw nothing of it.
    await asyncio.sleep(0.2)
    assert not any(admin.drain(e) for e in ("run.started", "run.delta", "run.completed"))


async def test_run_event_acknowledges_the_stored_run(live: Live, fake: FakeAIServer) -> None:
    member = await live.listen("MEMBER")
    prompt_id = await _prompt(live)
    fake.next_chat_reply("Hello there, Bob.")
    ack = await member.call("run", {"account_id": live.home, "prompt_id": prompt_id,
                                    "inputs": {"name": "Bob"}})
    assert ack["ok"], ack
    run = ack["data"]
    assert run["status"] == "completed" and run["output"] == "Hello there, Bob."
    assert run["owner_id"] == live.personas["MEMBER"].uid and run["scope"] == "private"
    deltas = [d for d in member.drain("run.delta") if d["run_id"] == run["id"]]
    if not deltas:
        deltas = [await member.next("run.delta")]
    assert "".join(d["text"] for d in deltas) == run["output"]
    response = await live.http("GET", f"/runs/{run['id']}", "MEMBER")
    assert response.status_code == 200 and response.json()["output"] == run["output"]

    preview = await member.call("render", {"account_id": live.home, "prompt_id": prompt_id,
                                           "inputs": {"name": "Eve"}})
    assert preview["ok"] and preview["data"]["user"] == "Tell Eve"


async def test_bad_socket_events_are_clear_errors(live: Live, fake: FakeAIServer) -> None:
    member = await live.listen("MEMBER")
    prompt_id = await _prompt(live, template="line one\n{{ name.first }}")

    async def error(payload: Any, status: int, persona: Listener = member,
                    event: str = "run") -> dict[str, Any]:
        ack = await persona.call(event, payload)
        assert ack["ok"] is False, ack
        assert ack["error"]["status"] == status, ack
        assert ack["error"]["type"].startswith("https://synergyhub.dev/problems/")
        return dict(ack["error"])

    base = {"account_id": live.home, "prompt_id": prompt_id}
    failure = await error({**base, "inputs": {"name": "Ann"}}, 422)
    assert failure["type"].endswith("/template-error") and "first" in failure["detail"]
    await error({**base, "inputs": {}}, 422)
    await error({**base, "inputs": {"name": "Ann"}, "temperature": 2}, 422)
    await error({"account_id": live.home, "prompt_id": "0123456789abcdef01234567",
                 "inputs": {}}, 404)
    await error({**base, "account_id": live.personas.tenants[1].accounts[0],
                 "inputs": {"name": "x"}}, 404)
    viewer = await live.listen("VIEWER")
    good = await _prompt(live)
    await error({"account_id": live.home, "prompt_id": good, "inputs": {"name": "x"}}, 403,
                viewer)
    await error({"account_id": live.home, "prompt_id": good}, 404, member, "no-such-event")
    assert fake.requests_to("/v1/chat/completions") == []
