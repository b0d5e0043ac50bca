"""The reusable tenancy conformance check (core/testing/conformance.py), checked itself.

It passes for the kernel's documents API, the thin built-in plugins, an honest
plugin mounted through the plugin machinery and, once their routes are in
place, studio and wecomply. It FAILS for plugins that read or write across
scopes: a list that returns another account's items, an undeclared feed route
that does (found only by route discovery), a get-by-id that skips the access
filter, and an update that skips the write filter.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any, ClassVar

import pytest
import pytest_asyncio
from pydantic import BaseModel, ConfigDict, Field
from quart import Blueprint, Response
from quart_schema import validate_request

from core.hooks import PluginManifest, hookimpl
from core.tenancy.models import (
    AccountContext,
    Principal,
    Scope,
    ScopedResource,
    SystemRole,
)
from core.testing.conformance import (
    ConformanceReport,
    ResourceRoute,
    check_tenancy,
    discover_routes,
    scoped_body,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

DOCUMENTS = ResourceRoute(
    collection="/api/v1/accounts/{account_id}/documents",
    create_body=scoped_body({"title": "conformance", "content_type": "text/plain", "size": 1}),
    update_body=lambda marker: {"title": marker},
    name="documents",
)


# --------------------------------------------------------------------------- leaky plugins


class NoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)
    scope: Scope = Scope.PRIVATE
    group_id: str | None = Field(None, max_length=64)


class NotePatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str = Field(min_length=1, max_length=200)


def make_plugin(name: str, leak: str | None) -> Any:
    """A notes plugin; ``leak`` names the one place where it bypasses the rules.

    - ``list``: the list adds the items of other accounts (a second AccountContext
      with a SUPERADMIN principal stands in for a kernel-level bypass);
    - ``feed``: an extra GET route, not declared to the check, does the same;
    - ``get``: get-by-id reads with a SUPERADMIN principal in the same account;
    - ``write``: update writes with a SUPERADMIN principal (no write filter).
    """
    from core.kernel import context

    model = type(f"Note_{name}", (ScopedResource,), {
        "__annotations__": {"title": str},
        "collection": f"{name}_notes",
        "__module__": __name__,
    })

    def public(note: Any) -> dict[str, Any]:
        return note.model_dump(mode="json", exclude={"read_keys", "write_keys"})

    async def bypass(ctx: AccountContext, account_id: str | None = None) -> Any:
        svc = context.services()
        account, solution = ctx.account, ctx.solution
        if account_id is not None:
            found = await svc.tenancy.directory.account_with_solution(account_id)
            assert found is not None and found[0].id == account_id
            account, solution = found
        god = Principal(uid=ctx.principal.uid, system_role=SystemRole.SUPERADMIN)
        return context.repository(model, AccountContext(principal=god, solution=solution,
                                                        account=account))

    async def stolen(ctx: AccountContext) -> list[dict[str, Any]]:
        items: list[dict[str, Any]] = []
        for victim in Plugin.victims:
            if victim != ctx.account.id:
                page = await (await bypass(ctx, victim)).list(limit=100)
                items.extend(public(n) for n in page.items)
        return items

    class Plugin:
        victims: ClassVar[list[str]] = []

        @hookimpl
        def plugin_manifest(self) -> PluginManifest:
            return PluginManifest(name=name, version="1.0", title=f"Notes ({leak or 'honest'})")

        @hookimpl
        def register_models(self) -> list[type[ScopedResource]]:
            return [model]

        @hookimpl
        def register_routes(self) -> Blueprint:
            bp = Blueprint(name, __name__)

            @bp.post("/notes")
            @validate_request(NoteIn)
            async def create(account_id: str, data: NoteIn) -> tuple[dict[str, Any], int]:
                ctx = await context.enter_account(account_id)
                note = await context.repository(model, ctx).insert(
                    {"title": data.title}, scope=data.scope, group_id=data.group_id)
                return public(note), 201

            @bp.get("/notes")
            async def list_notes(account_id: str) -> dict[str, Any]:
                ctx = await context.enter_account(account_id)
                page = await context.repository(model, ctx).list(limit=100)
                items = [public(n) for n in page.items]
                if leak == "list":
                    items += await stolen(ctx)
                return {"items": items, "next_cursor": None}

            @bp.get("/feed")
            async def feed(account_id: str) -> dict[str, Any]:
                ctx = await context.enter_account(account_id)
                return {"recent": await stolen(ctx) if leak == "feed" else []}

            @bp.get("/notes/<note_id>")
            async def get(account_id: str, note_id: str) -> dict[str, Any]:
                ctx = await context.enter_account(account_id)
                repo = await bypass(ctx) if leak == "get" else context.repository(model, ctx)
                return public(await repo.get(note_id))

            @bp.patch("/notes/<note_id>")
            @validate_request(NotePatch)
            async def update(account_id: str, note_id: str, data: NotePatch) -> dict[str, Any]:
                ctx = await context.enter_account(account_id)
                repo = await bypass(ctx) if leak == "write" else context.repository(model, ctx)
                return public(await repo.update(note_id, {"title": data.title}))

            @bp.delete("/notes/<note_id>")
            async def delete(account_id: str, note_id: str) -> Response:
                ctx = await context.enter_account(account_id)
                await context.repository(model, ctx).delete(note_id)
                return Response(status=204)

            return bp

    return Plugin()


LEAKS = ("list", "feed", "get", "write")
PLUGINS = {"notes_ok": make_plugin("notes_ok", None),
           **{f"notes_{leak}": make_plugin(f"notes_{leak}", leak) for leak in LEAKS}}


def notes(plugin: str) -> ResourceRoute:
    return ResourceRoute(
        collection=f"/api/v1/accounts/{{account_id}}/{plugin}/notes",
        create_body=scoped_body({"title": "conformance"}),
        update_body=lambda marker: {"title": marker},
        name=f"{plugin} notes",
    )


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def notes_app(synergyhub_settings: Any, personas: Any) -> AsyncIterator[Any]:
    """An app of the same settings with the notes plugins registered in code."""
    from core.kernel.app import create_app

    for plugin in PLUGINS.values():
        type(plugin).victims = [a for t in personas.tenants for a in t.accounts]
    app = create_app(synergyhub_settings, extra_plugins=list(PLUGINS.items()))
    async with app.test_app() as test_app:
        yield test_app


def failures_with(report: ConformanceReport, *words: str) -> list[str]:
    return [f for f in report.failures if all(w in f for w in words)]


# --------------------------------------------------------------------------- passing


async def test_kernel_documents_conform(synergyhub_app: Any, personas: Any) -> None:
    report = await check_tenancy(synergyhub_app, personas, resources=[DOCUMENTS])
    report.assert_ok()
    # Every documents route was driven, including the storage routes below an item.
    assert all(how != "gates only" for how in report.routes.values()), report.routes
    assert any("/complete" in route for route in report.routes)


@pytest.mark.parametrize("plugin", ["vision", "v2v", "live_assistant", "studio", "wecomply"])
async def test_builtin_plugins_discovered_routes_conform(synergyhub_app: Any, personas: Any,
                                                         plugin: str) -> None:
    """Every discovered route: gates, the disabled-Solution gate, lists by every persona.

    studio's and wecomply's own suites run the full check with their resources
    declared (tests/integration/studio/, tests/integration/wecomply/).
    """
    report = await check_tenancy(synergyhub_app, personas, plugin=plugin)
    report.assert_ok()
    assert report.routes, f"no routes discovered for {plugin}"


async def test_honest_plugin_conforms(notes_app: Any, personas: Any) -> None:
    report = await check_tenancy(notes_app, personas, plugin="notes_ok",
                                 resources=[notes("notes_ok")])
    report.assert_ok()
    assert "listed by every persona" in \
        report.routes["GET /api/v1/accounts/<account_id>/notes_ok/feed"]
    # Enabled for the run only: both Solutions are as they were.
    for tenant in personas.tenants:
        response = await notes_app.test_client().get(
            f"/api/v1/solutions/{tenant.solution_id}", headers=personas["SUPERADMIN"].headers())
        assert "notes_ok" not in (await response.get_json())["enabled_plugins"]


# --------------------------------------------------------------------------- failing


async def test_leaky_list_fails(notes_app: Any, personas: Any) -> None:
    report = await check_tenancy(notes_app, personas, plugin="notes_list",
                                 resources=[notes("notes_list")])
    assert not report.ok
    leaks = failures_with(report, "list", "leaks")
    assert leaks, report.failures
    assert failures_with(report, "MEMBER list", "account@sibling")
    assert failures_with(report, "MEMBER list", "another account")
    assert failures_with(report, "ADMIN:sibling list", "account")
    with pytest.raises(AssertionError, match="tenancy conformance failures"):
        report.assert_ok()


async def test_leaky_undeclared_route_is_discovered(notes_app: Any, personas: Any) -> None:
    report = await check_tenancy(notes_app, personas, plugin="notes_feed",
                                 resources=[notes("notes_feed")])
    assert not report.ok
    feed = failures_with(report, "GET /api/v1/accounts/<account_id>/notes_feed/feed", "leaks")
    assert feed, report.failures
    assert failures_with(report, "MEMBER GET", "feed", "account@other-solution")
    # Only the feed leaks: the declared routes are clean.
    assert all("/feed" in f for f in report.failures), report.failures


async def test_leaky_get_by_id_fails(notes_app: Any, personas: Any) -> None:
    report = await check_tenancy(notes_app, personas, plugin="notes_get",
                                 resources=[notes("notes_get")])
    assert not report.ok
    assert failures_with(report, "MEMBER get group2", "expected 404, got 200",
                         "cross-scope read"), report.failures
    assert failures_with(report, "MEMBER get group:", "cross-scope read")


async def test_leaky_write_fails(notes_app: Any, personas: Any) -> None:
    report = await check_tenancy(notes_app, personas, plugin="notes_write",
                                 resources=[notes("notes_write")])
    assert not report.ok
    assert failures_with(report, "MEMBER update account:", "cross-scope write"), \
        report.failures
    assert failures_with(report, "VIEWER update global", "cross-scope write")
    assert not failures_with(report, " get ")


# --------------------------------------------------------------------------- discovery


async def test_discovery_sees_plugin_rules(synergyhub_app: Any) -> None:
    routes = {str(r) for r in discover_routes(synergyhub_app,
                                              "/api/v1/accounts/<account_id>/documents")}
    assert "GET /api/v1/accounts/<account_id>/documents" in routes
    assert "DELETE /api/v1/accounts/<account_id>/documents/<document_id>" in routes
    assert not any("HEAD" in r or "OPTIONS" in r for r in routes)
