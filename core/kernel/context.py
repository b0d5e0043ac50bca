"""Request-scoped values, resolved once at the edge and cached on ``g``.

Routes (kernel and plugin alike) call these helpers; services receive the
results as arguments and never read ``request`` themselves.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, TypeVar

from quart import Quart, current_app, g, request

from core.kernel.errors import Forbidden, NotFound, Unauthenticated
from core.tenancy.models import AccountContext, Principal, ScopedResource, Solution, Status

if TYPE_CHECKING:
    from core.kernel.services import Services
    from core.tenancy.repository import ScopedRepository

T = TypeVar("T", bound=ScopedResource)
_ID = re.compile(r"^[0-9a-f]{24}$")


def services() -> Services:
    svc: Services = current_app.extensions["synergyhub"]
    return svc


def valid_id(value: str) -> bool:
    return bool(_ID.match(value or ""))


def bearer_token() -> str:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthenticated(
            "Sign in: send 'Authorization: Bearer <Firebase ID token>'.",
            type_slug="missing-token",
            headers={"WWW-Authenticate": 'Bearer realm="synergyhub"'},
        )
    return token.strip()


async def authenticate() -> Principal:
    """The signed-in principal, with roles read from the database on this request."""
    cached: Principal | None = g.get("principal")
    if cached is not None:
        return cached
    svc = services()
    verified = await svc.tenancy.verifier.verify(bearer_token())
    principal = await svc.tenancy.directory.principal_for(verified)
    principal = await svc.tenancy.impersonation.apply(principal, dict(request.headers))
    g.principal = principal
    return principal


async def request_solution_id() -> str | None:
    """The Solution named by the request's Host (or X-Solution in development)."""
    if "request_solution" in g:
        value: str | None = g.request_solution
        return value
    svc = services()
    solution_id = await svc.tenancy.directory.solution_for_host(
        request.host,
        request.headers.get("X-Solution") if svc.settings.allow_solution_header else None,
    )
    g.request_solution = solution_id
    return solution_id


async def enter_account(account_id: str) -> AccountContext:
    """Authenticate and resolve the account context; 404 when out of reach.

    Unknown, archived (for non-SUPERADMIN), other-Solution and non-member
    accounts all answer the same 404, so account ids cannot be probed.
    """
    cached: AccountContext | None = g.get("account_context")
    if cached is not None and cached.account.id == account_id:
        return cached
    principal = await authenticate()
    if not valid_id(account_id):
        raise NotFound("No such account.")
    svc = services()
    found = await svc.tenancy.directory.account_with_solution(account_id)
    if found is None:
        raise NotFound("No such account.")
    account, solution = found
    host_solution = await request_solution_id()
    if host_solution is not None and host_solution != solution.id:
        raise NotFound("No such account.")
    archived = Status.ARCHIVED in (account.status, solution.status)
    from core.tenancy.rules import has_context_access

    if (archived and not principal.is_superadmin) or not has_context_access(
        principal, solution_id=solution.id, account_id=account.id
    ):
        raise NotFound("No such account.")
    ctx = AccountContext(principal=principal, solution=solution, account=account)
    g.account_context = ctx
    return ctx


async def enter_solution_admin(solution_id: str, *, write: bool) -> tuple[Principal, Solution]:
    """The caller and a Solution they administer: 404 when they cannot see it, else 403.

    ``write`` also refuses read-only (impersonation) sessions.
    """
    from core.tenancy import service as tenancy_service

    principal = await authenticate()
    solution = await tenancy_service.visible_solution(services().db, principal, solution_id)
    if write:
        tenancy_service.require_solution_admin(principal, solution.id)
    elif not (principal.is_superadmin or principal.is_solution_admin(solution.id)):
        raise Forbidden("This needs SOLUTION_ADMIN of this Solution.")
    return principal, solution


async def plugin_settings(
    ctx: AccountContext, plugin: str, *, group_id: str | None = None
) -> dict[str, Any]:
    """A plugin's settings as the cascade resolves them where the request acts."""
    return await resolve_plugin_settings(services(), ctx, plugin, group_id=group_id)


async def resolve_plugin_settings(svc: Services, ctx: AccountContext, plugin: str, *,
                                  group_id: str | None = None) -> dict[str, Any]:
    """The same, given the services (socket handlers run outside a request)."""
    info = svc.plugins.infos.get(plugin)
    if info is None:
        raise NotFound(f"No installed plugin is named {plugin!r}.")
    return await svc.tenancy.cascade.plugin_values(
        plugin, info.manifest.solution_settings, ctx, group_id=group_id)


def repository(model: type[T], ctx: AccountContext) -> ScopedRepository[T]:
    """A repository for ``model`` bound to ``ctx``: the only door to tenant data."""
    return services().tenancy.repositories.bind(model, ctx)


def install(app: Quart, svc: Services) -> None:
    """Wire the tenancy services into the container (composition root helper)."""
    from core.tenancy.wiring import TenancyServices

    svc.extras.setdefault("on_open", []).append(TenancyServices.open)
    svc.extras.setdefault("on_close", []).append(TenancyServices.close)
    _ = app
