"""The HTTP request path's checks, for a Socket.IO event (no Quart request here).

Mirrors ``core.kernel.context.enter_account`` and the plugin route gate: the
same rules function, the same directory, the same 404 for everything out of
reach so account ids cannot be probed over the socket either.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from core.kernel.errors import NotFound
from core.tenancy.models import AccountContext, Principal, Status
from core.tenancy.rules import has_context_access, principal_read_keys
from core.tenancy.service import get_group

if TYPE_CHECKING:
    from core.kernel.services import Services
    from core.realtime.models import SessionState


async def load_principal(services: Services, session: SessionState) -> Principal:
    """Verify the session's token again (expiry, revocation) and read roles from the DB."""
    tenancy = services.tenancy
    verified = await tenancy.verifier.verify(session.token)
    principal = await tenancy.directory.principal_for(verified)
    if session.impersonation:
        from core.tenancy.impersonation import HEADER

        principal = await tenancy.impersonation.apply(
            principal, {HEADER: session.impersonation}
        )
    return principal


async def enter_account(
    services: Services, session: SessionState, principal: Principal, account_id: str,
    *, plugin: str | None,
) -> AccountContext:
    """The account context, or 404: unknown, archived, other host's Solution, not a member,
    or (for a plugin namespace) a Solution that does not enable the plugin."""
    from core.kernel.context import valid_id

    if not isinstance(account_id, str) or not valid_id(account_id):
        raise NotFound("No such account.")
    found = await services.tenancy.directory.account_with_solution(account_id)
    if found is None:
        raise NotFound("No such account.")
    account, solution = found
    if session.host_solution is not None and session.host_solution != solution.id:
        raise NotFound("No such account.")
    archived = Status.ARCHIVED in (account.status, solution.status)
    if (archived and not principal.is_superadmin) or not has_context_access(
        principal, solution_id=solution.id, account_id=account.id
    ):
        raise NotFound("No such account.")
    if plugin is not None and plugin not in solution.enabled_plugins:
        raise NotFound("No such resource.")
    return AccountContext(principal=principal, solution=solution, account=account)


async def require_group_reader(services: Services, ctx: AccountContext, group_id: str) -> None:
    """Group rooms follow the group-scope read rule (members, ACCOUNT_ADMIN, above)."""
    group = await get_group(services.db, ctx, group_id)
    keys = principal_read_keys(
        ctx.principal, solution_id=ctx.solution.id, account_id=ctx.account.id
    )
    if f"grp:{group.id}" not in keys and f"grpall:{ctx.account.id}" not in keys:
        raise NotFound("No such group.")
