"""Plugin machinery: discovery, manifests, and one fault-isolating hook caller.

pluggy calls every implementation of a hook in one go, so one plugin raising
would abort the call for all. The kernel therefore calls each implementation
itself: keyword arguments filtered to what the implementation declares, the
result awaited if it is awaitable, the whole bounded by a timeout. A plugin that
raises or hangs is skipped and its fault recorded (logged, shown on /readyz);
the kernel and the other plugins carry on.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import functools
import importlib.metadata
import inspect
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable
from dataclasses import dataclass, field
from typing import Any

import pluggy

from core.hooks import PROJECT_NAME, PluginManifest, hookspecs

ENTRY_POINT_GROUP = "synergyhub.plugins"
KERNEL_PREFIX = "kernel."

log = logging.getLogger("synergyhub.plugins")


@dataclass(frozen=True)
class HookFault:
    """A hook call that was skipped because the plugin raised or hung."""

    plugin: str
    hook: str
    reason: str
    at: float = field(default_factory=time.time)

    def as_dict(self) -> dict[str, Any]:
        return {"plugin": self.plugin, "hook": self.hook, "reason": self.reason, "at": self.at}


@dataclass(frozen=True)
class HookResult:
    plugin: str
    value: Any


@dataclass
class PluginInfo:
    """What ``synergyhub plugins list`` and /readyz say about a plugin."""

    name: str
    manifest: PluginManifest
    source: str
    kernel: bool = False


def _run_in_daemon_thread(func: Callable[[], Any]) -> concurrent.futures.Future[Any]:
    """Run ``func`` where a hang cannot block the event loop or interpreter exit.

    A daemon thread (not the default executor) so that a plugin that never
    returns does not keep the process alive at shutdown. If ``func`` returns a
    coroutine, it runs to completion on a private loop in that thread.
    """
    future: concurrent.futures.Future[Any] = concurrent.futures.Future()

    def target() -> None:
        if not future.set_running_or_notify_cancel():
            return
        try:
            value = func()
            if inspect.isawaitable(value):
                value = asyncio.run(_await(value))
        except BaseException as exc:
            future.set_exception(exc)
        else:
            future.set_result(value)

    threading.Thread(target=target, name="synergyhub-hook", daemon=True).start()
    return future


async def _await(value: Any) -> Any:
    return await value


def _describe(exc: BaseException) -> str:
    """Fault text for operators; plugin exceptions are not sent to clients."""
    if isinstance(exc, TimeoutError):
        return "timed out"
    return f"{type(exc).__name__}: {exc}"[:500]


class PluginRegistry:
    """The plugins of this process and the only way the kernel calls their hooks."""

    def __init__(self, manager: pluggy.PluginManager, *, timeout: float) -> None:
        self.manager = manager
        self.timeout = timeout
        self.faults: list[HookFault] = []
        self.infos: dict[str, PluginInfo] = {}

    # -- discovery ---------------------------------------------------------

    def feature_plugins(self) -> list[str]:
        """Plugins a Solution can enable (everything but the kernel's own)."""
        return sorted(name for name, info in self.infos.items() if not info.kernel)

    def is_kernel(self, name: str) -> bool:
        return name.startswith(KERNEL_PREFIX)

    def faults_by_plugin(self) -> dict[str, list[dict[str, Any]]]:
        grouped: dict[str, list[dict[str, Any]]] = {}
        for fault in self.faults[-200:]:
            grouped.setdefault(fault.plugin, []).append(fault.as_dict())
        return grouped

    # -- calling -----------------------------------------------------------

    def _implementations(
        self, hook_name: str, only: Collection[str] | None
    ) -> list[tuple[str, Callable[..., Any], tuple[str, ...]]]:
        caller = getattr(self.manager.hook, hook_name)
        selected = []
        # get_hookimpls() lists in registration order (pluggy itself calls LIFO);
        # the kernel calls in registration order so kernel plugins come first.
        for impl in caller.get_hookimpls():
            name = self.manager.get_name(impl.plugin) or repr(impl.plugin)
            if only is not None and not self.is_kernel(name) and name not in only:
                continue
            selected.append((name, impl.function, tuple(impl.argnames)))
        return selected

    def record_fault(self, plugin: str, hook: str, exc: BaseException) -> None:
        fault = HookFault(plugin=plugin, hook=hook, reason=_describe(exc))
        self.faults.append(fault)
        del self.faults[:-1000]
        log.error(
            "plugin hook skipped",
            extra={"plugin": plugin, "hook": hook, "reason": fault.reason},
        )

    async def call(
        self, hook_name: str, *, only: Collection[str] | None = None, **kwargs: Any
    ) -> list[HookResult]:
        """Call a hook on every (or only the enabled) plugin, isolating faults.

        ``only`` limits feature plugins to those names (a Solution's enabled
        set); the kernel's own plugins are always called. ``None`` results are
        dropped.
        """
        results: list[HookResult] = []
        for name, function, argnames in self._implementations(hook_name, only):
            args = {arg: kwargs[arg] for arg in argnames}
            try:
                if inspect.iscoroutinefunction(function):
                    value = await asyncio.wait_for(function(**args), self.timeout)
                else:
                    future = _run_in_daemon_thread(functools.partial(function, **args))
                    value = await asyncio.wait_for(asyncio.wrap_future(future), self.timeout)
            except Exception as exc:
                self.record_fault(name, hook_name, exc)
                continue
            if value is not None:
                results.append(HookResult(name, value))
        return results

    def call_blocking(
        self, hook_name: str, *, only: Collection[str] | None = None, **kwargs: Any
    ) -> list[HookResult]:
        """Same as :meth:`call`, for start-up code that runs outside an event loop."""
        results: list[HookResult] = []
        for name, function, argnames in self._implementations(hook_name, only):
            args = {arg: kwargs[arg] for arg in argnames}
            future = _run_in_daemon_thread(functools.partial(function, **args))
            try:
                value = future.result(timeout=self.timeout)
            except concurrent.futures.TimeoutError as exc:
                self.record_fault(name, hook_name, TimeoutError(str(exc)))
                continue
            except Exception as exc:
                self.record_fault(name, hook_name, exc)
                continue
            if value is not None:
                results.append(HookResult(name, value))
        return results

    def collect(self, hook_name: str, **kwargs: Any) -> dict[str, list[Any]]:
        """Registration hooks: flatten each plugin's result to a list, by plugin."""
        collected: dict[str, list[Any]] = {}
        for result in self.call_blocking(hook_name, **kwargs):
            value = result.value
            items = list(value) if isinstance(value, list | tuple) else [value]
            collected.setdefault(result.plugin, []).extend(items)
        return collected


def build_plugin_registry(
    *,
    timeout: float,
    load_entrypoints: bool = True,
    kernel_plugins: Iterable[tuple[str, object]] = (),
    extra_plugins: Iterable[tuple[str, object]] = (),
) -> PluginRegistry:
    """Build a fresh plugin manager (never a module global) and read manifests.

    ``kernel_plugins`` are the kernel's own features registered through the
    same hooks; ``extra_plugins`` are objects registered directly (tests and
    embedding applications); everything else comes from the entry-point group
    ``synergyhub.plugins``.
    """
    manager = pluggy.PluginManager(PROJECT_NAME)
    manager.add_hookspecs(hookspecs)
    sources: dict[str, str] = {}
    for name, plugin in kernel_plugins:
        manager.register(plugin, name=KERNEL_PREFIX + name)
        sources[KERNEL_PREFIX + name] = "kernel"
    if load_entrypoints:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            if manager.has_plugin(ep.name):
                continue
            try:
                plugin = ep.load()
            except Exception as exc:
                log.error("plugin failed to import", extra={"plugin": ep.name, "error": str(exc)})
                continue
            manager.register(plugin, name=ep.name)
            dist = ep.dist
            sources[ep.name] = (
                f"entry point ({dist.metadata['Name']} {dist.version})" if dist else "entry point"
            )
    for name, plugin in extra_plugins:
        manager.register(plugin, name=name)
        sources[name] = "registered in code"
    manager.check_pending()

    registry = PluginRegistry(manager, timeout=timeout)
    manifests = registry.collect("plugin_manifest")
    for name, plugin in manager.list_name_plugin():
        if plugin is None:
            continue
        declared = manifests.get(name)
        manifest = declared[0] if declared else None
        if not isinstance(manifest, PluginManifest):
            manifest = PluginManifest(name=name, version="0", title=name)
        registry.infos[name] = PluginInfo(
            name=name,
            manifest=manifest,
            source=sources.get(name, "unknown"),
            kernel=name.startswith(KERNEL_PREFIX),
        )
    return registry
