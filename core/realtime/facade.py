"""``services.realtime``: how services and plugins push events, without python-socketio.

Rooms are named by the kernel from ids (``account:<id>``, ``group:<id>``,
``user:<uid>``) and clients enter them only through the kernel's ``join``
event, which checks membership. With ``REDIS_URL`` set an emit reaches the
clients of every process.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterable, AsyncIterator, Mapping
from typing import Any, Literal, Protocol

from pydantic_core import to_jsonable_python

from core.realtime.models import (
    ID_PATTERN,
    KERNEL_EVENTS,
    account_room,
    group_room,
    namespace_for,
    user_room,
)

log = logging.getLogger("synergyhub.realtime")

RoomKind = Literal["account", "group", "user"]


class _Emitter(Protocol):
    async def emit(self, event: str, data: Any, *, to: str, namespace: str) -> None: ...


def _json_only(data: Any) -> Any:
    """Events cross processes as JSON: convert models and datetimes, refuse bytes."""
    if isinstance(data, bytes | bytearray | memoryview):
        raise TypeError("realtime events carry JSON only; encode binary data first")
    return to_jsonable_python(data)


def _check_event(event: str) -> str:
    if not isinstance(event, str) or not event or len(event) > 100:
        raise ValueError("an event name is a non-empty string of at most 100 characters")
    if event in KERNEL_EVENTS:
        raise ValueError(f"{event!r} is a kernel event name")
    return event


def _check_id(value: str, what: str) -> str:
    import re

    if not isinstance(value, str) or not re.match(ID_PATTERN, value):
        raise ValueError(f"not a valid {what} id: {value!r}")
    return value


def _room(kind: RoomKind, target: str) -> str:
    """The kernel's name for a room, from a checked id."""
    if kind == "user":
        if not isinstance(target, str) or not 0 < len(target) <= 128:
            raise ValueError("not a valid user id")
        return user_room(target)
    if kind == "account":
        return account_room(_check_id(target, "account"))
    if kind == "group":
        return group_room(_check_id(target, "group"))
    raise ValueError(f"unknown room kind {kind!r}")


class Realtime:
    """Emit to kernel-named rooms of a plugin namespace (``"notes"`` or ``"/notes"``)."""

    def __init__(self, emitter: _Emitter) -> None:
        self._emitter = emitter

    async def emit_to_account(
        self, namespace: str, account_id: str, event: str, data: Any = None
    ) -> None:
        """Every connection of ``namespace`` that joined the account's room."""
        await self._emit(namespace, _room("account", account_id), event, data)

    async def emit_to_group(
        self, namespace: str, group_id: str, event: str, data: Any = None
    ) -> None:
        """Every connection of ``namespace`` that joined the group's room."""
        await self._emit(namespace, _room("group", group_id), event, data)

    async def emit_to_user(self, namespace: str, uid: str, event: str, data: Any = None) -> None:
        """Every connection of ``namespace`` where the user joined their own room."""
        await self._emit(namespace, _room("user", uid), event, data)

    async def relay(
        self, namespace: str, room: tuple[RoomKind, str], event: str,
        chunks: AsyncIterable[str], *, key: Mapping[str, Any] | None = None,
        flush_chars: int = 200, flush_seconds: float = 0.05,
    ) -> AsyncIterator[str]:
        """Forward a text stream (``ai.stream_chat``) to a kernel room while the caller reads it.

        Yields every chunk unchanged, so the caller still holds the whole text;
        the room gets coalesced events ``{**key, "seq": n, "text": part}``
        (at most one per ``flush_chars`` characters or ``flush_seconds``, the
        rest when the stream ends or fails) whose parts joined in ``seq`` order
        are the text. A failed emit is logged and the stream goes on: a browser
        that went away must not fail the work whose result is being stored.
        """
        name = _room(*room)
        _check_event(event)
        namespace_for(namespace)  # a bad namespace fails here, not at every flush
        fields = dict(key or {})
        seq, buffer, last = 0, "", time.monotonic()

        async def flush() -> None:
            nonlocal seq, buffer, last
            try:
                await self._emit(namespace, name, event, {**fields, "seq": seq, "text": buffer})
            except Exception:
                log.warning("stream event not delivered", exc_info=True,
                            extra={"namespace": namespace, "event": event})
            seq, buffer, last = seq + 1, "", time.monotonic()

        try:
            async for chunk in chunks:
                buffer += chunk
                yield chunk  # the caller holds the chunk before any emit can be interrupted
                if len(buffer) >= flush_chars or time.monotonic() - last >= flush_seconds:
                    await flush()
        except Exception:
            if buffer:  # what the caller stores of a failed stream, the room sees too
                await flush()
            raise
        if buffer:
            await flush()

    async def _emit_to_sid(self, namespace: str, sid: str, event: str, data: Any = None) -> None:
        """One connection (the kernel's ``ctx.reply``): a sid is a room of one."""
        await self._emit(namespace, sid, event, data)

    async def _emit(self, namespace: str, room: str, event: str, data: Any) -> None:
        await self._emitter.emit(
            _check_event(event), _json_only(data), to=room, namespace=namespace_for(namespace)
        )
