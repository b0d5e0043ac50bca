"""What a plugin's socket handler receives as ``ctx``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, TypeVar

from core.tenancy.models import Account, AccountContext, Principal, ScopedResource, Solution

if TYPE_CHECKING:
    from core.kernel.services import Services
    from core.realtime.facade import Realtime
    from core.tenancy.repository import ScopedRepository

T = TypeVar("T", bound=ScopedResource)


@dataclass(frozen=True)
class SocketContext:
    """The checked principal and account of one event, like a request's context.

    Built by the kernel per event: the token was verified again, roles were
    read from the database, the account is within reach and its Solution
    enables the plugin.
    """

    account_context: AccountContext
    services: Services
    namespace: str
    plugin: str
    sid: str
    event: str

    @property
    def principal(self) -> Principal:
        return self.account_context.principal

    @property
    def account(self) -> Account:
        return self.account_context.account

    @property
    def solution(self) -> Solution:
        return self.account_context.solution

    @property
    def realtime(self) -> Realtime:
        """Emit to kernel-named rooms (account, group, user)."""
        realtime: Realtime = self.services.realtime
        return realtime

    def repository(self, model: type[T]) -> ScopedRepository[T]:
        """An access-controlled repository bound to this account context."""
        return self.services.tenancy.repositories.bind(model, self.account_context)

    async def plugin_settings(self, *, group_id: str | None = None) -> dict[str, Any]:
        """This plugin's settings as the cascade resolves them for the event's account
        (the socket twin of ``core.kernel.context.plugin_settings``)."""
        from core.kernel.context import resolve_plugin_settings

        return await resolve_plugin_settings(self.services, self.account_context, self.plugin,
                                             group_id=group_id)

    async def reply(self, event: str, data: Any = None) -> None:
        """Send an event to this connection only (e.g. streamed chunks)."""
        await self.realtime._emit_to_sid(self.namespace, self.sid, event, data)
