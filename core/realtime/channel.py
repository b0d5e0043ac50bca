"""The Socket.IO server: authentication, the per-event kernel wrapper, the session sweeper.

One ``socketio.AsyncServer`` per app, mounted beside Quart as one ASGI
application (``mount_socketio``). Every feature plugin that returns handlers
from ``register_socket_handlers`` gets the namespace ``/<plugin>``; each event
goes through :meth:`RealtimeChannel._dispatch`, which does for a message what
the HTTP stack does for a request:

1. the connection authenticated on connect (``auth: {token}``) and that
   step has completed (events that race ahead of it are refused);
2. the token is verified again (expiry, revocation, disabled user) and the
   principal's roles are read from the database;
3. ``payload.account_id`` is resolved with the HTTP rules (404 when out of
   reach or archived) and the account's Solution must enable the plugin;
4. the payload is validated by the handler's ``payload_model``;
5. the result, or the error, is the acknowledgement: never an exception
   that escapes to python-socketio.

A background sweeper disconnects connections whose token expired or whose
user was revoked or disabled, and takes them out of rooms they no longer
belong to.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import inspect
import logging
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import socketio
from pydantic import BaseModel, ValidationError

from core.kernel.errors import (
    Forbidden,
    NotFound,
    Problem,
    Unauthenticated,
    Unprocessable,
    validation_error_list,
)
from core.realtime import access
from core.realtime.context import SocketContext
from core.realtime.facade import Realtime
from core.realtime.models import (
    KERNEL_EVENTS,
    ROOM_LEFT,
    SESSION_ENDED,
    AuthenticatePayload,
    JoinPayload,
    RoomGrant,
    SessionState,
    account_room,
    group_room,
    namespace_for,
    ok,
    problem_ack,
    user_room,
)

if TYPE_CHECKING:
    from core.kernel.services import Services
    from core.tenancy.models import Principal

log = logging.getLogger("synergyhub.realtime")

Handler = Callable[[SocketContext, Any], Awaitable[Any]]
EXTRAS_KEY = "realtime.channel"
SOCKETIO_PATH = "socket.io"
REDIS_CHANNEL_PREFIX = "synergyhub-socketio"


def _refused(problem: Problem) -> socketio.exceptions.ConnectionRefusedError:
    """A refused connect carries the same fields as an error acknowledgement."""
    return socketio.exceptions.ConnectionRefusedError(
        problem.detail, problem_ack(problem)["error"]
    )


class OriginPolicy:
    """Configured CORS origins, plus the server's own origin (same-origin pages)."""

    def __init__(self, origins: list[str]) -> None:
        self.origins = frozenset(o.rstrip("/") for o in origins)

    def __call__(self, origin: str | None, environ: dict[str, Any]) -> bool:
        if not origin:
            return True
        if origin in self.origins:
            return True
        host = environ.get("HTTP_HOST", "")
        scope = environ.get("asgi.scope") or {}
        scheme = {"wss": "https", "ws": "http"}.get(scope.get("scheme", ""),
                                                      scope.get("scheme", "http"))
        return bool(host) and origin == f"{scheme}://{host}"


class RealtimeChannel:
    """The app's Socket.IO server and everything the kernel keeps per connection."""

    def __init__(
        self,
        services: Services,
        handlers: dict[str, dict[str, Handler]] | None = None,
        *,
        mounted: bool,
    ) -> None:
        settings = services.settings
        self.services = services
        self.mounted = mounted
        self.handlers: dict[str, dict[str, Handler]] = handlers or {}
        self.sessions: dict[str, SessionState] = {}
        self.sweep_interval = max(0.5, settings.revocation_check_seconds / 4)
        self._sweeper: asyncio.Task[None] | None = None
        self._ending: set[asyncio.Future[None]] = set()
        manager: Any = None
        if settings.redis_url is not None:
            manager = socketio.AsyncRedisManager(
                settings.redis_url.get_secret_value(),
                channel=f"{REDIS_CHANNEL_PREFIX}:{settings.mongodb_database}",
                write_only=not mounted,  # without clients there is nothing to listen for
            )
        self.sio = socketio.AsyncServer(
            async_mode="asgi",
            client_manager=manager,
            namespaces=["/", *(namespace_for(p) for p in self.handlers)],
            cors_allowed_origins=OriginPolicy(settings.cors_origins),
            cors_credentials=True,
            max_http_buffer_size=settings.max_body_bytes,
            logger=False,
            engineio_logger=False,
        )
        self.realtime = Realtime(self.sio)
        for plugin in self.handlers:
            self._register_namespace(plugin)

        async def refuse_root(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
            raise _refused(NotFound("Connect to a plugin namespace, /<plugin>."))

        self.sio.on("connect", refuse_root, namespace="/")

    # -- building -------------------------------------------------------------

    @staticmethod
    def collect_handlers(services: Services) -> dict[str, dict[str, Handler]]:
        """Feature plugins' ``register_socket_handlers``; bad entries are plugin faults."""
        registry = services.plugins
        collected: dict[str, dict[str, Handler]] = {}
        for plugin, results in registry.collect("register_socket_handlers").items():
            if registry.is_kernel(plugin):
                continue
            try:
                namespace_for(plugin)
            except ValueError as exc:
                registry.record_fault(plugin, "register_socket_handlers", exc)
                continue
            for result in results:
                if not isinstance(result, dict):
                    registry.record_fault(plugin, "register_socket_handlers",
                                          TypeError("expected a dict of event → handler"))
                    continue
                for event, handler in result.items():
                    problem = _handler_problem(event, handler)
                    if problem is not None:
                        registry.record_fault(plugin, "register_socket_handlers",
                                              TypeError(problem))
                        continue
                    collected.setdefault(plugin, {})[event] = handler
        return collected

    def _register_namespace(self, plugin: str) -> None:
        namespace = namespace_for(plugin)

        async def on_connect(sid: str, environ: dict[str, Any], auth: Any = None) -> None:
            await self._connect(sid, namespace, environ, auth)

        async def on_disconnect(sid: str, reason: Any = None) -> None:
            session = self.sessions.pop(sid, None)
            if session is not None:
                session.ended = True

        async def on_event(event: str, sid: str, *args: Any) -> dict[str, Any]:
            return await self._dispatch(plugin, namespace, event, sid, args)

        self.sio.on("connect", on_connect, namespace=namespace)
        self.sio.on("disconnect", on_disconnect, namespace=namespace)
        self.sio.on("*", on_event, namespace=namespace)

    # -- lifecycle ------------------------------------------------------------

    async def start(self) -> None:
        """Start the Redis listener (if any) and the sweeper on the serving loop."""
        if not self.sio.manager_initialized:
            self.sio.manager_initialized = True
            self.sio.manager.initialize()
        self._sweeper = asyncio.create_task(self._sweep_forever(), name="realtime-sweeper")
        if self.mounted:
            # Everything built so far lives as long as the process: keep it out of the
            # full collections, which otherwise stall every connection for 0.2-0.4 s
            # (measured by bench/socketio_fanout.py). See docs/decisions.md.
            gc.freeze()

    async def stop(self) -> None:
        if self._sweeper is not None:
            self._sweeper.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._sweeper
            self._sweeper = None
        manager = self.sio.manager
        listener = getattr(manager, "thread", None)
        if isinstance(listener, asyncio.Task):
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await listener
        redis = getattr(manager, "redis", None)
        if redis is not None:
            with contextlib.suppress(Exception):
                await redis.aclose()

    # -- connect --------------------------------------------------------------

    async def _connect(
        self, sid: str, namespace: str, environ: dict[str, Any], auth: Any
    ) -> None:
        session = SessionState(
            sid=sid, namespace=namespace, eio_sid=self._eio_sid(sid, namespace)
        )
        self.sessions[sid] = session  # not ready: events now are refused
        try:
            token = auth.get("token") if isinstance(auth, dict) else None
            if not isinstance(token, str) or not token:
                raise Unauthenticated(
                    "Sign in: connect with auth {\"token\": \"<Firebase ID token>\"}.",
                    type_slug="missing-token",
                )
            tenancy = self.services.tenancy
            verified = await tenancy.verifier.verify(token)
            session.uid, session.token, session.expires_at = (
                verified.uid, token, verified.expires_at
            )
            session.impersonation = environ.get("HTTP_X_IMPERSONATION") or None
            session.host_solution = await tenancy.directory.solution_for_host(
                environ.get("HTTP_HOST", ""),
                environ.get("HTTP_X_SOLUTION")
                if self.services.settings.allow_solution_header else None,
            )
            await access.load_principal(self.services, session)
        except Problem as problem:
            self.sessions.pop(sid, None)
            raise _refused(problem) from None
        except Exception:
            self.sessions.pop(sid, None)
            log.exception("socket connect failed")
            raise _refused(Problem("The connection could not be set up.", status=500)) from None
        session.ready.set()

    def _eio_sid(self, sid: str, namespace: str) -> str | None:
        try:
            value: str | None = self.sio.manager.eio_sid_from_sid(sid, namespace)
        except Exception:
            return None
        return value

    # -- events ---------------------------------------------------------------

    async def _dispatch(
        self, plugin: str, namespace: str, event: str, sid: str, args: tuple[Any, ...]
    ) -> dict[str, Any]:
        session = self.sessions.get(sid)
        try:
            if session is None or not session.ready.is_set() or session.ended:
                raise Unauthenticated(
                    "The connection has not finished authenticating.",
                    type_slug="not-authenticated",
                )
            if len(args) != 1:
                raise Unprocessable("Send exactly one payload object with the event.")
            payload = args[0]
            if event == "authenticate":
                return ok(await self._refresh(session, payload))
            if event in ("join", "leave"):
                return ok(await self._room(session, plugin, event, payload))
            handler = self.handlers.get(plugin, {}).get(event)
            if handler is None:
                raise NotFound(f"No event {event[:100]!r} in namespace {namespace}.")
            if not isinstance(payload, dict) or "account_id" not in payload:
                raise Unprocessable(
                    "The payload must be a JSON object with account_id.",
                    errors=[{"field": "account_id", "message": "Field required"}],
                )
            principal = await access.load_principal(self.services, session)
            ctx = await access.enter_account(
                self.services, session, principal, payload["account_id"], plugin=plugin
            )
            argument = _validated(handler, payload)
            result = await handler(
                SocketContext(ctx, self.services, namespace, plugin, sid, event), argument
            )
            if isinstance(result, BaseModel):
                result = result.model_dump(mode="json")
            return ok(result)
        except Problem as problem:
            own_token = event != "authenticate"  # a bad *new* token leaves the session as is
            if problem.status == 401 and own_token and session is not None \
                    and session.ready.is_set():
                # After the acknowledgement has gone out: tell the client, then drop it.
                self._end_soon(session, problem)
            return problem_ack(problem)
        except Exception:
            log.exception("socket handler failed",
                          extra={"plugin": plugin, "socket_event": event[:100]})
            return problem_ack(Problem(
                "An unexpected error occurred while handling the event.", status=500
            ))

    async def _refresh(self, session: SessionState, payload: Any) -> dict[str, Any]:
        """``authenticate``: a fresh token for the same user extends the session."""
        body = _model(AuthenticatePayload, payload)
        verified = await self.services.tenancy.verifier.verify(body.token)
        if verified.uid != session.uid:
            raise Forbidden("The new token belongs to another user; reconnect instead.",
                            type_slug="token-user-mismatch")
        # Every namespace of the same Engine.IO connection shares the new token.
        for other in list(self.sessions.values()):
            if other is session or (
                other.eio_sid is not None and other.eio_sid == session.eio_sid
                and other.uid == session.uid
            ):
                other.token, other.expires_at = body.token, verified.expires_at
        return {"expires_at": verified.expires_at}

    async def _room(
        self, session: SessionState, plugin: str, event: str, payload: Any
    ) -> dict[str, Any]:
        body = _model(JoinPayload, payload)
        if event == "leave":
            name = self._grant_name(session, body)
            if name is not None:
                session.rooms.pop(name, None)
                await self.sio.leave_room(session.sid, name, namespace=session.namespace)
            return {"room": name}
        principal = await access.load_principal(self.services, session)
        grant = await self._check_room(session, principal, body, plugin)
        session.rooms[grant.name] = grant
        await self.sio.enter_room(session.sid, grant.name, namespace=session.namespace)
        return {"room": grant.name}

    def _grant_name(self, session: SessionState, body: JoinPayload) -> str | None:
        for name, grant in session.rooms.items():
            if grant.kind == body.room and grant.account_id == body.account_id and (
                body.room != "group" or grant.group_id == body.group_id
            ):
                return name
        return None

    async def _check_room(
        self, session: SessionState, principal: Principal, body: JoinPayload, plugin: str
    ) -> RoomGrant:
        ctx = await access.enter_account(
            self.services, session, principal, body.account_id, plugin=plugin
        )
        if body.room == "account":
            return RoomGrant("account", ctx.account.id, account_room(ctx.account.id))
        if body.room == "user":
            return RoomGrant("user", ctx.account.id, user_room(principal.uid))
        if body.group_id is None:
            raise Unprocessable("A group room needs group_id.")
        await access.require_group_reader(self.services, ctx, body.group_id)
        return RoomGrant("group", ctx.account.id, group_room(body.group_id), body.group_id)

    # -- ending sessions --------------------------------------------------------

    def _end_soon(self, session: SessionState, problem: Problem) -> None:
        def end() -> None:
            task = asyncio.ensure_future(self._end(session, problem))
            self._ending.add(task)
            task.add_done_callback(self._ending.discard)

        asyncio.get_running_loop().call_later(0.05, end)

    async def _end(self, session: SessionState, problem: Problem) -> None:
        """Tell the client why, then drop the namespace connection."""
        if session.ended:
            return
        session.ended = True
        self.sessions.pop(session.sid, None)
        with contextlib.suppress(Exception):
            await self.sio.emit(SESSION_ENDED, problem_ack(problem)["error"], to=session.sid,
                                namespace=session.namespace)
        with contextlib.suppress(Exception):
            await self.sio.disconnect(session.sid, namespace=session.namespace)
        log.info("socket session ended",
                 extra={"uid": session.uid, "reason": problem.type_slug or problem.status})

    async def _sweep_forever(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            started = loop.time()
            try:
                await self.sweep(spread=self.sweep_interval)
            except Exception:
                log.exception("realtime sweep failed")
            await asyncio.sleep(max(0.05, self.sweep_interval - (loop.time() - started)))

    async def sweep(self, *, spread: float = 0.0) -> None:
        """End expired, revoked and disabled sessions; leave rooms no longer allowed.

        Each session is checked once per ``sweep_interval`` (a quarter of
        ``revocation_check_seconds``); the checks are spread over the interval
        so that a pass over many sessions never stalls the event loop (and
        the fan-out it serves). The verifier asks Firebase about a user at
        most once per ``revocation_check_seconds``, so a revoked or disabled
        user is disconnected within that window plus one sweep interval.
        Roles are read, once per user per pass, only for sessions in rooms.
        """
        sessions = [s for s in self.sessions.values() if s.ready.is_set() and not s.ended]
        pause = spread / len(sessions) if sessions else 0.0
        principals: dict[tuple[str, str | None], Principal | None] = {}
        for session in sessions:
            if not session.ended:
                await self._sweep_one(session, principals)
            if pause:
                await asyncio.sleep(pause)

    async def _sweep_one(
        self, session: SessionState, principals: dict[tuple[str, str | None], Principal | None]
    ) -> None:
        key = (session.uid, session.impersonation)
        try:
            await self.services.tenancy.verifier.verify(session.token)
            if not session.rooms:
                return
            if key not in principals:
                try:
                    principals[key] = await access.load_principal(self.services, session)
                except Problem as problem:
                    if problem.status == 401:
                        raise
                    principals[key] = None
        except Problem as problem:
            if problem.status == 401:
                await self._end(session, problem)
            return
        principal = principals[key]
        for name, grant in list(session.rooms.items()):
            if principal is not None:
                body = JoinPayload(room=grant.kind, account_id=grant.account_id,
                                   group_id=grant.group_id)
                try:
                    await self._check_room(session, principal, body, _plugin_of(session))
                    continue
                except Problem:
                    pass
            session.rooms.pop(name, None)
            await self.sio.leave_room(session.sid, name, namespace=session.namespace)
            with contextlib.suppress(Exception):
                await self.sio.emit(ROOM_LEFT, {"room": name}, to=session.sid,
                                    namespace=session.namespace)


def _plugin_of(session: SessionState) -> str:
    return session.namespace.lstrip("/")


def _handler_problem(event: Any, handler: Any) -> str | None:
    if not isinstance(event, str) or not event or len(event) > 100:
        return f"event names are non-empty strings of at most 100 characters: {event!r}"
    if event in KERNEL_EVENTS or event in ("connect", "disconnect", "*"):
        return f"{event!r} is reserved by the kernel"
    if not inspect.iscoroutinefunction(handler):
        return f"the handler for {event!r} must be an async def"
    model = getattr(handler, "payload_model", None)
    if model is not None and not (isinstance(model, type) and issubclass(model, BaseModel)):
        return f"payload_model of {event!r} must be a pydantic model class"
    return None


def _model(model: type[Any], payload: Any) -> Any:
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        raise Unprocessable(
            "The payload does not match the expected schema.", errors=validation_error_list(exc)
        ) from None


def _validated(handler: Handler, payload: dict[str, Any]) -> Any:
    """The handler's argument: its ``payload_model`` instance, or the raw dict."""
    model: type[BaseModel] | None = getattr(handler, "payload_model", None)
    if model is None:
        return payload
    if "account_id" not in model.model_fields:
        payload = {k: v for k, v in payload.items() if k != "account_id"}
    return _model(model, payload)


def mount_socketio(app: Any) -> Any:
    """The one ASGI application: Socket.IO at ``/socket.io/``, everything else to Quart.

    No ``on_startup``/``on_shutdown`` here, so Quart keeps the lifespan (and
    its ``before_serving`` opens the database before the first connection).
    """
    services: Services = app.extensions["synergyhub"]
    channel = RealtimeChannel(services, RealtimeChannel.collect_handlers(services), mounted=True)
    services.extras[EXTRAS_KEY] = channel
    return socketio.ASGIApp(channel.sio, other_asgi_app=app, socketio_path=SOCKETIO_PATH)

