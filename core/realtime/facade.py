"""``services.realtime``: how services and plugins push events, without python-socketio.

Rooms are named by the kernel from ids (``account:<id>``, ``group:<id>``,
``user:<uid>``) and clients enter them only through the kernel's ``join``
event, which checks membership. With ``REDIS_URL`` set an emit reaches the
clients of every process.
"""

from __future__ import annotations

from typing import Any, Protocol

from pydantic_core import to_jsonable_python

from core.realtime.models import (
    ID_PATTERN,
    KERNEL_EVENTS,
    account_room,
    group_room,
    namespace_for,
    user_room,
)


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


class Realtime:
    """Emit to kernel-named rooms of a plugin namespace (``"notes"`` or ``"/notes"``)."""

    def __init__(self, emitter: _Emitter) -> None:
        self._emitter = emitter

    async def emit_to_account(
        self, namespace: str, account_id: str, event: str, data: Any = None
    ) -> None:
        """Every connection of ``namespace`` that joined the account's room."""
        await self._emit(namespace, account_room(_check_id(account_id, "account")), event, data)

    async def emit_to_group(
        self, namespace: str, group_id: str, event: str, data: Any = None
    ) -> None:
        """Every connection of ``namespace`` that joined the group's room."""
        await self._emit(namespace, group_room(_check_id(group_id, "group")), event, data)

    async def emit_to_user(self, namespace: str, uid: str, event: str, data: Any = None) -> None:
        """Every connection of ``namespace`` where the user joined their own room."""
        if not isinstance(uid, str) or not 0 < len(uid) <= 128:
            raise ValueError("not a valid user id")
        await self._emit(namespace, user_room(uid), event, data)

    async def _emit_to_sid(self, namespace: str, sid: str, event: str, data: Any = None) -> None:
        """One connection (the kernel's ``ctx.reply``): a sid is a room of one."""
        await self._emit(namespace, sid, event, data)

    async def _emit(self, namespace: str, room: str, event: str, data: Any) -> None:
        await self._emitter.emit(
            _check_event(event), _json_only(data), to=room, namespace=namespace_for(namespace)
        )
