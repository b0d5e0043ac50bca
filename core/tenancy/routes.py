"""Tenancy HTTP API under /api/v1 (adapters: parse, call a service, shape JSON)."""

from __future__ import annotations

import json
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint, Response
from quart_schema import validate_querystring, validate_request

from core.kernel import context
from core.kernel.errors import Forbidden, NotFound, Unprocessable
from core.tenancy import service
from core.tenancy.audit import VerifyResult
from core.tenancy.cascade import (
    BrandingSettings,
    CascadeStore,
    check_write,
    validate_values,
)
from core.tenancy.models import ROLE_RANK, Role, ScopedResource
from core.tenancy.rules import explain

blueprint = Blueprint("tenancy", __name__, url_prefix="/api/v1")

Name = Field(min_length=1, max_length=200)
Slug = Field(min_length=1, max_length=63)


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SolutionIn(Strict):
    slug: str = Slug
    name: str = Name
    theme: str | None = Field(None, max_length=40)
    domain: str | None = Field(None, max_length=253)


class SolutionPatch(Strict):
    name: str | None = Field(None, min_length=1, max_length=200)
    theme: str | None = Field(None, max_length=40)
    domain: str | None = Field(None, max_length=253)


class PluginToggle(Strict):
    enabled: bool
    settings: dict[str, Any] = Field(default_factory=dict)


class RoleIn(Strict):
    role: Role


class AccountIn(Strict):
    slug: str = Slug
    name: str = Name


class AccountPatch(Strict):
    name: str = Name


class GroupIn(Strict):
    name: str = Name
    parent_id: str | None = Field(None, max_length=64)


class GroupPatch(Strict):
    name: str | None = Field(None, min_length=1, max_length=200)
    parent_id: str | None = Field(None, max_length=64)


class InvitationIn(Strict):
    email: str = Field(min_length=3, max_length=254)
    role: Role
    group_id: str | None = Field(None, max_length=64)


class ListQuery(BaseModel):
    include_archived: bool = False


class ActivityQuery(BaseModel):
    action: str | None = Field(None, max_length=100)
    actor: str | None = Field(None, max_length=128)
    after: int = Field(0, ge=0)
    limit: int = Field(50, ge=1, le=500)


class ExplainQuery(BaseModel):
    resource: str = Field(max_length=200, description="'<collection>:<id>', e.g. documents:65f…")
    action: Literal["read", "write"] = "read"


def _db() -> Any:
    return context.services().db


def _audit() -> Any:
    return context.services().tenancy.audit


def _dump(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(mode="json", exclude={"read_keys", "write_keys"})


def _changes(model: BaseModel) -> dict[str, Any]:
    return model.model_dump(exclude_unset=True)


# -- me --------------------------------------------------------------------


@blueprint.get("/me")
async def me() -> dict[str, Any]:
    principal = await context.authenticate()
    db = _db()
    ids = {m.target_id for m in principal.memberships}
    names: dict[str, str] = {}
    for collection in ("solutions", "accounts", "groups"):
        async for doc in db[collection].find({"_id": {"$in": sorted(ids)}},
                                             projection={"name": 1}):
            names[doc["_id"]] = doc["name"]
    return {
        "uid": principal.uid,
        "email": principal.email,
        "system_role": principal.system_role,
        "impersonator": principal.impersonator,
        "memberships": [
            {**m.model_dump(mode="json"), "name": names.get(m.target_id)}
            for m in principal.memberships
        ],
    }


# -- solutions ---------------------------------------------------------------


@blueprint.post("/solutions")
@validate_request(SolutionIn)
async def create_solution(data: SolutionIn) -> tuple[dict[str, Any], int]:
    principal = await context.authenticate()
    solution = await service.create_solution(_db(), _audit(), principal, data.model_dump())
    return _dump(solution), 201


@blueprint.get("/solutions")
async def list_solutions() -> dict[str, Any]:
    principal = await context.authenticate()
    solutions = await service.list_solutions(_db(), principal)
    return {"items": [_dump(s) for s in solutions], "next_cursor": None}


@blueprint.get("/solutions/<solution_id>")
async def get_solution(solution_id: str) -> dict[str, Any]:
    principal = await context.authenticate()
    return _dump(await service.visible_solution(_db(), principal, solution_id))


@blueprint.patch("/solutions/<solution_id>")
@validate_request(SolutionPatch)
async def patch_solution(solution_id: str, data: SolutionPatch) -> dict[str, Any]:
    principal = await context.authenticate()
    solution = await service.update_solution(
        _db(), _audit(), principal, solution_id, _changes(data)
    )
    context.services().tenancy.directory.invalidate()
    return _dump(solution)


@blueprint.put("/solutions/<solution_id>/plugins/<plugin>")
@validate_request(PluginToggle)
async def toggle_plugin(solution_id: str, plugin: str, data: PluginToggle) -> dict[str, Any]:
    from core.tenancy.plugins import set_plugin_enabled

    principal = await context.authenticate()
    solution = await set_plugin_enabled(
        context.services(), principal, solution_id, plugin,
        enabled=data.enabled, settings=data.settings,
    )
    return _dump(solution)


@blueprint.put("/solutions/<solution_id>/members/<user_id>")
@validate_request(RoleIn)
async def put_solution_member(solution_id: str, user_id: str, data: RoleIn) -> Response:
    if data.role is not Role.SOLUTION_ADMIN:
        raise Unprocessable("The only Solution role is SOLUTION_ADMIN.")
    principal = await context.authenticate()
    await service.set_solution_admin(_db(), _audit(), principal, solution_id, user_id, grant=True)
    return Response(status=204)


@blueprint.delete("/solutions/<solution_id>/members/<user_id>")
async def delete_solution_member(solution_id: str, user_id: str) -> Response:
    principal = await context.authenticate()
    await service.set_solution_admin(_db(), _audit(), principal, solution_id, user_id, grant=False)
    return Response(status=204)


# -- accounts ------------------------------------------------------------------


@blueprint.post("/solutions/<solution_id>/accounts")
@validate_request(AccountIn)
async def create_account(solution_id: str, data: AccountIn) -> tuple[dict[str, Any], int]:
    principal = await context.authenticate()
    account = await service.create_account(
        _db(), _audit(), principal, solution_id, data.model_dump()
    )
    svc = context.services()
    solution = await service.visible_solution(_db(), principal, solution_id)
    await svc.plugins.call(
        "account_provisioned", only=solution.enabled_plugins, account=account, services=svc
    )
    return _dump(account), 201


@blueprint.get("/solutions/<solution_id>/accounts")
@validate_querystring(ListQuery)
async def list_accounts(solution_id: str, query_args: ListQuery) -> dict[str, Any]:
    principal = await context.authenticate()
    accounts = await service.list_accounts(
        _db(), principal, solution_id, include_archived=query_args.include_archived
    )
    return {"items": [_dump(a) for a in accounts], "next_cursor": None}


@blueprint.get("/accounts/<account_id>")
async def get_account(account_id: str) -> dict[str, Any]:
    ctx = await context.enter_account(account_id)
    return _dump(ctx.account)


@blueprint.patch("/accounts/<account_id>")
@validate_request(AccountPatch)
async def patch_account(account_id: str, data: AccountPatch) -> dict[str, Any]:
    ctx = await context.enter_account(account_id)
    service.require_rank(ctx.principal, ctx, Role.ACCOUNT_ADMIN)
    await _db()["accounts"].update_one({"_id": ctx.account.id}, {"$set": _changes(data)})
    await _audit().record("account.updated", actor=ctx.principal, account_id=ctx.account.id,
                          solution_id=ctx.solution.id, target=ctx.account.id)
    context.services().tenancy.directory.invalidate()
    return {**_dump(ctx.account), **_changes(data)}


@blueprint.delete("/accounts/<account_id>")
async def archive_account(account_id: str) -> Response:
    ctx = await context.enter_account(account_id)
    await service.archive_account(_db(), _audit(), ctx, archived=True)
    context.services().tenancy.directory.invalidate()
    return Response(status=204)


@blueprint.post("/accounts/<account_id>/restore")
async def restore_account(account_id: str) -> Response:
    ctx = await context.enter_account(account_id)
    await service.archive_account(_db(), _audit(), ctx, archived=False)
    context.services().tenancy.directory.invalidate()
    return Response(status=204)


# -- groups ----------------------------------------------------------------------


@blueprint.post("/accounts/<account_id>/groups")
@validate_request(GroupIn)
async def create_group(account_id: str, data: GroupIn) -> tuple[dict[str, Any], int]:
    ctx = await context.enter_account(account_id)
    group = await service.create_group(_db(), _audit(), ctx, data.model_dump())
    return _dump(group), 201


@blueprint.get("/accounts/<account_id>/groups")
async def list_groups(account_id: str) -> dict[str, Any]:
    ctx = await context.enter_account(account_id)
    groups = await service.list_groups(_db(), ctx)
    return {"items": [_dump(g) for g in groups], "next_cursor": None}


@blueprint.get("/accounts/<account_id>/groups/<group_id>")
async def get_group(account_id: str, group_id: str) -> dict[str, Any]:
    ctx = await context.enter_account(account_id)
    return _dump(await service.get_group(_db(), ctx, group_id))


@blueprint.patch("/accounts/<account_id>/groups/<group_id>")
@validate_request(GroupPatch)
async def patch_group(account_id: str, group_id: str, data: GroupPatch) -> dict[str, Any]:
    ctx = await context.enter_account(account_id)
    group = await service.update_group(_db(), _audit(), ctx, group_id, _changes(data))
    return _dump(group)


@blueprint.delete("/accounts/<account_id>/groups/<group_id>")
async def archive_group(account_id: str, group_id: str) -> Response:
    ctx = await context.enter_account(account_id)
    await service.archive_group(_db(), _audit(), ctx, group_id)
    return Response(status=204)


# -- members and invitations ---------------------------------------------------------


@blueprint.get("/accounts/<account_id>/members")
async def list_members(account_id: str) -> dict[str, Any]:
    ctx = await context.enter_account(account_id)
    members = await context.services().tenancy.directory.members(ctx.account.id, limit=1000)
    items = [
        {"uid": m.uid, "email": m.email,
         "memberships": [x.model_dump(mode="json") for x in m.memberships]}
        for m in members
    ]
    return {"items": items, "next_cursor": None}


@blueprint.put("/accounts/<account_id>/members/<user_id>")
@validate_request(RoleIn)
async def put_account_member(account_id: str, user_id: str, data: RoleIn) -> Response:
    ctx = await context.enter_account(account_id)
    await service.set_account_member(_db(), _audit(), ctx, user_id, data.role)
    return Response(status=204)


@blueprint.delete("/accounts/<account_id>/members/<user_id>")
async def delete_account_member(account_id: str, user_id: str) -> Response:
    ctx = await context.enter_account(account_id)
    await service.set_account_member(_db(), _audit(), ctx, user_id, None)
    return Response(status=204)


@blueprint.put("/accounts/<account_id>/groups/<group_id>/members/<user_id>")
@validate_request(RoleIn)
async def put_group_member(account_id: str, group_id: str, user_id: str, data: RoleIn) -> Response:
    ctx = await context.enter_account(account_id)
    await service.set_group_member(_db(), _audit(), ctx, group_id, user_id, data.role)
    return Response(status=204)


@blueprint.delete("/accounts/<account_id>/groups/<group_id>/members/<user_id>")
async def delete_group_member(account_id: str, group_id: str, user_id: str) -> Response:
    ctx = await context.enter_account(account_id)
    await service.set_group_member(_db(), _audit(), ctx, group_id, user_id, None)
    return Response(status=204)


@blueprint.post("/accounts/<account_id>/invitations")
@validate_request(InvitationIn)
async def create_invitation(account_id: str, data: InvitationIn) -> tuple[dict[str, Any], int]:
    ctx = await context.enter_account(account_id)
    invitation = await service.invite(
        _db(), _audit(), ctx, email=data.email, role=data.role, group_id=data.group_id
    )
    public = {k: invitation[k] for k in ("email", "role", "group_id", "status")}
    return {"id": invitation["_id"], **public}, 201


# -- activity (audit) ------------------------------------------------------------------


def _require_audit_reader(ctx: Any) -> None:
    if service.effective_rank(ctx.principal, ctx) < ROLE_RANK[Role.ACCOUNT_ADMIN]:
        raise Forbidden("Only account administrators read the activity log.")


def _public_event(event: dict[str, Any]) -> dict[str, Any]:
    event = dict(event)
    event["id"] = str(event.pop("_id"))
    event["at"] = event["at"].isoformat()
    return event


@blueprint.get("/accounts/<account_id>/activity")
@validate_querystring(ActivityQuery)
async def activity(account_id: str, query_args: ActivityQuery) -> dict[str, Any]:
    ctx = await context.enter_account(account_id)
    _require_audit_reader(ctx)
    items = []
    last_seq = query_args.after
    async for event in _audit().iter_chain(ctx.account.id, after_seq=query_args.after):
        last_seq = event["seq"]
        if query_args.action and event["action"] != query_args.action:
            continue
        if query_args.actor and event["actor"] != query_args.actor:
            continue
        items.append(_public_event(event))
        if len(items) > query_args.limit:
            break
    next_cursor = None
    if len(items) > query_args.limit:
        items = items[: query_args.limit]
        next_cursor = str(items[-1]["seq"])
    del last_seq
    return {"items": items, "next_cursor": next_cursor}


@blueprint.get("/accounts/<account_id>/activity/export")
async def activity_export(account_id: str) -> Response:
    ctx = await context.enter_account(account_id)
    _require_audit_reader(ctx)

    audit = _audit()  # resolved now: the stream outlives the request context

    async def lines() -> Any:
        async for event in audit.iter_chain(ctx.account.id):
            yield (json.dumps(_public_event(event), default=str) + "\n").encode()

    return Response(lines(), content_type="application/x-ndjson")


@blueprint.get("/accounts/<account_id>/activity/verify")
async def activity_verify(account_id: str) -> dict[str, Any]:
    ctx = await context.enter_account(account_id)
    _require_audit_reader(ctx)
    result: VerifyResult = await _audit().verify(ctx.account.id)
    return result.as_dict()


# -- explain ---------------------------------------------------------------------------


@blueprint.get("/accounts/<account_id>/access/explain")
@validate_querystring(ExplainQuery)
async def access_explain(account_id: str, query_args: ExplainQuery) -> dict[str, Any]:
    ctx = await context.enter_account(account_id)
    collection, _, resource_id = query_args.resource.partition(":")
    factory = context.services().tenancy.repositories
    model = factory.models.get(collection)
    if model is None or not resource_id:
        raise NotFound("No such resource.")
    resource: ScopedResource = await context.repository(model, ctx).get(resource_id)
    names = {ctx.account.id: ctx.account.name, ctx.solution.id: ctx.solution.name}
    if resource.group_id:
        group = await _db()["groups"].find_one({"_id": resource.group_id})
        if group:
            names[group["_id"]] = group["name"]
    explanation: dict[str, Any] = explain(
        ctx.principal, query_args.action, resource, names
    ).as_dict()
    return explanation


# -- settings cascade ------------------------------------------------------------------


class SettingsIn(Strict):
    values: dict[str, Any] = Field(default_factory=dict)


class SolutionSettingsIn(SettingsIn):
    locks: list[str] | None = Field(None, max_length=100)


class CascadeQuery(BaseModel):
    group_id: str | None = Field(None, max_length=64)


def _schema_for(namespace: str) -> Any:
    if namespace == "branding":
        return BrandingSettings
    info = context.services().plugins.infos.get(namespace)
    if info is None or info.kernel:
        raise NotFound(f"No settings namespace {namespace!r}.")
    return info.manifest.solution_settings


def _store() -> CascadeStore:
    return context.services().tenancy.cascade


async def _resolved(namespace: str, solution: Any, account_id: str | None = None,
                    group_id: str | None = None) -> dict[str, Any]:
    resolved = await _store().resolve_for(
        namespace, _schema_for(namespace), solution_id=solution.id,
        enabled_with=solution.plugin_settings.get(namespace),
        account_id=account_id, group_id=group_id)
    return {key: value.as_dict() for key, value in resolved.items()}


@blueprint.get("/accounts/<account_id>/settings/<namespace>")
@validate_querystring(CascadeQuery)
async def get_settings(account_id: str, namespace: str, query_args: CascadeQuery
                       ) -> dict[str, Any]:
    ctx = await context.enter_account(account_id)
    group_id = None
    if query_args.group_id:
        group_id = (await service.get_group(_db(), ctx, query_args.group_id)).id
    values = await _resolved(namespace, ctx.solution, ctx.account.id, group_id)
    return {"namespace": namespace, "values": values}


@blueprint.put("/solutions/<solution_id>/settings/<namespace>")
@validate_request(SolutionSettingsIn)
async def put_solution_settings(solution_id: str, namespace: str, data: SolutionSettingsIn
                                ) -> dict[str, Any]:
    principal, solution = await context.enter_solution_admin(solution_id, write=True)
    schema = _schema_for(namespace)
    values = validate_values(schema, data.values)
    await _check_settings(namespace, None, values)
    if data.locks is not None:
        unknown = sorted(set(data.locks) - set(schema.model_fields if schema else {}))
        if unknown:
            raise Unprocessable(f"Cannot lock unknown settings: {', '.join(unknown)}.")
    await _store().write("solution", solution.id, namespace, values, data.locks)
    await _audit().record("settings.changed", actor=principal, solution_id=solution.id,
                          target=namespace, details={"level": "solution", "keys": sorted(values),
                                                     "locks": data.locks})
    return {"namespace": namespace, "values": await _resolved(namespace, solution)}


async def _check_settings(namespace: str, ctx: Any, values: dict[str, Any]) -> None:
    """A namespace owner's own rules on top of the schema (e.g. branding's images)."""
    check = context.services().tenancy.settings_checks.get(namespace)
    if check is not None:
        await check(ctx, values)


async def _write_lower(ctx: Any, level: Any, target_id: str, namespace: str,
                       data: SettingsIn) -> None:
    schema = _schema_for(namespace)
    values = validate_values(schema, data.values)
    await _check_settings(namespace, ctx, values)
    solution_layers = await _store().layers(namespace, {"solution": ctx.solution.id},
                                            fresh=True)  # a lock set a moment ago holds
    locks = solution_layers[0].locks if solution_layers else frozenset()
    try:
        check_write(level, values, locks)
    except Forbidden:
        await _audit().record("settings.locked_write_refused", actor=ctx.principal,
                              account_id=ctx.account.id, solution_id=ctx.solution.id,
                              target=namespace, details={"level": level, "keys": sorted(values)})
        raise
    await _store().write(level, target_id, namespace, values)
    await _audit().record("settings.changed", actor=ctx.principal, account_id=ctx.account.id,
                          solution_id=ctx.solution.id, target=namespace,
                          details={"level": level, "keys": sorted(values)})


@blueprint.put("/accounts/<account_id>/settings/<namespace>")
@validate_request(SettingsIn)
async def put_account_settings(account_id: str, namespace: str, data: SettingsIn
                               ) -> dict[str, Any]:
    ctx = await context.enter_account(account_id)
    service.require_rank(ctx.principal, ctx, Role.ACCOUNT_ADMIN)
    await _write_lower(ctx, "account", ctx.account.id, namespace, data)
    return {"namespace": namespace,
            "values": await _resolved(namespace, ctx.solution, ctx.account.id)}


@blueprint.put("/accounts/<account_id>/groups/<group_id>/settings/<namespace>")
@validate_request(SettingsIn)
async def put_group_settings(account_id: str, group_id: str, namespace: str, data: SettingsIn
                             ) -> dict[str, Any]:
    ctx = await context.enter_account(account_id)
    group = await service.get_group(_db(), ctx, group_id)
    service.require_rank(ctx.principal, ctx, Role.GROUP_ADMIN, group.id)
    await _write_lower(ctx, "group", group.id, namespace, data)
    return {"namespace": namespace,
            "values": await _resolved(namespace, ctx.solution, ctx.account.id, group.id)}


# -- break-glass impersonation -------------------------------------------------------


class ImpersonationIn(Strict):
    uid: str = Field(min_length=1, max_length=128)
    reason: str = Field(min_length=10, max_length=500)
    minutes: int = Field(15, ge=1, le=60)
    write: bool = False


@blueprint.post("/admin/impersonations")
@validate_request(ImpersonationIn)
async def start_impersonation(data: ImpersonationIn) -> tuple[dict[str, Any], int]:
    """SUPERADMIN only; the session id goes in the ``X-Impersonation`` header."""
    principal = await context.authenticate()
    tenancy = context.services().tenancy
    session = await tenancy.impersonation.start(
        principal, uid=data.uid, reason=data.reason, minutes=data.minutes, write=data.write
    )
    target = await _db()["users"].find_one({"_id": data.uid}, projection={"memberships": 1})
    accounts = {
        (m.get("account_id"), m.get("solution_id"))
        for m in (target or {}).get("memberships", []) if m.get("account_id")
    }
    details = {"uid": data.uid, "reason": session["reason"], "write": data.write,
               "expires_at": session["expires_at"].isoformat()}
    # Visible to the tenant's admins: one event in each account the user belongs to.
    for account_id, solution_id in sorted(accounts):
        await tenancy.audit.record("impersonation.started", actor=principal,
                                   account_id=account_id, solution_id=solution_id,
                                   target=data.uid, details=details)
    await tenancy.audit.record("impersonation.started", actor=principal, target=data.uid,
                               details=details)
    return {"id": session["_id"], "uid": data.uid, "read_only": not data.write,
            "expires_at": session["expires_at"].isoformat(), "header": "X-Impersonation"}, 201
