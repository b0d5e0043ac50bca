"""The real-time channel: Socket.IO namespaces per plugin, guarded like the HTTP API.

Plugins never touch python-socketio: they return handlers from
``register_socket_handlers`` (optionally declaring a ``payload_model`` with
:func:`socket_handler`), receive a :class:`SocketContext`, and push events with
``services.realtime`` (:class:`Realtime`). See docs/realtime.md.
"""

from core.realtime.context import SocketContext
from core.realtime.facade import Realtime
from core.realtime.models import account_room, group_room, socket_handler, user_room

__all__ = [
    "Realtime",
    "SocketContext",
    "account_room",
    "group_room",
    "socket_handler",
    "user_room",
]
