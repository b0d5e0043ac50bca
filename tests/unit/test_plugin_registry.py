"""PluginRegistry: the one awaitable-aware, fault-isolating hook caller (no I/O).

Inline plugins are registered through ``build_plugin_registry`` exactly as the
app factory does; hangs wait on a ``threading.Event`` that the test sets at the
end, so no daemon thread outlives the test that started it.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Iterator
from typing import Any

import pluggy
import pytest

from core.hooks import PluginManifest, hookimpl
from core.kernel.plugins import KERNEL_PREFIX, build_plugin_registry

asyncio_test = pytest.mark.asyncio(loop_scope="session")

TIMEOUT = 0.5
# A hang must be cut off close to the timeout: generous slack for slow CI, far
# below the hang itself (which only ends when the test releases it).
SLACK = 1.0


@pytest.fixture
def release() -> Iterator[threading.Event]:
    event = threading.Event()
    yield event
    event.set()


class SyncPlugin:
    @hookimpl
    def plugin_manifest(self) -> PluginManifest:
        return PluginManifest(name="sync", version="1.0.0", title="Sync")

    @hookimpl
    def register_models(self) -> list[str]:
        return ["sync-model-a", "sync-model-b"]

    @hookimpl
    def register_token_providers(self) -> str:
        return "sync-provider"

    @hookimpl
    def account_provisioned(self, account: Any) -> str:
        # Takes only one of the two arguments the spec offers.
        return f"sync saw {account}"


class AsyncPlugin:
    @hookimpl
    async def plugin_manifest(self) -> PluginManifest:
        await asyncio.sleep(0)
        return PluginManifest(name="async", version="2.0.0", title="Async")

    @hookimpl
    async def register_models(self) -> list[str]:
        await asyncio.sleep(0)
        return ["async-model"]

    @hookimpl
    async def account_provisioned(self, account: Any, services: Any) -> str:
        await asyncio.sleep(0)
        return f"async saw {account} with {services}"


class RaisingPlugin:
    @hookimpl
    def register_models(self) -> list[str]:
        raise RuntimeError("models exploded")

    @hookimpl
    async def account_provisioned(self, account: Any) -> None:
        raise ValueError(f"cannot provision {account}")


class NoneReturningPlugin:
    @hookimpl
    def register_models(self) -> None:
        return None


class SyncHangPlugin:
    def __init__(self, release: threading.Event) -> None:
        self.release = release

    @hookimpl
    def register_models(self) -> list[str]:
        self.release.wait(60)
        return ["too late"]

    @hookimpl
    def account_provisioned(self, account: Any) -> str:
        self.release.wait(60)
        return "too late"


class AsyncHangPlugin:
    def __init__(self, release: threading.Event) -> None:
        self.release = release

    @hookimpl
    async def register_models(self) -> list[str]:
        while not self.release.is_set():
            await asyncio.sleep(0.01)
        return ["too late"]

    @hookimpl
    async def account_provisioned(self, account: Any) -> str:
        while not self.release.is_set():
            await asyncio.sleep(0.01)
        return "too late"


class ManifestlessPlugin:
    @hookimpl
    def register_socket_handlers(self) -> dict[str, Any]:
        return {"ping": "pong"}


class KernelFeature:
    @hookimpl
    def plugin_manifest(self) -> PluginManifest:
        return PluginManifest(name="kernel.feature", version="9", title="Kernel feature")

    @hookimpl
    def account_provisioned(self, account: Any) -> str:
        return f"kernel saw {account}"


def _registry(*plugins: tuple[str, object], kernel: tuple[tuple[str, object], ...] = ()) -> Any:
    return build_plugin_registry(
        timeout=TIMEOUT, load_entrypoints=False, kernel_plugins=kernel, extra_plugins=plugins
    )


def _by_plugin(results: list[Any]) -> dict[str, Any]:
    return {result.plugin: result.value for result in results}


# -- sync and async implementations -------------------------------------------------


def test_sync_and_async_implementations_both_return_from_call_blocking() -> None:
    registry = _registry(("sync", SyncPlugin()), ("async", AsyncPlugin()))

    results = registry.call_blocking("register_models")

    assert _by_plugin(results) == {
        "sync": ["sync-model-a", "sync-model-b"],
        "async": ["async-model"],
    }
    assert registry.faults == []


@asyncio_test
async def test_sync_and_async_implementations_both_return_from_call() -> None:
    registry = _registry(("sync", SyncPlugin()), ("async", AsyncPlugin()))

    results = await registry.call("account_provisioned", account="acc-1", services="svc")

    assert _by_plugin(results) == {
        "sync": "sync saw acc-1",
        "async": "async saw acc-1 with svc",
    }
    assert registry.faults == []


def test_async_manifest_is_awaited_at_build_time() -> None:
    registry = _registry(("async", AsyncPlugin()))

    assert registry.infos["async"].manifest.version == "2.0.0"
    assert registry.infos["async"].manifest.title == "Async"
    assert registry.infos["async"].source == "registered in code"


def test_collect_flattens_lists_and_wraps_single_values() -> None:
    registry = _registry(("sync", SyncPlugin()), ("async", AsyncPlugin()))

    assert registry.collect("register_models") == {
        "sync": ["sync-model-a", "sync-model-b"],
        "async": ["async-model"],
    }
    assert registry.collect("register_token_providers") == {"sync": ["sync-provider"]}


def test_none_results_are_dropped() -> None:
    registry = _registry(("none", NoneReturningPlugin()), ("sync", SyncPlugin()))

    results = registry.call_blocking("register_models")

    assert [r.plugin for r in results] == ["sync"]
    assert "none" not in registry.collect("register_models")
    assert registry.faults == []


# -- fault isolation -------------------------------------------------------------------


def test_raising_plugin_is_skipped_and_recorded_blocking() -> None:
    registry = _registry(
        ("sync", SyncPlugin()), ("raiser", RaisingPlugin()), ("async", AsyncPlugin())
    )

    collected = registry.collect("register_models")

    assert collected == {"sync": ["sync-model-a", "sync-model-b"], "async": ["async-model"]}
    assert [(f.plugin, f.hook, f.reason) for f in registry.faults] == [
        ("raiser", "register_models", "RuntimeError: models exploded")
    ]
    grouped = registry.faults_by_plugin()
    assert list(grouped) == ["raiser"]
    assert grouped["raiser"][0]["hook"] == "register_models"
    assert grouped["raiser"][0]["reason"] == "RuntimeError: models exploded"


@asyncio_test
async def test_raising_plugin_is_skipped_and_recorded_async() -> None:
    registry = _registry(
        ("sync", SyncPlugin()), ("raiser", RaisingPlugin()), ("async", AsyncPlugin())
    )

    results = await registry.call("account_provisioned", account="acc-2", services="svc")

    assert _by_plugin(results) == {
        "sync": "sync saw acc-2",
        "async": "async saw acc-2 with svc",
    }
    assert [(f.plugin, f.hook, f.reason) for f in registry.faults] == [
        ("raiser", "account_provisioned", "ValueError: cannot provision acc-2")
    ]


def test_sync_hang_times_out_in_call_blocking(release: threading.Event) -> None:
    registry = _registry(("hang", SyncHangPlugin(release)), ("sync", SyncPlugin()))

    started = time.monotonic()
    collected = registry.collect("register_models")
    elapsed = time.monotonic() - started

    assert TIMEOUT * 0.9 <= elapsed < TIMEOUT + SLACK
    assert collected == {"sync": ["sync-model-a", "sync-model-b"]}
    assert [(f.plugin, f.hook, f.reason) for f in registry.faults] == [
        ("hang", "register_models", "timed out")
    ]


def test_async_hang_times_out_in_call_blocking(release: threading.Event) -> None:
    registry = _registry(("hang", AsyncHangPlugin(release)), ("sync", SyncPlugin()))

    started = time.monotonic()
    collected = registry.collect("register_models")
    elapsed = time.monotonic() - started

    assert TIMEOUT * 0.9 <= elapsed < TIMEOUT + SLACK
    assert collected == {"sync": ["sync-model-a", "sync-model-b"]}
    assert [(f.plugin, f.reason) for f in registry.faults] == [("hang", "timed out")]


def _hook_threads() -> set[threading.Thread]:
    return {t for t in threading.enumerate() if t.name == "synergyhub-hook"}


@asyncio_test
async def test_sync_hang_times_out_in_call_without_blocking_the_loop(
    release: threading.Event, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = _registry(("hang", SyncHangPlugin(release)), ("sync", SyncPlugin()))
    thread_errors: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: thread_errors.append(args.exc_value))
    before = _hook_threads()
    ticks = 0

    async def ticker() -> None:
        nonlocal ticks
        while True:
            await asyncio.sleep(0.02)
            ticks += 1

    task = asyncio.create_task(ticker())
    started = time.monotonic()
    try:
        results = await registry.call("account_provisioned", account="acc-3", services=None)
    finally:
        task.cancel()
    elapsed = time.monotonic() - started

    assert TIMEOUT * 0.9 <= elapsed < TIMEOUT + SLACK
    assert _by_plugin(results) == {"sync": "sync saw acc-3"}
    assert [(f.plugin, f.hook, f.reason) for f in registry.faults] == [
        ("hang", "account_provisioned", "timed out")
    ]
    # The sync hang ran in a daemon thread: the event loop kept turning meanwhile.
    assert ticks >= 5
    # Let the hung thread finish here, so whatever it does on its way out stays
    # in this test (see test_timed_out_sync_hook_thread_ends_cleanly).
    release.set()
    for thread in _hook_threads() - before:
        thread.join(5)


@asyncio_test
async def test_async_hang_times_out_in_call(release: threading.Event) -> None:
    registry = _registry(("hang", AsyncHangPlugin(release)), ("sync", SyncPlugin()))

    started = time.monotonic()
    results = await registry.call("account_provisioned", account="acc-4", services=None)
    elapsed = time.monotonic() - started

    assert TIMEOUT * 0.9 <= elapsed < TIMEOUT + SLACK
    assert _by_plugin(results) == {"sync": "sync saw acc-4"}
    assert [(f.plugin, f.hook, f.reason) for f in registry.faults] == [
        ("hang", "account_provisioned", "timed out")
    ]


# -- per-Solution selection -------------------------------------------------------------


@asyncio_test
async def test_only_limits_feature_plugins_but_always_includes_kernel_plugins() -> None:
    registry = _registry(
        ("sync", SyncPlugin()),
        ("async", AsyncPlugin()),
        kernel=(("feature", KernelFeature()),),
    )
    kernel_name = KERNEL_PREFIX + "feature"

    only_sync = await registry.call("account_provisioned", only=["sync"], account="a", services=1)
    nothing_enabled = await registry.call("account_provisioned", only=[], account="b", services=1)
    everyone = await registry.call("account_provisioned", account="c", services=1)
    blocking = registry.call_blocking("account_provisioned", only=["async"], account="d",
                                      services=1)

    assert _by_plugin(only_sync) == {kernel_name: "kernel saw a", "sync": "sync saw a"}
    assert _by_plugin(nothing_enabled) == {kernel_name: "kernel saw b"}
    assert set(_by_plugin(everyone)) == {kernel_name, "sync", "async"}
    assert _by_plugin(blocking) == {kernel_name: "kernel saw d", "async": "async saw d with 1"}


def test_kernel_plugins_are_named_and_flagged_as_kernel() -> None:
    registry = _registry(("sync", SyncPlugin()), kernel=(("feature", KernelFeature()),))

    info = registry.infos[KERNEL_PREFIX + "feature"]
    assert info.kernel is True
    assert info.source == "kernel"
    assert registry.is_kernel(KERNEL_PREFIX + "feature")
    assert registry.feature_plugins() == ["sync"]


# -- manifests ----------------------------------------------------------------------------


def test_plugin_without_manifest_gets_version_zero() -> None:
    registry = _registry(("bare", ManifestlessPlugin()), ("sync", SyncPlugin()))

    bare = registry.infos["bare"].manifest
    assert (bare.name, bare.version, bare.title) == ("bare", "0", "bare")
    assert registry.infos["sync"].manifest.version == "1.0.0"
    assert registry.feature_plugins() == ["bare", "sync"]


def test_raising_manifest_falls_back_to_version_zero_and_is_recorded() -> None:
    class BadManifest:
        @hookimpl
        def plugin_manifest(self) -> PluginManifest:
            raise RuntimeError("no manifest today")

    registry = _registry(("bad", BadManifest()), ("sync", SyncPlugin()))

    assert registry.infos["bad"].manifest.version == "0"
    assert registry.infos["sync"].manifest.version == "1.0.0"
    assert [(f.plugin, f.hook) for f in registry.faults] == [("bad", "plugin_manifest")]


def test_manifest_of_the_wrong_type_falls_back_to_version_zero() -> None:
    class WrongManifest:
        @hookimpl
        def plugin_manifest(self) -> dict[str, str]:
            return {"name": "wrong", "version": "5"}

    registry = _registry(("wrong", WrongManifest()))

    assert registry.infos["wrong"].manifest.version == "0"


def test_implementation_of_an_unknown_hook_is_refused_at_build_time() -> None:
    class Typo:
        @hookimpl
        def register_route(self) -> None:  # no such hook: register_routes
            return None

    with pytest.raises(pluggy.PluginValidationError):
        _registry(("typo", Typo()))


# -- regressions of kernel defects found while writing these tests ------------


def test_hooks_are_called_in_registration_order() -> None:
    registry = _registry(("sync", SyncPlugin()), ("async", AsyncPlugin()))

    results = registry.call_blocking("register_models")

    assert [r.plugin for r in results] == ["sync", "async"]


@asyncio_test
async def test_timed_out_sync_hook_thread_ends_cleanly(
    release: threading.Event, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry = _registry(("hang", SyncHangPlugin(release)))
    thread_errors: list[BaseException | None] = []
    monkeypatch.setattr(threading, "excepthook", lambda args: thread_errors.append(args.exc_value))
    before = _hook_threads()

    await registry.call("account_provisioned", account="acc-5", services=None)
    release.set()
    for thread in _hook_threads() - before:
        thread.join(5)

    assert [(f.plugin, f.reason) for f in registry.faults] == [("hang", "timed out")]
    assert thread_errors == []
