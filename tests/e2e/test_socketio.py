"""Socket.IO channel end to end: ``socketio.AsyncClient`` against the app under Hypercorn.

The session ``live_server`` serves ``create_asgi_app`` with the test plugin
``rtprobe`` (tests/conftest.py). This module seeds a tenancy of its own whose
home Solution enables ``rtprobe`` (the second Solution does not), with real
Firebase Auth emulator users. Tokens with a short expiry are unsigned JWTs,
which the emulator-mode verifier accepts (signature checks are skipped there
by firebase-admin; our verifier still checks audience and expiry).
"""

from __future__ import annotations

import asyncio
import base64
import json
import time
from collections import defaultdict
from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import firebase_admin
import httpx
import pytest
import pytest_asyncio
import socketio
from firebase_admin import auth as firebase_auth

from core.realtime.channel import RealtimeChannel
from core.realtime.models import SessionState
from core.tenancy.directory import set_membership
from core.tenancy.identity import normalize_email
from core.tenancy.models import Membership, MembershipKind, Role, new_id, utcnow
from core.testing.tenancy import Persona, Personas, seed_personas

pytestmark = pytest.mark.asyncio(loop_scope="session")

NS = "/rtprobe"
WAIT = 10.0  # seconds: connect and ack timeouts (the client's default is 1 s)


# --------------------------------------------------------------------------- helpers


class Probe:
    """A connected client that records every event it receives, per event name."""

    def __init__(self, client: socketio.AsyncClient) -> None:
        self.client = client
        self.events: dict[str, asyncio.Queue[Any]] = defaultdict(asyncio.Queue)
        self.disconnected = asyncio.Event()

    async def call(self, event: str, *args: Any) -> Any:
        return await self.client.call(event, args[0] if len(args) == 1 else args or None,
                                      namespace=NS, timeout=WAIT)

    async def next(self, event: str, timeout: float = WAIT) -> Any:
        return await asyncio.wait_for(self.events[event].get(), timeout)

    def pending(self, event: str) -> list[Any]:
        queue = self.events[event]
        items = []
        while not queue.empty():
            items.append(queue.get_nowait())
        return items


class Clients:
    def __init__(self, url: str) -> None:
        self.url = url
        self.open: list[socketio.AsyncClient] = []

    async def connect(self, token: str | None = None, *, auth: Any = "default",
                      headers: dict[str, str] | None = None,
                      namespaces: list[str] | None = None) -> Probe:
        client = socketio.AsyncClient(reconnection=False)
        probe = Probe(client)

        async def catch_all(event: str, *args: Any) -> None:
            probe.events[event].put_nowait(args[0] if len(args) == 1 else list(args))

        async def on_disconnect(*_: Any) -> None:
            probe.disconnected.set()

        client.on("*", catch_all, namespace=NS)
        client.on("disconnect", on_disconnect, namespace=NS)
        self.open.append(client)
        await client.connect(
            self.url, auth={"token": token} if auth == "default" else auth,
            headers=headers or {}, namespaces=namespaces or [NS],
            transports=["websocket"], wait_timeout=WAIT,
        )
        return probe

    async def close(self) -> None:
        for client in self.open:
            if client.connected:
                await client.disconnect()
            await client.eio.disconnect(abort=True)  # also closes a failed attempt's session


def unsigned_token(persona: Persona, project_id: str, *, expires_in: float,
                   auth_time: float | None = None) -> str:
    """An emulator-style ID token (alg none) with the expiry we choose."""
    now = int(time.time())

    def part(value: dict[str, Any]) -> str:
        raw = json.dumps(value, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    claims = {
        "iss": f"https://securetoken.google.com/{project_id}", "aud": project_id,
        "sub": persona.uid, "user_id": persona.uid, "email": persona.email,
        "iat": now, "auth_time": int(auth_time or now), "exp": int(now + expires_in),
        "firebase": {"sign_in_provider": "password", "identities": {}},
    }
    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part(claims)}."


def error_of(ack: dict[str, Any], status: int) -> dict[str, Any]:
    assert ack["ok"] is False, ack
    error: dict[str, Any] = ack["error"]
    assert error["status"] == status, ack
    assert error["type"].startswith("https://synergyhub.dev/problems/")
    assert error["detail"]
    return error


def data_of(ack: dict[str, Any]) -> Any:
    assert ack["ok"] is True, ack
    return ack["data"]


# --------------------------------------------------------------------------- fixtures


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def rt(synergyhub_services: Any, synergyhub_stack: Any) -> Personas:
    """A tenancy whose home Solution enables rtprobe (the other Solution enables only studio)."""
    return await seed_personas(synergyhub_services.db, synergyhub_stack.firebase_auth_host,
                               enabled_plugins=["rtprobe"])


@pytest_asyncio.fixture(loop_scope="session")
async def clients(live_server: str) -> AsyncIterator[Clients]:
    opened = Clients(live_server)
    yield opened
    await opened.close()


@pytest.fixture(scope="module")
def firebase(synergyhub_stack: Any) -> Any:
    """A firebase-admin app against the Auth emulator, to revoke and disable users."""
    app = firebase_admin.initialize_app(options={"projectId": synergyhub_stack.project_id},
                                        name=f"rt-tests-{id(synergyhub_stack)}")
    yield app
    firebase_admin.delete_app(app)


async def new_member(db: Any, rt: Personas, label: str, *, account_id: str | None = None,
                     role: Role = Role.MEMBER) -> Persona:
    """A fresh emulator user with one account membership in the rt tenancy."""
    persona = await rt.new_user(label)
    await db["users"].insert_one({
        "_id": persona.uid, "email": persona.email,
        "email_normalized": normalize_email(persona.email), "system_role": None,
        "memberships": [], "created_at": utcnow()})
    await set_membership(db, persona.uid, Membership(
        kind=MembershipKind.ACCOUNT, role=role, solution_id=rt.home_solution,
        account_id=account_id or rt.home_account))
    persona.created_at = time.time()  # type: ignore[attr-defined]
    return persona


# --------------------------------------------------------------------------- connect


async def test_no_token_is_refused(clients: Clients) -> None:
    for auth in (None, {}, {"token": ""}, {"token": 42}, "just-a-string",
                 {"token": "not-a-jwt"}):
        with pytest.raises(socketio.exceptions.ConnectionError):
            await clients.connect(auth=auth)


async def test_only_plugin_namespaces_accept_connections(clients: Clients, rt: Personas) -> None:
    for namespace in ("/", "/nope", "/tenancy"):
        with pytest.raises(socketio.exceptions.ConnectionError):
            await clients.connect(rt["MEMBER"].token, namespaces=[namespace])


async def test_expired_token_is_refused(clients: Clients, rt: Personas,
                                        synergyhub_stack: Any) -> None:
    token = unsigned_token(rt["MEMBER"], synergyhub_stack.project_id, expires_in=-5)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await clients.connect(token)
    wrong_project = unsigned_token(rt["MEMBER"], "demo-other-project", expires_in=600)
    with pytest.raises(socketio.exceptions.ConnectionError):
        await clients.connect(wrong_project)


async def test_origin_is_checked(clients: Clients, rt: Personas, live_server: str) -> None:
    with pytest.raises(socketio.exceptions.ConnectionError):
        await clients.connect(rt["MEMBER"].token, headers={"Origin": "https://evil.example"})
    same_origin = await clients.connect(rt["MEMBER"].token, headers={"Origin": live_server})
    ack = await same_origin.call("echo", {"account_id": rt.home_account, "text": "hi"})
    assert data_of(ack)["text"] == "hi"


async def test_authenticated_event_runs_with_principal_and_account(
    clients: Clients, rt: Personas
) -> None:
    probe = await clients.connect(rt["MEMBER"].token)
    ack = await probe.call("echo", {"account_id": rt.home_account, "text": "hello", "n": 3})
    assert data_of(ack) == {"text": "hello", "n": 3, "uid": rt["MEMBER"].uid,
                            "account_id": rt.home_account, "solution_id": rt.home_solution}
    ack = await probe.call("chunks", {"account_id": rt.home_account})
    assert data_of(ack) == {"chunks": 3}
    assert [await probe.next("chunk") for _ in range(3)] == [{"i": 0}, {"i": 1}, {"i": 2}]


async def test_handlers_read_the_plugin_settings_through_the_cascade(
    clients: Clients, rt: Personas, live_server: str
) -> None:
    probe = await clients.connect(rt["MEMBER"].token)
    ack = await probe.call("settings", {"account_id": rt.home_account})
    assert data_of(ack) == {"greeting": "hello"}  # the schema's default
    async with httpx.AsyncClient(base_url=live_server) as http:  # the same instance evicts
        response = await http.put(f"/api/v1/accounts/{rt.home_account}/settings/rtprobe",
                                  json={"values": {"greeting": "bonjour"}},
                                  headers=rt["ACCOUNT_ADMIN"].headers())
        assert response.status_code == 200, response.text
    ack = await probe.call("settings", {"account_id": rt.home_account})
    assert data_of(ack) == {"greeting": "bonjour"}


# --------------------------------------------------------------------------- gate


async def _frames_until(ws: Any, frames: list[str], prefix: str) -> str:
    while True:
        for frame in frames:
            if frame.startswith(prefix):
                return frame
        message = await asyncio.wait_for(ws.receive(), WAIT)
        assert message.type == aiohttp.WSMsgType.TEXT, message
        frames.append(message.data)


async def test_event_sent_before_authentication_is_not_handled(
    live_server: str, rt: Personas, synergyhub_services: Any
) -> None:
    """Raw Engine.IO frames, as a hostile client would send them.

    An event on a namespace never connected, and one sent right behind a
    CONNECT whose token is refused, are never handled. An event sent right
    behind a valid CONNECT (before its acknowledgement) runs only after the
    connect handler has authenticated: its ack follows the connect ack.
    """
    member = await new_member(synergyhub_services.db, rt, "early")
    ws_url = live_server.replace("http://", "ws://") + "/socket.io/?EIO=4&transport=websocket"
    touch = json.dumps(["touch", {"account_id": rt.home_account}])
    count = json.dumps(["count", {"account_id": rt.home_account}])
    async with aiohttp.ClientSession() as http:
        async with http.ws_connect(ws_url) as ws:
            assert (await ws.receive_str()).startswith("0")  # Engine.IO open
            frames: list[str] = []
            await ws.send_str(f"42{NS},1" + touch)  # no CONNECT at all
            await ws.send_str(f"40{NS}," + json.dumps({"token": "forged"}))
            await ws.send_str(f"42{NS},2" + touch)  # behind a refused CONNECT
            refused = await _frames_until(ws, frames, f"44{NS},")
            assert "could not be verified" in refused
            await asyncio.sleep(0.3)
            await ws.send_str(f"40{NS}," + json.dumps({"token": member.token}))
            await ws.send_str(f"42{NS},3" + touch)  # before the connect ack arrives
            await _frames_until(ws, frames, f"40{NS},")
            early = await _frames_until(ws, frames, f"43{NS},3")
            await ws.send_str(f"42{NS},4" + count)
            counted = await _frames_until(ws, frames, f"43{NS},4")
    assert not any(f.startswith((f"43{NS},1", f"43{NS},2")) for f in frames), frames
    connect_at = next(i for i, f in enumerate(frames) if f.startswith(f"40{NS},"))
    assert frames.index(early) > connect_at
    assert json.loads(counted[len(f"43{NS},4"):]) == [{"ok": True, "data": 1}]


async def test_kernel_gate_refuses_events_until_connect_completes(
    synergyhub_services: Any, rt: Personas
) -> None:
    """The kernel's own gate (beneath python-socketio's): a session not yet ready is refused."""
    from tests.conftest import RealtimeProbePlugin

    handlers = RealtimeProbePlugin().register_socket_handlers()
    channel = RealtimeChannel(synergyhub_services, {"rtprobe": handlers}, mounted=False)
    session = SessionState(sid="early-sid", namespace=NS, eio_sid=None,
                           uid=rt["MEMBER"].uid, token=rt["MEMBER"].token,
                           expires_at=time.time() + 600)
    channel.sessions[session.sid] = session
    before = RealtimeProbePlugin.touched.get(rt["MEMBER"].uid, 0)
    payload = ({"account_id": rt.home_account},)
    ack = await channel._dispatch("rtprobe", NS, "touch", session.sid, payload)
    assert error_of(ack, 401)["type"].endswith("/not-authenticated")
    ack = await channel._dispatch("rtprobe", NS, "touch", "unknown-sid", payload)
    error_of(ack, 401)
    assert RealtimeProbePlugin.touched.get(rt["MEMBER"].uid, 0) == before
    session.ready.set()
    ack = await channel._dispatch("rtprobe", NS, "touch", session.sid, payload)
    assert data_of(ack) == before + 1


# --------------------------------------------------------------------------- rooms


async def test_member_of_account_a_never_receives_account_b_events(
    clients: Clients, rt: Personas
) -> None:
    account_a, account_b = rt.tenants[0].accounts
    group_b = rt.tenants[0].groups[account_b][0]
    a = await clients.connect(rt["MEMBER"].token)
    b = await clients.connect(rt[f"ADMIN:{account_b}"].token)

    assert data_of(await a.call("join", {"room": "account", "account_id": account_a})) == {
        "room": f"account:{account_a}"}
    for refused in ({"room": "account", "account_id": account_b},
                    {"room": "group", "account_id": account_b, "group_id": group_b},
                    {"room": "group", "account_id": account_a, "group_id": group_b}):
        error_of(await a.call("join", refused), 404)
    data_of(await b.call("join", {"room": "account", "account_id": account_b}))

    data_of(await b.call("broadcast", {"account_id": account_b, "message": "for B"}))
    assert (await b.next("news"))["message"] == "for B"
    error_of(await a.call("broadcast", {"account_id": account_b, "message": "sneak"}), 404)
    data_of(await a.call("broadcast", {"account_id": account_a, "message": "for A"}))
    assert (await a.next("news"))["message"] == "for A"
    await asyncio.sleep(0.3)
    assert a.pending("news") == []
    assert b.pending("news") == []


async def test_group_and_user_rooms_need_membership(clients: Clients, rt: Personas) -> None:
    account, group = rt.home_account, rt.home_group
    in_group = await clients.connect(rt["GROUP_MEMBER"].token)
    admin = await clients.connect(rt["ACCOUNT_ADMIN"].token)
    member = await clients.connect(rt["MEMBER"].token)
    join = {"room": "group", "account_id": account, "group_id": group}
    assert data_of(await in_group.call("join", join)) == {"room": f"group:{group}"}
    data_of(await admin.call("join", join))  # ACCOUNT_ADMIN reads every group
    error_of(await member.call("join", join), 404)
    data_of(await member.call("join", {"room": "account", "account_id": account}))

    data_of(await in_group.call("broadcast", {"account_id": account, "room": "group",
                                              "group_id": group, "message": "group news"}))
    assert (await in_group.next("news"))["message"] == "group news"
    assert (await admin.next("news"))["message"] == "group news"

    data_of(await member.call("join", {"room": "user", "account_id": account}))
    data_of(await member.call("broadcast", {"account_id": account, "room": "user",
                                            "message": "just me"}))
    assert (await member.next("news"))["message"] == "just me"
    await asyncio.sleep(0.3)
    assert member.pending("news") == [] and admin.pending("news") == []
    assert in_group.pending("news") == []

    data_of(await in_group.call("leave", join))
    data_of(await admin.call("broadcast", {"account_id": account, "room": "group",
                                           "group_id": group, "message": "after leave"}))
    assert (await admin.next("news"))["message"] == "after leave"
    await asyncio.sleep(0.3)
    assert in_group.pending("news") == []


async def test_plugin_must_be_enabled_and_account_reachable(
    clients: Clients, rt: Personas, synergyhub_services: Any
) -> None:
    other_solution_account = rt.tenants[1].accounts[0]
    outsider_probe = await clients.connect(rt[f"ADMIN:{other_solution_account}"].token)
    for event, payload in (("echo", {"account_id": other_solution_account, "text": "x"}),
                           ("join", {"room": "account", "account_id": other_solution_account})):
        error_of(await outsider_probe.call(event, payload), 404)

    outsider = await clients.connect(rt["OUTSIDER"].token)
    error_of(await outsider.call("echo", {"account_id": rt.home_account, "text": "x"}), 404)

    db = synergyhub_services.db
    archived = new_id()
    await db["accounts"].insert_one({"_id": archived, "solution_id": rt.home_solution,
                                     "slug": f"archived-{archived[-6:]}", "name": "Archived",
                                     "status": "archived", "created_at": utcnow()})
    member = await new_member(db, rt, "archived", account_id=archived)
    probe = await clients.connect(member.token)
    error_of(await probe.call("echo", {"account_id": archived, "text": "x"}), 404)
    error_of(await probe.call("join", {"room": "account", "account_id": archived}), 404)


# --------------------------------------------------------------------------- payloads


async def test_bad_payloads_get_error_acks_and_the_connection_survives(
    clients: Clients, rt: Personas
) -> None:
    probe = await clients.connect(rt["MEMBER"].token)
    account = rt.home_account
    error = error_of(await probe.call("echo", {"account_id": account, "text": 5}), 422)
    assert error["errors"][0]["field"] == "text"
    error_of(await probe.call("echo", {"account_id": account, "text": "x" * 500}), 422)
    error_of(await probe.call("echo", "a string"), 422)
    error_of(await probe.call("echo", ["a", "list"]), 422)
    error_of(await probe.call("echo", {"account_id": account}, {"text": "two args"}), 422)
    missing = error_of(await probe.call("echo", {"text": "no account"}), 422)
    assert missing["errors"] == [{"field": "account_id", "message": "Field required"}]
    for bad_id in ("nope", {"$ne": None}, 12, "0" * 24):
        error_of(await probe.call("echo", {"account_id": bad_id, "text": "x"}), 404)
    error_of(await probe.call("no_such_event", {"account_id": account}), 404)
    error_of(await probe.call("join", {"room": "everything", "account_id": account}), 422)
    error_of(await probe.call("join", {"room": "group", "account_id": account}), 422)
    error_of(await probe.call("authenticate", {"token": 7}), 422)
    error_of(await probe.call("forbid", {"account_id": account}), 403)
    crashed = error_of(await probe.call("fail", {"account_id": account}), 500)
    assert "hunter2" not in json.dumps(crashed)
    assert data_of(await probe.call("echo", {"account_id": account, "text": "still here"}))


async def test_oversized_message_drops_the_connection(
    clients: Clients, rt: Personas, synergyhub_settings: Any
) -> None:
    probe = await clients.connect(rt["MEMBER"].token)
    big = "x" * (synergyhub_settings.max_body_bytes + 1024)
    await probe.client.emit("echo", {"account_id": rt.home_account, "text": big}, namespace=NS)
    await asyncio.wait_for(probe.disconnected.wait(), WAIT)


# --------------------------------------------------------------------------- token lifecycle


async def test_token_refresh_keeps_the_session_and_expiry_ends_it(
    clients: Clients, rt: Personas, synergyhub_stack: Any, synergyhub_settings: Any
) -> None:
    member = rt["MEMBER"]
    short = unsigned_token(member, synergyhub_stack.project_id, expires_in=3)
    refreshed = await clients.connect(short)
    expiring = await clients.connect(
        unsigned_token(member, synergyhub_stack.project_id, expires_in=3))
    account = rt.home_account
    data_of(await refreshed.call("echo", {"account_id": account, "text": "before"}))

    other = error_of(await refreshed.call("authenticate", {"token": rt["VIEWER"].token}), 403)
    assert other["type"].endswith("/token-user-mismatch")
    error_of(await refreshed.call("authenticate", {"token": "garbage"}), 401)
    fresh = unsigned_token(member, synergyhub_stack.project_id, expires_in=3600)
    assert data_of(await refreshed.call("authenticate", {"token": fresh}))["expires_at"] > (
        time.time() + 3000)

    ended = await expiring.next("session_ended", timeout=3 + 2 * synergyhub_settings
                                .revocation_check_seconds + 2)
    assert ended["status"] == 401 and ended["type"].endswith("/token-expired")
    await asyncio.wait_for(expiring.disconnected.wait(), WAIT)

    assert refreshed.client.connected and not refreshed.disconnected.is_set()
    ack = await refreshed.call("echo", {"account_id": account, "text": "after expiry"})
    assert data_of(ack)["text"] == "after expiry"


async def _wait_past_signup(persona: Persona) -> None:
    """Revocation compares whole seconds: the token must be strictly older."""
    created: float = persona.created_at  # type: ignore[attr-defined]
    delay = created + 1.2 - time.time()
    if delay > 0:
        await asyncio.sleep(delay)


@pytest.mark.parametrize("how", ["revoked", "disabled"])
async def test_revoked_or_disabled_user_is_disconnected_within_the_window(
    how: str, clients: Clients, rt: Personas, synergyhub_services: Any,
    synergyhub_settings: Any, firebase: Any,
) -> None:
    member = await new_member(synergyhub_services.db, rt, how)
    probe = await clients.connect(member.token)
    data_of(await probe.call("join", {"room": "account", "account_id": rt.home_account}))
    await _wait_past_signup(member)
    if how == "revoked":
        await asyncio.to_thread(firebase_auth.revoke_refresh_tokens, member.uid, app=firebase)
    else:
        await asyncio.to_thread(firebase_auth.update_user, member.uid, disabled=True,
                                app=firebase)
    started = time.monotonic()
    window = synergyhub_settings.revocation_check_seconds
    ended = await probe.next("session_ended", timeout=window * 1.25 + 2)
    await asyncio.wait_for(probe.disconnected.wait(), WAIT)
    elapsed = time.monotonic() - started
    assert elapsed <= window * 1.25 + 1, elapsed
    assert ended["status"] == 401
    assert ended["type"].endswith("/token-revoked" if how == "revoked" else "/user-disabled")
    with pytest.raises(socketio.exceptions.ConnectionError):
        await clients.connect(member.token)


async def test_removed_member_leaves_the_account_room(
    clients: Clients, rt: Personas, synergyhub_services: Any, synergyhub_settings: Any
) -> None:
    db = synergyhub_services.db
    member = await new_member(db, rt, "removed")
    probe = await clients.connect(member.token)
    room = f"account:{rt.home_account}"
    assert data_of(await probe.call("join", {"room": "account",
                                             "account_id": rt.home_account}))["room"] == room
    await db["users"].update_one({"_id": member.uid}, {"$set": {"memberships": []}})
    left = await probe.next("room_left", timeout=synergyhub_settings.revocation_check_seconds + 3)
    assert left == {"room": room}
    error_of(await probe.call("echo", {"account_id": rt.home_account, "text": "x"}), 404)

