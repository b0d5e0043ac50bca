"""Entities of the Socket.IO channel: room names, kernel payloads, acknowledgements.

Pure values (stdlib and pydantic only) so that rules about rooms and
acknowledgement shapes can be tested without a server.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal, TypeVar

from pydantic import BaseModel, ConfigDict, Field
from pydantic_core import to_jsonable_python

from core.kernel.errors import DEFAULT_TYPES, TYPE_BASE, Problem

ID_PATTERN = r"^[0-9a-f]{24}$"
NAMESPACE = re.compile(r"^/?([a-z][a-z0-9_-]{0,62})$")
# Events the kernel answers itself in every plugin namespace.
KERNEL_EVENTS = frozenset({"authenticate", "join", "leave"})
# Events the kernel sends to a client.
SESSION_ENDED = "session_ended"
ROOM_LEFT = "room_left"


def account_room(account_id: str) -> str:
    return f"account:{account_id}"


def group_room(group_id: str) -> str:
    return f"group:{group_id}"


def user_room(uid: str) -> str:
    return f"user:{uid}"


def namespace_for(plugin_or_namespace: str) -> str:
    """``"notes"`` or ``"/notes"`` → ``"/notes"``; anything else is a programming error."""
    match = NAMESPACE.match(plugin_or_namespace or "")
    if match is None:
        raise ValueError(f"not a plugin namespace: {plugin_or_namespace!r}")
    return "/" + match.group(1)


class AuthenticatePayload(BaseModel):
    """``authenticate``: a fresh ID token for the same user, on long sessions."""

    model_config = ConfigDict(extra="forbid")

    token: str = Field(min_length=1, max_length=8192)


class JoinPayload(BaseModel):
    """``join`` / ``leave``: a kernel-named room the caller must belong to."""

    model_config = ConfigDict(extra="forbid")

    room: Literal["account", "group", "user"]
    account_id: str = Field(pattern=ID_PATTERN)
    group_id: str | None = Field(default=None, pattern=ID_PATTERN)


@dataclass(frozen=True)
class RoomGrant:
    """A room a session joined, and the account through which it was allowed."""

    kind: Literal["account", "group", "user"]
    account_id: str
    name: str
    group_id: str | None = None


def ok(data: Any = None) -> dict[str, Any]:
    return {"ok": True, "data": to_jsonable_python(data)}


def problem_ack(problem: Problem) -> dict[str, Any]:
    """The acknowledgement for a refused event: the HTTP problem's fields, no stack trace."""
    slug = problem.type_slug or DEFAULT_TYPES.get(problem.status, "error")
    error: dict[str, Any] = {
        "status": problem.status,
        "type": TYPE_BASE + slug,
        "detail": problem.detail,
    }
    if "errors" in problem.extensions:
        error["errors"] = problem.extensions["errors"]
    return {"ok": False, "error": error}


F = TypeVar("F", bound=Callable[..., Any])


def socket_handler(*, payload_model: type[BaseModel] | None = None) -> Callable[[F], F]:
    """Declare how the kernel validates a handler's payload.

    The handler then receives an instance of ``payload_model`` instead of the
    raw dict; ``account_id`` is the kernel's and is passed only if the model
    declares it. Equivalent to setting ``handler.payload_model``.
    """

    def mark(handler: F) -> F:
        handler.payload_model = payload_model  # type: ignore[attr-defined]
        return handler

    return mark


@dataclass
class SessionState:
    """One authenticated connection to one namespace (this process only)."""

    sid: str
    namespace: str
    eio_sid: str | None
    uid: str = ""
    token: str = ""
    expires_at: float = 0.0
    host_solution: str | None = None
    impersonation: str | None = None
    ended: bool = False
    # Set once the connect handler has authenticated; events before it are refused.
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    rooms: dict[str, RoomGrant] = field(default_factory=dict)
