"""One ``test_hook_<name>`` per hookspec, through the real app and real servers.

The app here is built by the one composition root with three inline plugins:

- ``hookprobe`` implements every hook and records what the kernel hands it;
- ``hookbystander`` has no manifest and is never enabled by any Solution;
- ``hookbroken`` raises or hangs in its hooks (never enabled either).

It has its own database (the session's name plus ``_hooks``) so the Solutions
seeded here do not show up in other modules' listings, and it does not load
entry-point plugins: the built-in plugins' module-level blueprints are already
mounted by the session app, and mounting them again fails (see
``test_plugin_blueprint_can_be_mounted_by_two_apps``).
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import pytest
import pytest_asyncio
from quart import Blueprint

from core.hooks import PluginManifest, ThemeAssets, hookimpl
from core.kernel.app import create_app
from core.tenancy.models import Account, ScopedResource
from core.testing.tenancy import Personas, seed_personas

pytestmark = pytest.mark.asyncio(loop_scope="session")

PROBE = "hookprobe"
BYSTANDER = "hookbystander"
BROKEN = "hookbroken"
HOOK_TIMEOUT = 0.5


# -- the inline plugins ----------------------------------------------------------------------


class ProbeNote(ScopedResource):
    collection: ClassVar[str] = "hookprobe_notes"
    indexes: ClassVar[tuple[tuple[tuple[str, int], ...], ...]] = (
        (("title", 1),),
        (("pinned", 1), ("created_at", -1)),
    )

    title: str
    pinned: bool = False


@dataclass(frozen=True)
class SectionStub:
    """Stands in for a section type: the kernel does not consume these yet."""

    name: str
    template: str


@dataclass(frozen=True)
class TokenProviderStub:
    name: str

    async def mint(self, **_: Any) -> dict[str, str]:
        return {"provider": self.name}


async def socket_ping(ctx: Any, payload: dict[str, Any]) -> dict[str, Any]:
    return {"pong": payload}


def _ping_blueprint(plugin: str) -> Blueprint:
    """A fresh blueprint per app (the kernel attaches its gate to the object)."""
    blueprint = Blueprint(f"{plugin}_routes", __name__)

    @blueprint.get("/ping")
    async def ping(account_id: str) -> dict[str, str]:
        return {"plugin": plugin, "account_id": account_id}

    return blueprint


class ProbePlugin:
    """Implements every hook; records each call the kernel makes."""

    def __init__(self) -> None:
        self.calls: dict[str, list[Any]] = defaultdict(list)

    @hookimpl
    def plugin_manifest(self) -> PluginManifest:
        return PluginManifest(name=PROBE, version="2.3.1", title="Hook probe",
                              description="Records every hook call.")

    @hookimpl
    def register_routes(self) -> Blueprint:
        self.calls["register_routes"].append(True)
        return _ping_blueprint(PROBE)

    @hookimpl
    def register_models(self) -> list[type[ScopedResource]]:
        self.calls["register_models"].append(True)
        return [ProbeNote]

    @hookimpl
    def register_socket_handlers(self) -> dict[str, Any]:
        return {"ping": socket_ping}

    @hookimpl
    def register_landing_sections(self) -> list[SectionStub]:
        return [SectionStub("probe_hero", "sections/hero.html.j2"),
                SectionStub("probe_faq", "sections/faq.html.j2")]

    @hookimpl
    async def register_theme_assets(self) -> ThemeAssets:
        await asyncio.sleep(0)
        return ThemeAssets(static_dir=Path("/srv/probe/static"),
                           templates_dir=Path("/srv/probe/templates"))

    @hookimpl
    async def register_token_providers(self) -> list[TokenProviderStub]:
        await asyncio.sleep(0)
        return [TokenProviderStub("probe_voice"), TokenProviderStub("probe_avatar")]

    @hookimpl
    async def startup(self, services: Any) -> None:
        indexes = await services.db[ProbeNote.collection].index_information()
        self.calls["startup"].append({"services": services, "indexes": indexes})

    @hookimpl
    async def account_provisioned(self, account: Any, services: Any) -> None:
        self.calls["account_provisioned"].append({"account": account, "services": services})

    @hookimpl
    def activity_recorded(self, event: Any) -> None:
        self.calls["activity_recorded"].append(event)


class BystanderPlugin:
    """No manifest; never enabled. Records whatever reaches it anyway."""

    def __init__(self) -> None:
        self.calls: dict[str, list[Any]] = defaultdict(list)

    @hookimpl
    def register_routes(self) -> Blueprint:
        return _ping_blueprint(BYSTANDER)

    @hookimpl
    async def account_provisioned(self, account: Any) -> None:
        self.calls["account_provisioned"].append(account)

    @hookimpl
    async def activity_recorded(self, event: Any) -> None:
        self.calls["activity_recorded"].append(event)


class BrokenPlugin:
    """Raises or hangs; hangs end when the module's fixture releases them."""

    def __init__(self, release: threading.Event) -> None:
        self.release = release

    @hookimpl
    def plugin_manifest(self) -> PluginManifest:
        return PluginManifest(name=BROKEN, version="0.0.1", title="Broken on purpose")

    @hookimpl
    def register_socket_handlers(self) -> dict[str, Any]:
        raise RuntimeError("socket handlers unavailable")

    @hookimpl
    def register_landing_sections(self) -> list[Any]:
        self.release.wait(60)
        return [SectionStub("too_late", "x")]

    @hookimpl
    def register_theme_assets(self) -> ThemeAssets:
        raise FileNotFoundError("no static dir")

    @hookimpl
    async def register_token_providers(self) -> list[Any]:
        while not self.release.is_set():
            await asyncio.sleep(0.01)
        return [TokenProviderStub("too_late")]

    @hookimpl
    def activity_recorded(self, event: Any) -> None:
        raise RuntimeError(f"observer crashed on {event['action']}")


# -- fixtures ----------------------------------------------------------------------------------


@dataclass
class ProbeApp:
    test_app: Any
    services: Any
    probe: ProbePlugin
    bystander: BystanderPlugin
    auth_host: str

    @property
    def registry(self) -> Any:
        return self.services.plugins

    def client(self) -> Any:
        return self.test_app.test_client()


@pytest.fixture(scope="module")
def hooks_settings(synergyhub_settings: Any) -> Any:
    return synergyhub_settings.model_copy(update={
        "mongodb_database": f"{synergyhub_settings.mongodb_database}_hooks",
        "hook_timeout_seconds": HOOK_TIMEOUT,
    })


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def probe_app(hooks_settings: Any, synergyhub_stack: Any) -> AsyncIterator[ProbeApp]:
    release = threading.Event()
    probe, bystander = ProbePlugin(), BystanderPlugin()
    app = create_app(
        hooks_settings,
        extra_plugins=[(PROBE, probe), (BYSTANDER, bystander), (BROKEN, BrokenPlugin(release))],
        load_entrypoints=False,
    )
    try:
        async with app.test_app() as test_app:
            yield ProbeApp(test_app, app.extensions["synergyhub"], probe, bystander,
                           synergyhub_stack.firebase_auth_host)
    finally:
        release.set()


@pytest_asyncio.fixture(loop_scope="session")
async def tenancy(probe_app: ProbeApp) -> Personas:
    """A fresh seeded tenancy whose home Solution enables none of the plugins."""
    return await seed_personas(probe_app.services.db, probe_app.auth_host, enabled_plugins=[])


async def _enable(probe_app: ProbeApp, personas: Personas, plugin: str, enabled: bool = True
                  ) -> dict[str, Any]:
    response = await probe_app.client().put(
        f"/api/v1/solutions/{personas.home_solution}/plugins/{plugin}",
        json={"enabled": enabled},
        headers=personas["SOLUTION_ADMIN"].headers(),
    )
    assert response.status_code == 200, await response.get_data(as_text=True)
    body: dict[str, Any] = await response.get_json()
    return body


def _provisioned(probe_app: ProbeApp, account_ids: set[str]) -> list[str]:
    return [
        call["account"].id
        for call in probe_app.probe.calls["account_provisioned"]
        if call["account"].id in account_ids
    ]


# -- plugin_manifest ---------------------------------------------------------------------------


async def test_hook_plugin_manifest(probe_app: ProbeApp) -> None:
    response = await probe_app.client().get("/readyz")
    assert response.status_code == 200
    plugins = (await response.get_json())["plugins"]

    assert plugins[PROBE] == {"version": "2.3.1", "state": "ok", "faults": []}
    assert plugins[BYSTANDER]["version"] == "0"  # no manifest
    assert plugins[BROKEN]["version"] == "0.0.1"
    assert plugins["kernel.tenancy"]["version"] == "1"

    info = probe_app.registry.infos[PROBE]
    assert (info.manifest.name, info.manifest.version, info.manifest.title) == (
        PROBE, "2.3.1", "Hook probe")
    assert info.source == "registered in code"
    assert info.kernel is False
    assert probe_app.registry.infos["kernel.tenancy"].kernel is True
    assert probe_app.registry.feature_plugins() == sorted([PROBE, BYSTANDER, BROKEN])


# -- register_routes ---------------------------------------------------------------------------


async def test_hook_register_routes(probe_app: ProbeApp, tenancy: Personas) -> None:
    client = probe_app.client()
    account = tenancy.home_account
    url = f"/api/v1/accounts/{account}/{PROBE}/ping"
    member = tenancy["MEMBER"].headers()

    assert probe_app.probe.calls["register_routes"] == [True]  # once, when the app was built
    rules = {rule.rule for rule in probe_app.test_app.app.url_map.iter_rules()}
    assert f"/api/v1/accounts/<account_id>/{PROBE}/ping" in rules

    # Mounted, but the home Solution does not enable it yet: 404.
    response = await client.get(url, headers=member)
    assert response.status_code == 404
    assert response.headers["Content-Type"].startswith("application/problem+json")
    # The gate authenticates first.
    assert (await client.get(url)).status_code == 401

    body = await _enable(probe_app, tenancy, PROBE)
    assert PROBE in body["enabled_plugins"]

    response = await client.get(url, headers=member)
    assert response.status_code == 200, await response.get_data(as_text=True)
    assert await response.get_json() == {"plugin": PROBE, "account_id": account}

    # Still gated per plugin and per Solution.
    bystander = await client.get(f"/api/v1/accounts/{account}/{BYSTANDER}/ping", headers=member)
    assert bystander.status_code == 404
    elsewhere = tenancy.tenants[1].accounts[0]
    other = await client.get(f"/api/v1/accounts/{elsewhere}/{PROBE}/ping",
                             headers=tenancy[f"ADMIN:{elsewhere}"].headers())
    assert other.status_code == 404
    # A member of the home account cannot reach another account through the plugin.
    sibling = tenancy.tenants[0].accounts[1]
    assert (await client.get(f"/api/v1/accounts/{sibling}/{PROBE}/ping",
                             headers=member)).status_code == 404

    await _enable(probe_app, tenancy, PROBE, enabled=False)
    assert (await client.get(url, headers=member)).status_code == 404


# -- register_models ---------------------------------------------------------------------------


async def test_hook_register_models(probe_app: ProbeApp) -> None:
    assert probe_app.probe.calls["register_models"] == [True]
    assert probe_app.services.tenancy.repositories.models[ProbeNote.collection] is ProbeNote

    info = await probe_app.services.db[ProbeNote.collection].index_information()
    keys = [list(map(tuple, spec["key"])) for spec in info.values()]
    # The access filter's indexes, created by the kernel …
    assert [("read_keys", 1), ("_id", -1)] in keys
    assert [("write_keys", 1)] in keys
    # … and the model's own.
    assert [("title", 1)] in keys
    assert [("pinned", 1), ("created_at", -1)] in keys


# -- startup / shutdown ------------------------------------------------------------------------


async def test_hook_startup(probe_app: ProbeApp) -> None:
    calls = probe_app.probe.calls["startup"]
    assert len(calls) == 1
    assert calls[0]["services"] is probe_app.services
    # The database was open and the model's indexes existed when startup ran.
    started_with = [list(map(tuple, spec["key"])) for spec in calls[0]["indexes"].values()]
    assert [("title", 1)] in started_with
    assert [("read_keys", 1), ("_id", -1)] in started_with
    assert not [f for f in probe_app.registry.faults if f.plugin == PROBE]


class LifecyclePlugin:
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []

    @hookimpl
    async def startup(self, services: Any) -> None:
        self.events.append(("startup", services))

    @hookimpl
    async def shutdown(self, services: Any) -> None:
        # Called before the database client closes: it still answers.
        pong = await services.db.command("ping")
        self.events.append(("shutdown", services))
        self.events.append(("db", pong.get("ok")))


class FailingShutdownPlugin:
    @hookimpl
    def shutdown(self) -> None:
        raise RuntimeError("cannot let go")


async def test_hook_shutdown(hooks_settings: Any) -> None:
    lifecycle = LifecyclePlugin()
    app = create_app(
        hooks_settings,
        extra_plugins=[("failing_shutdown", FailingShutdownPlugin()), ("lifecycle", lifecycle)],
        load_entrypoints=False,
    )
    services = app.extensions["synergyhub"]

    async with app.test_app():
        assert lifecycle.events == [("startup", services)]

    assert lifecycle.events == [("startup", services), ("shutdown", services), ("db", 1.0)]
    faults = [(f.plugin, f.hook, f.reason) for f in services.plugins.faults]
    assert faults == [("failing_shutdown", "shutdown", "RuntimeError: cannot let go")]
    assert services._mongo is None  # the kernel closed the client after the hooks


# -- account_provisioned -----------------------------------------------------------------------


async def test_hook_account_provisioned(probe_app: ProbeApp, tenancy: Personas) -> None:
    client = probe_app.client()
    home_accounts = set(tenancy.tenants[0].accounts)
    other_accounts = set(tenancy.tenants[1].accounts)
    everything = home_accounts | other_accounts

    # Enabling provisions every existing account of that Solution, and only those.
    await _enable(probe_app, tenancy, PROBE)
    assert sorted(_provisioned(probe_app, everything)) == sorted(home_accounts)
    call = next(c for c in probe_app.probe.calls["account_provisioned"]
                if c["account"].id == tenancy.home_account)
    assert isinstance(call["account"], Account)
    assert call["account"].solution_id == tenancy.home_solution
    assert call["services"] is probe_app.services

    # A new account in a Solution that enables the plugin is provisioned.
    response = await client.post(
        f"/api/v1/solutions/{tenancy.home_solution}/accounts",
        json={"slug": f"probe-{uuid.uuid4().hex[:6]}", "name": "Provisioned account"},
        headers=tenancy["SOLUTION_ADMIN"].headers(),
    )
    assert response.status_code == 201, await response.get_data(as_text=True)
    new_account = (await response.get_json())["id"]
    everything.add(new_account)
    assert _provisioned(probe_app, {new_account}) == [new_account]

    # Plugins the Solution does not enable are never called.
    reached = {a.id for a in probe_app.bystander.calls["account_provisioned"]}
    assert reached & everything == set()

    # Re-sending "enabled" does not provision again …
    await _enable(probe_app, tenancy, PROBE)
    assert sorted(_provisioned(probe_app, everything)) == sorted(home_accounts | {new_account})
    # … but disabling and re-enabling does: implementations must be idempotent.
    await _enable(probe_app, tenancy, PROBE, enabled=False)
    await _enable(probe_app, tenancy, PROBE)
    counts = {a: _provisioned(probe_app, everything).count(a) for a in everything}
    assert counts == {**{a: 2 for a in home_accounts | {new_account}},
                      **{a: 0 for a in other_accounts}}


# -- activity_recorded -------------------------------------------------------------------------


async def _create_group(probe_app: ProbeApp, personas: Personas, name: str) -> str:
    response = await probe_app.client().post(
        f"/api/v1/accounts/{personas.home_account}/groups",
        json={"name": name},
        headers=personas["ACCOUNT_ADMIN"].headers(),
    )
    assert response.status_code == 201, await response.get_data(as_text=True)
    group_id: str = (await response.get_json())["id"]
    return group_id


async def test_hook_activity_recorded(probe_app: ProbeApp, tenancy: Personas) -> None:
    await _enable(probe_app, tenancy, PROBE)
    await _enable(probe_app, tenancy, BROKEN)  # observers must be enabled to see events
    faults_before = len(probe_app.registry.faults)

    group_id = await _create_group(probe_app, tenancy, "Observed group")

    events = [e for e in probe_app.probe.calls["activity_recorded"] if e["target"] == group_id]
    assert len(events) == 1
    event = events[0]
    assert event["action"] == "group.created"
    assert event["account_id"] == tenancy.home_account
    assert event["solution_id"] == tenancy.home_solution
    assert event["actor"] == tenancy["ACCOUNT_ADMIN"].uid
    # The observer sees the event as stored (after the write, hash included).
    stored = await probe_app.services.db["audit_events"].find_one({"_id": event["_id"]}) or {}
    assert (stored.get("action"), stored.get("hash")) == ("group.created", event["hash"])
    # A crashing observer is isolated: the request succeeded, the fault is recorded.
    new_faults = [(f.plugin, f.hook, f.reason) for f in probe_app.registry.faults[faults_before:]]
    assert (BROKEN, "activity_recorded", "RuntimeError: observer crashed on group.created") \
        in new_faults


async def test_activity_recorded_reaches_only_enabled_plugins(
    probe_app: ProbeApp, tenancy: Personas
) -> None:
    await _enable(probe_app, tenancy, PROBE)

    group_id = await _create_group(probe_app, tenancy, "Private group")

    assert [e["target"] for e in probe_app.probe.calls["activity_recorded"]].count(group_id) == 1
    assert group_id not in [e["target"] for e in probe_app.bystander.calls["activity_recorded"]]


# -- hooks the kernel does not consume yet -------------------------------------------------------


def _faults(probe_app: ProbeApp, hook: str) -> list[tuple[str, str]]:
    return [(f.plugin, f.reason) for f in probe_app.registry.faults if f.hook == hook]


async def test_hook_register_socket_handlers(probe_app: ProbeApp) -> None:
    # The kernel never called it while building and starting the app …
    assert _faults(probe_app, "register_socket_handlers") == []

    collected = probe_app.registry.collect("register_socket_handlers")

    # … and when collected, results come back per plugin with the broken one isolated.
    assert collected == {PROBE: [{"ping": socket_ping}]}
    assert await collected[PROBE][0]["ping"](None, {"n": 1}) == {"pong": {"n": 1}}
    assert _faults(probe_app, "register_socket_handlers") == [
        (BROKEN, "RuntimeError: socket handlers unavailable")
    ]


async def test_hook_register_landing_sections(probe_app: ProbeApp) -> None:
    assert _faults(probe_app, "register_landing_sections") == []

    collected = probe_app.registry.collect("register_landing_sections")

    assert collected == {PROBE: [SectionStub("probe_hero", "sections/hero.html.j2"),
                                 SectionStub("probe_faq", "sections/faq.html.j2")]}
    assert _faults(probe_app, "register_landing_sections") == [(BROKEN, "timed out")]


async def test_hook_register_theme_assets(probe_app: ProbeApp) -> None:
    assert _faults(probe_app, "register_theme_assets") == []

    collected = probe_app.registry.collect("register_theme_assets")

    assert collected == {PROBE: [ThemeAssets(static_dir=Path("/srv/probe/static"),
                                             templates_dir=Path("/srv/probe/templates"))]}
    assert _faults(probe_app, "register_theme_assets") == [
        (BROKEN, "FileNotFoundError: no static dir")
    ]


async def test_hook_register_token_providers(probe_app: ProbeApp) -> None:
    assert _faults(probe_app, "register_token_providers") == []

    collected = probe_app.registry.collect("register_token_providers")

    assert [p.name for p in collected[PROBE]] == ["probe_voice", "probe_avatar"]
    assert set(collected) == {PROBE, "kernel.ai"}  # kernel.ai: the built-in providers
    assert _faults(probe_app, "register_token_providers") == [(BROKEN, "timed out")]
    # The kernel is unaffected: still ready, the broken plugin reported as faulty.
    body = await (await probe_app.client().get("/readyz")).get_json()
    assert body["status"] == "ready"
    assert body["plugins"][BROKEN]["state"] == "faulty"
    assert body["plugins"][PROBE]["state"] == "ok"


# -- regressions of kernel defects found while writing these tests -----------------------


SHARED_BLUEPRINT = Blueprint("shared_routes", __name__)


@SHARED_BLUEPRINT.get("/ping")
async def shared_ping(account_id: str) -> dict[str, str]:
    return {"account_id": account_id}


class ModuleBlueprintPlugin:
    """Like the built-in plugins: one module-level blueprint object."""

    @hookimpl
    def register_routes(self) -> Blueprint:
        return SHARED_BLUEPRINT


async def test_plugin_blueprint_can_be_mounted_by_two_apps(hooks_settings: Any) -> None:
    plugins = [("shared", ModuleBlueprintPlugin())]
    first = create_app(hooks_settings, extra_plugins=plugins, load_entrypoints=False)
    second = create_app(hooks_settings, extra_plugins=plugins, load_entrypoints=False)

    for app in (first, second):
        rules = {rule.rule for rule in app.url_map.iter_rules()}
        assert "/api/v1/accounts/<account_id>/shared/ping" in rules


class NotAModelPlugin:
    @hookimpl
    def register_models(self) -> list[Any]:
        return ["not a model class"]


async def test_register_models_bad_result_is_isolated(hooks_settings: Any) -> None:
    app = create_app(hooks_settings, extra_plugins=[("notamodel", NotAModelPlugin())],
                     load_entrypoints=False)
    services = app.extensions["synergyhub"]
    try:
        async with app.test_app() as test_app:
            body = await (await test_app.test_client().get("/readyz")).get_json()
            assert body["status"] == "ready"
            assert body["plugins"]["notamodel"]["state"] == "faulty"
    finally:
        if services._http is not None:
            await services._http.aclose()
        if services._mongo is not None:
            await services._mongo.close()
