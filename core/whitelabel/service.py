"""White-label use cases: branding, landing pages, previews, domains, public resolution.

Functions take the account context (principal, Solution, Account) as an
argument and never read the Quart request; the routes in ``routes.py`` and
``public.py`` translate HTTP to these calls. All database access goes through
:class:`~core.whitelabel.store.WhiteLabelStore`.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from itsdangerous import BadSignature, URLSafeSerializer
from pydantic import BaseModel, ValidationError

from core.hooks import ThemeAssets
from core.kernel.cache import MISSING, TTLCache
from core.kernel.errors import (
    Conflict,
    Forbidden,
    NotFound,
    ServiceUnavailable,
    Unprocessable,
    validation_error_list,
)
from core.storage.port import StorageService
from core.tenancy.cascade import Layer, check_write, platform_defaults, resolve
from core.tenancy.models import AccountContext, Role, Solution, Status, utcnow
from core.tenancy.service import require_rank
from core.whitelabel.assets import MEDIA_PREFIX, BrandingAssets, MediaFile, asset_id_of
from core.whitelabel.branding import (
    COLOR_KEYS,
    Appearance,
    BrandingSettings,
    failure_as_dict,
    resolve_appearance,
)
from core.whitelabel.cache import LRU, RenderedPage
from core.whitelabel.domains import (
    DnsLookupError,
    DnsPythonResolver,
    TxtResolver,
    challenge_name,
    challenge_value,
    new_token,
    normalize_domain,
    normalize_host,
)
from core.whitelabel.render import LandingRenderer
from core.whitelabel.sections import MAX_SECTIONS, SectionRegistry, SectionType
from core.whitelabel.store import NAMESPACE, DomainTaken, WhiteLabelStore
from core.whitelabel.themes import DEFAULT_THEMES_ROOT, FONT_ALLOW_LIST, ThemePack, load_theme_packs

if TYPE_CHECKING:
    from core.kernel.plugins import PluginRegistry
    from core.kernel.services import Services
    from core.tenancy.audit import AuditLog
    from core.tenancy.models import Account

__all__ = ["HostMatch", "Tenant", "WhiteLabelService"]

log = logging.getLogger("synergyhub.whitelabel")

LOOKUP_TTL_SECONDS = 2.0
#: Branding keys that may name an uploaded image (``/media/<id>``).
MEDIA_KEYS = ("logo_url", "favicon_url")
MAX_DOMAINS_PER_ACCOUNT = 10
PREVIEW_SALT = "synergyhub.landing-preview.v1"
_SLUG = re.compile(r"^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$")
_PLUGIN_NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")


@dataclass(frozen=True)
class Tenant:
    solution: Solution
    account: Account

    @property
    def key(self) -> str:
        return self.account.id


@dataclass(frozen=True)
class HostMatch:
    """What a request's ``Host`` names."""

    kind: Literal["platform", "solution", "tenant", "unknown"]
    solution: Solution | None = None
    tenant: Tenant | None = None


UNKNOWN_HOST = HostMatch("unknown")
PLATFORM_HOST = HostMatch("platform")


@dataclass
class Extensions:
    """Section types, templates and static files contributed by plugins."""

    sections: dict[str, list[SectionType]] = field(default_factory=dict)
    template_dirs: dict[str, Path] = field(default_factory=dict)
    static_dirs: dict[str, Path] = field(default_factory=dict)


@dataclass(frozen=True)
class PreviewTarget:
    account_id: str
    expired: bool


def _active(tenant: Tenant) -> bool:
    return tenant.account.status is Status.ACTIVE and tenant.solution.status is Status.ACTIVE


def _asset_dirs(assets: ThemeAssets) -> tuple[Path | None, Path | None]:
    """A plugin's static and templates directories, checked (absolute, existing)."""
    found: list[Path | None] = []
    for name, directory in (("static_dir", assets.static_dir),
                            ("templates_dir", assets.templates_dir)):
        if directory is None:
            found.append(None)
            continue
        path = Path(directory)
        if not path.is_absolute() or not path.is_dir():
            raise ValueError(f"{name} {path} is not an absolute directory")
        found.append(path.resolve())
    return found[0], found[1]


def _iso(value: Any) -> Any:
    return value.isoformat() if hasattr(value, "isoformat") else value


class WhiteLabelService:
    """App-scoped; one per process, filled into ``services.whitelabel`` at start-up."""

    def __init__(
        self,
        *,
        store: WhiteLabelStore,
        assets: BrandingAssets,
        audit: AuditLog,
        plugins: PluginRegistry,
        themes: Mapping[str, ThemePack],
        secret_key: str,
        platform_hosts: Iterable[str],
        resolver: TxtResolver | None = None,
        lookup_ttl: float = LOOKUP_TTL_SECONDS,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if not themes:
            raise ValueError("no theme packs are installed")
        self.store = store
        self.assets = assets
        self.audit = audit
        self.plugins = plugins
        self.themes = dict(themes)
        self.default_theme = "clinical" if "clinical" in self.themes else sorted(self.themes)[0]
        self.platform_hosts = frozenset(normalize_host(h) for h in platform_hosts) - {""}
        self.resolver: TxtResolver = resolver if resolver is not None else DnsPythonResolver()
        self.clock = clock
        self._previews = URLSafeSerializer(secret_key, salt=PREVIEW_SALT)
        self._hosts: TTLCache[str, HostMatch] = TTLCache(lookup_ttl)
        self._slugs: TTLCache[tuple[str, str], Tenant | None] = TTLCache(lookup_ttl)
        self._pointers: TTLCache[str, int | None] = TTLCache(lookup_ttl)
        self._settings: TTLCache[str, tuple[bytes, str]] = TTLCache(lookup_ttl)
        self._tenants: TTLCache[str, Tenant | None] = TTLCache(lookup_ttl)
        # Branding images: bounded, re-checked after the TTL (a deleted image goes away).
        self._media: TTLCache[str, MediaFile] = TTLCache(lookup_ttl, max_items=64)
        self._pages: LRU[tuple[str, int, frozenset[str]], RenderedPage] = LRU(2048)
        self._renderers: dict[frozenset[str], LandingRenderer] = {}
        self._extensions: Extensions | None = None
        self._extensions_lock = asyncio.Lock()

    @classmethod
    async def open(cls, services: Services) -> WhiteLabelService:
        store = WhiteLabelStore(services.db, services.tenancy.cascade)
        await store.create_indexes()
        assets = BrandingAssets(services.db, services.tenancy.audit,
                                services.tenancy.repositories)
        settings = services.settings
        resolver = services.extras.get("whitelabel.resolver")
        service = cls(
            store=store,
            assets=assets,
            audit=services.tenancy.audit,
            plugins=services.plugins,
            themes=load_theme_packs(settings.themes_dir or DEFAULT_THEMES_ROOT),
            secret_key=settings.secret_key.get_secret_value(),
            platform_hosts=settings.platform_hosts,
            resolver=resolver,
        )
        services.tenancy.audit.observers.append(service.on_activity)
        services.tenancy.settings_checks[NAMESPACE] = service.check_images
        return service

    async def check_images(self, ctx: AccountContext | None, values: Mapping[str, Any]) -> None:
        """Branding may name an uploaded image only of the account it brands (422).

        Every writer of the ``branding`` namespace calls this (``put_branding``,
        and the generic settings API through ``tenancy.settings_checks``); a
        Solution-level write passes no context, and there no uploaded image may
        be named: images belong to one account and are served only on its hosts.
        """
        for key in MEDIA_KEYS:
            value = str(values.get(key) or "")
            if not value.startswith(MEDIA_PREFIX):
                continue
            asset_id = asset_id_of(value)
            if ctx is None:
                detail = (f"{key}: uploaded images belong to one account; at this level use "
                          "an https URL or a /static/ path.")
            elif asset_id is None or not await self.assets.ready(ctx, asset_id):
                detail = (f"{key} names no confirmed branding image of this account; upload "
                          "one with POST .../branding/images and use the url it answers.")
            else:
                continue
            raise Unprocessable(detail, type_slug="unknown-branding-image",
                                errors=[{"field": key, "message": detail}])

    async def on_activity(self, event: dict[str, Any]) -> None:
        """Branding written through the generic settings API (a Solution's defaults and
        locks, say): this instance forgets the tenant settings it built, as ``put_branding``
        does for its account."""
        if event.get("action") != "settings.changed" or event.get("target") != "branding":
            return
        if event.get("account_id"):
            self._settings.pop(str(event["account_id"]))
        else:
            self._settings.clear()

    def set_lookup_ttl(self, seconds: float) -> None:
        """How stale a look-up or the published pointer may be on this instance."""
        for cache in (self._hosts, self._slugs, self._pointers, self._settings, self._tenants,
                      self._media):
            cache.ttl = seconds
            cache.clear()

    # -- plugin extensions (collected on first use, see docs/decisions.md) -------

    async def extensions(self) -> Extensions:
        if self._extensions is not None:
            return self._extensions
        async with self._extensions_lock:
            if self._extensions is None:
                self._extensions = await self._collect_extensions()
        return self._extensions

    async def _collect_extensions(self) -> Extensions:
        ext = Extensions()
        probe = SectionRegistry()
        for result in await self.plugins.call("register_theme_assets"):
            plugin, items = result.plugin, result.value
            for item in items if isinstance(items, list | tuple) else [items]:
                try:
                    if not isinstance(item, ThemeAssets):
                        raise TypeError("register_theme_assets must return ThemeAssets")
                    if not _PLUGIN_NAME.fullmatch(plugin):
                        raise ValueError(f"plugin name {plugin!r} cannot name a static path")
                    static_dir, templates_dir = _asset_dirs(item)
                    if static_dir is not None:
                        ext.static_dirs[plugin] = static_dir
                    if templates_dir is not None:
                        ext.template_dirs[plugin] = templates_dir
                except (TypeError, ValueError, OSError) as exc:
                    self.plugins.record_fault(plugin, "register_theme_assets", exc)
        for result in await self.plugins.call("register_landing_sections"):
            plugin, items = result.plugin, result.value
            for item in items if isinstance(items, list | tuple) else [items]:
                try:
                    if not isinstance(item, SectionType):
                        raise TypeError("register_landing_sections must return SectionType items")
                    spec = probe.register(item, plugin=plugin)
                except (TypeError, ValueError) as exc:
                    self.plugins.record_fault(plugin, "register_landing_sections", exc)
                    continue
                ext.sections.setdefault(plugin, []).append(spec)
        return ext

    async def renderer_for(self, enabled: Iterable[str]) -> LandingRenderer:
        """Built-in sections plus those of the plugins the Solution enables."""
        ext = await self.extensions()
        key = frozenset(enabled) & (frozenset(ext.sections) | frozenset(ext.template_dirs))
        renderer = self._renderers.get(key)
        if renderer is None:
            registry = SectionRegistry()
            for plugin in sorted(key):
                for spec in ext.sections.get(plugin, []):
                    if spec.name not in registry:
                        registry.register(spec, plugin=plugin)
            dirs = {p: d for p, d in ext.template_dirs.items() if p in key}
            renderer = LandingRenderer(self.themes, registry, plugin_template_dirs=dirs)
            self._renderers[key] = renderer
        return renderer

    def theme_for(self, solution: Solution) -> ThemePack:
        return self.themes.get(solution.theme) or self.themes[self.default_theme]

    def static_dir(self, kind: Literal["themes", "plugins"], name: str) -> Path | None:
        if kind == "themes":
            pack = self.themes.get(name)
            return pack.static_dir if pack else None
        ext = self._extensions
        return ext.static_dirs.get(name) if ext else None

    # -- branding --------------------------------------------------------------

    async def _branding_layers(self, solution_id: str, account_id: str) -> list[Layer]:
        platform = Layer("platform", "platform", platform_defaults(BrandingSettings))
        return [platform, *await self.store.branding_layers(solution_id, account_id)]

    async def appearance(self, solution: Solution, account: Account) -> Appearance:
        layers = await self._branding_layers(solution.id, account.id)
        values = {key: r.value for key, r in resolve(layers).items()}
        return resolve_appearance(self.theme_for(solution), values, account_name=account.name)

    async def branding_view(self, ctx: AccountContext) -> dict[str, Any]:
        layers = await self._branding_layers(ctx.solution.id, ctx.account.id)
        resolved = resolve(layers)
        values = {key: r.value for key, r in resolved.items()}
        appearance = resolve_appearance(
            self.theme_for(ctx.solution), values, account_name=ctx.account.name
        )
        own = next((dict(layer.values) for layer in layers if layer.level == "account"), {})
        locks = next((sorted(layer.locks) for layer in layers if layer.level == "solution"), [])
        failures = [failure_as_dict(f, appearance.tokens) for f in appearance.contrast_failures]
        return {
            "values": {key: r.as_dict() for key, r in sorted(resolved.items())},
            "overrides": own,
            "locked": locks,
            "effective": appearance.branding.model_dump(mode="json"),
            "frame_ancestors": list(appearance.frame_ancestors),
            "theme": {"name": appearance.theme.name, "title": appearance.theme.title},
            "tokens": appearance.tokens.model_dump(mode="json"),
            "contrast": {"ok": not failures, "failures": failures},
            "fonts": list(FONT_ALLOW_LIST),
        }

    async def put_branding(self, ctx: AccountContext, data: BrandingSettings) -> dict[str, Any]:
        """Replace the account's own branding (keys left out inherit from above)."""
        require_rank(ctx.principal, ctx, Role.ACCOUNT_ADMIN)
        values = {
            key: value
            for key, value in data.model_dump(mode="json", exclude_unset=True).items()
            if value is not None
        }
        await self.check_images(ctx, values)
        layers = await self.store.branding_layers(ctx.solution.id, ctx.account.id)
        locks = next((layer.locks for layer in layers if layer.level == "solution"), frozenset())
        try:
            check_write("account", values, locks)
        except Forbidden:
            await self.audit.record(
                "branding.locked_write_refused", actor=ctx.principal, account_id=ctx.account.id,
                solution_id=ctx.solution.id, target="branding",
                details={"keys": sorted(set(values) & locks)},
            )
            raise
        await self.store.replace_account_branding(ctx.account.id, values)
        await self.audit.record(
            "branding.changed", actor=ctx.principal, account_id=ctx.account.id,
            solution_id=ctx.solution.id, target="branding", details={"keys": sorted(values)},
        )
        self._settings.pop(ctx.account.id)
        return await self.branding_view(ctx)

    # -- landing page: draft ------------------------------------------------------

    async def _validate_sections(self, solution: Solution, sections: list[Any]
                                 ) -> list[dict[str, Any]]:
        if len(sections) > MAX_SECTIONS:
            raise Unprocessable(f"A landing page has at most {MAX_SECTIONS} sections.")
        renderer = await self.renderer_for(solution.enabled_plugins)
        try:
            models: list[BaseModel] = renderer.registry.validate_page(sections)
        except ValidationError as exc:
            raise Unprocessable(
                "The landing page has invalid sections.", type_slug="invalid-sections",
                errors=validation_error_list(exc),
                section_types=renderer.registry.types(),
            ) from None
        return [model.model_dump(mode="json") for model in models]

    async def draft_view(self, ctx: AccountContext) -> dict[str, Any]:
        page = await self.store.page(ctx.account.id) or {}
        draft = page.get("draft") or {}
        renderer = await self.renderer_for(ctx.solution.enabled_plugins)
        return {
            "sections": draft.get("sections", []),
            "revision": draft.get("revision", 0),
            "updated_at": _iso(draft.get("updated_at")),
            "updated_by": draft.get("updated_by"),
            "published_version": page.get("published_version"),
            "section_types": renderer.registry.types(),
        }

    async def save_draft(self, ctx: AccountContext, sections: list[Any],
                         base_revision: int | None) -> dict[str, Any]:
        require_rank(ctx.principal, ctx, Role.ACCOUNT_ADMIN)
        clean = await self._validate_sections(ctx.solution, sections)
        revision = await self.store.save_draft(
            ctx.account.id, ctx.solution.id, clean, actor=ctx.principal.uid, at=utcnow(),
            base_revision=base_revision,
        )
        if revision is None:
            raise Conflict(
                "The draft changed since the revision you edited; reload it and apply your "
                "changes again.", type_slug="stale-draft",
            )
        await self.audit.record(
            "landing_page.draft_saved", actor=ctx.principal, account_id=ctx.account.id,
            solution_id=ctx.solution.id, target="landing_page",
            details={"revision": revision, "sections": len(clean)},
        )
        return await self.draft_view(ctx)

    # -- landing page: publish, versions, rollback ----------------------------------

    def _contrast_problem(self, appearance: Appearance) -> Unprocessable:
        failures = [failure_as_dict(f, appearance.tokens) for f in appearance.contrast_failures]
        listing = "; ".join(
            f"{f['pair']} ({f['foreground_color']} on {f['background_color']}) is "
            f"{f['ratio']:.2f}:1" for f in failures
        )
        return Unprocessable(
            f"Publishing refused: text contrast below WCAG AA 4.5:1 — {listing}. "
            "Change the brand colours and publish again.",
            type_slug="contrast-too-low", failures=failures,
        )

    async def publish(self, ctx: AccountContext) -> dict[str, Any]:
        require_rank(ctx.principal, ctx, Role.ACCOUNT_ADMIN)
        page = await self.store.page(ctx.account.id) or {}
        draft = page.get("draft")
        if not draft:
            raise Conflict("There is no draft to publish; save one first.", type_slug="no-draft")
        if ctx.solution.theme not in self.themes:
            raise Unprocessable(
                f"The Solution's theme {ctx.solution.theme!r} is not installed; a Solution "
                f"admin must choose one of {', '.join(sorted(self.themes))}.",
                type_slug="unknown-theme",
            )
        sections = await self._validate_sections(ctx.solution, draft.get("sections", []))
        appearance = await self.appearance(ctx.solution, ctx.account)
        if appearance.contrast_failures:
            problem = self._contrast_problem(appearance)
            await self.audit.record(
                "landing_page.publish_refused", actor=ctx.principal, account_id=ctx.account.id,
                solution_id=ctx.solution.id, target="landing_page",
                details={"reason": "contrast", "pairs": [f["pair"] for f in
                                                         problem.extensions["failures"]]},
            )
            raise problem
        snapshot = {
            "sections": sections,
            "theme": appearance.theme.name,
            "tokens": appearance.tokens.model_dump(mode="json"),
            "branding": appearance.branding.model_dump(mode="json"),
            "frame_ancestors": list(appearance.frame_ancestors),
            "draft_revision": draft.get("revision"),
            "rolled_back_from": None,
        }
        # Render once before storing: a page that cannot render is never published.
        tenant = Tenant(ctx.solution, ctx.account)
        await self._render(tenant, snapshot, version=0)
        version = await self._store_version(ctx, snapshot)
        await self.audit.record(
            "landing_page.published", actor=ctx.principal, account_id=ctx.account.id,
            solution_id=ctx.solution.id, target="landing_page",
            details={"version": version, "draft_revision": draft.get("revision")},
        )
        return await self.version_view(ctx, version)

    async def _store_version(self, ctx: AccountContext, snapshot: dict[str, Any]) -> int:
        now = utcnow()
        version = await self.store.next_version(ctx.account.id, ctx.solution.id)
        await self.store.insert_version(ctx.account.id, version, {
            **snapshot, "solution_id": ctx.solution.id, "published_at": now,
            "published_by": ctx.principal.uid,
        })
        await self.store.set_published(ctx.account.id, version, now)
        self._pointers.put(ctx.account.id, version)
        self._settings.pop(ctx.account.id)
        return version

    async def versions(self, ctx: AccountContext, *, before: int | None, limit: int
                       ) -> dict[str, Any]:
        current = await self.store.published_version(ctx.account.id)
        docs = await self.store.list_versions(ctx.account.id, before=before, limit=limit + 1)
        items = [
            {"version": d["version"], "published_at": _iso(d.get("published_at")),
             "published_by": d.get("published_by"), "theme": d.get("theme"),
             "rolled_back_from": d.get("rolled_back_from"), "current": d["version"] == current}
            for d in docs[:limit]
        ]
        next_cursor = str(items[-1]["version"]) if len(docs) > limit else None
        return {"items": items, "next_cursor": next_cursor}

    async def version_view(self, ctx: AccountContext, version: int) -> dict[str, Any]:
        doc = await self.store.version(ctx.account.id, version)
        if doc is None:
            raise NotFound(f"There is no published version {version}.")
        current = await self.store.published_version(ctx.account.id)
        body = {k: v for k, v in doc.items() if k not in ("_id", "account_id", "solution_id")}
        body["published_at"] = _iso(body.get("published_at"))
        body["current"] = version == current
        return body

    async def rollback(self, ctx: AccountContext, version: int) -> dict[str, Any]:
        """Publish an exact copy of an earlier version as a new version."""
        require_rank(ctx.principal, ctx, Role.ACCOUNT_ADMIN)
        doc = await self.store.version(ctx.account.id, version)
        if doc is None:
            raise NotFound(f"There is no published version {version}.")
        current = await self.store.published_version(ctx.account.id)
        if current == version:
            raise Conflict(f"Version {version} is already the published version.",
                           type_slug="already-published")
        snapshot = {key: doc[key] for key in
                    ("sections", "theme", "tokens", "branding", "frame_ancestors",
                     "draft_revision")}
        snapshot["rolled_back_from"] = version
        new_version = await self._store_version(ctx, snapshot)
        await self.audit.record(
            "landing_page.rolled_back", actor=ctx.principal, account_id=ctx.account.id,
            solution_id=ctx.solution.id, target="landing_page",
            details={"version": new_version, "restored": version, "replaced": current},
        )
        return await self.version_view(ctx, new_version)

    # -- previews -----------------------------------------------------------------

    async def preview_link(self, ctx: AccountContext, expires_in: int) -> dict[str, Any]:
        require_rank(ctx.principal, ctx, Role.ACCOUNT_ADMIN)
        page = await self.store.page(ctx.account.id) or {}
        if not page.get("draft"):
            raise Conflict("There is no draft to preview; save one first.", type_slug="no-draft")
        expires_at = int(self.clock()) + expires_in
        token = self._previews.dumps({"a": ctx.account.id, "x": expires_at})
        await self.audit.record(
            "landing_page.preview_link_created", actor=ctx.principal,
            account_id=ctx.account.id, solution_id=ctx.solution.id, target="landing_page",
            details={"expires_at": expires_at},
        )
        return {"url": f"/preview/{token}", "expires_at": expires_at,
                "expires_in": expires_in}

    def preview_target(self, token: str) -> PreviewTarget | None:
        if len(token) > 1000:
            return None
        try:
            payload = self._previews.loads(token)
        except BadSignature:
            return None
        if not (isinstance(payload, dict) and isinstance(payload.get("a"), str)
                and isinstance(payload.get("x"), int)):
            return None
        return PreviewTarget(payload["a"], expired=payload["x"] <= self.clock())

    async def preview_page(self, account_id: str) -> RenderedPage | None:
        """The current draft with the current branding, rendered fresh (never cached)."""
        account = await self.store.account_by_id(account_id)
        solution = await self.store.solution_by_id(account.solution_id) if account else None
        if account is None or solution is None:
            return None
        tenant = Tenant(solution, account)
        if not _active(tenant):
            return None
        page = await self.store.page(account_id) or {}
        draft = page.get("draft")
        if not draft:
            return None
        appearance = await self.appearance(solution, account)
        snapshot = {
            "sections": draft.get("sections", []),
            "theme": appearance.theme.name,
            "tokens": appearance.tokens.model_dump(mode="json"),
            "branding": appearance.branding.model_dump(mode="json"),
            "frame_ancestors": [],
        }
        return await self._render(tenant, snapshot, version=0)

    # -- custom domains --------------------------------------------------------------

    def _domain_view(self, doc: dict[str, Any]) -> dict[str, Any]:
        return {
            "domain": doc["domain"],
            "status": doc["status"],
            "verification": {"type": "TXT", "name": challenge_name(doc["domain"]),
                             "value": challenge_value(doc["token"])},
            "created_at": _iso(doc.get("created_at")),
            "verified_at": _iso(doc.get("verified_at")),
            "last_checked_at": _iso(doc.get("last_checked_at")),
            "last_error": doc.get("last_error"),
        }

    async def _normalized_domain(self, raw: str) -> str:
        reserved = [*self.platform_hosts, *await self.store.solution_domains()]
        try:
            return normalize_domain(raw, reserved=reserved)
        except ValueError as exc:
            raise Unprocessable(f"Invalid domain: {exc}.", type_slug="invalid-domain") from None

    async def add_domain(self, ctx: AccountContext, raw: str) -> dict[str, Any]:
        require_rank(ctx.principal, ctx, Role.ACCOUNT_ADMIN)
        domain = await self._normalized_domain(raw)
        existing = await self.store.account_domains(ctx.account.id)
        if any(d["domain"] == domain for d in existing):
            raise Conflict(f"{domain} is already added to this account.",
                           type_slug="domain-exists")
        if len(existing) >= MAX_DOMAINS_PER_ACCOUNT:
            raise Conflict(f"An account has at most {MAX_DOMAINS_PER_ACCOUNT} domains.",
                           type_slug="too-many-domains")
        if await self.store.domain_active_elsewhere(domain, ctx.account.id):
            raise Conflict(f"{domain} is already in use.", type_slug="domain-taken")
        doc = {"domain": domain, "account_id": ctx.account.id, "solution_id": ctx.solution.id,
               "status": "pending", "token": new_token(), "created_at": utcnow(),
               "created_by": ctx.principal.uid}
        if not await self.store.add_domain(doc):
            raise Conflict(f"{domain} is already added to this account.",
                           type_slug="domain-exists")
        await self.audit.record("domain.added", actor=ctx.principal, account_id=ctx.account.id,
                                solution_id=ctx.solution.id, target=domain)
        return self._domain_view(doc)

    async def list_domains(self, ctx: AccountContext) -> dict[str, Any]:
        docs = await self.store.account_domains(ctx.account.id)
        return {"items": [self._domain_view(d) for d in docs], "next_cursor": None}

    async def _own_domain(self, ctx: AccountContext, raw: str) -> dict[str, Any]:
        try:
            domain = normalize_domain(raw)
        except ValueError:
            raise NotFound("No such domain on this account.") from None
        doc = await self.store.account_domain(ctx.account.id, domain)
        if doc is None:
            raise NotFound("No such domain on this account.")
        return doc

    async def get_domain(self, ctx: AccountContext, raw: str) -> dict[str, Any]:
        return self._domain_view(await self._own_domain(ctx, raw))

    async def remove_domain(self, ctx: AccountContext, raw: str) -> None:
        require_rank(ctx.principal, ctx, Role.ACCOUNT_ADMIN)
        doc = await self._own_domain(ctx, raw)
        await self.store.remove_domain(ctx.account.id, doc["domain"])
        self._hosts.pop(doc["domain"])
        await self.audit.record("domain.removed", actor=ctx.principal,
                                account_id=ctx.account.id, solution_id=ctx.solution.id,
                                target=doc["domain"], details={"status": doc["status"]})

    async def verify_domain(self, ctx: AccountContext, raw: str) -> dict[str, Any]:
        require_rank(ctx.principal, ctx, Role.ACCOUNT_ADMIN)
        doc = await self._own_domain(ctx, raw)
        domain = doc["domain"]
        if doc["status"] == "active":
            return self._domain_view(doc)
        name, expected = challenge_name(domain), challenge_value(doc["token"])
        try:
            values = await self.resolver.txt(name)
        except DnsLookupError as exc:
            raise ServiceUnavailable(f"{exc}; try again in a minute.",
                                     type_slug="dns-unavailable") from None
        now = utcnow()
        if expected not in [v.strip() for v in values]:
            error = f"no TXT record {expected!r} at {name}"
            await self.store.record_check(ctx.account.id, domain, at=now, error=error)
            await self.audit.record("domain.verification_failed", actor=ctx.principal,
                                    account_id=ctx.account.id, solution_id=ctx.solution.id,
                                    target=domain)
            raise Unprocessable(
                f"Not verified yet: publish a TXT record at {name} with the value {expected} "
                "and try again (DNS changes can take a while to appear).",
                type_slug="domain-not-verified", record={"type": "TXT", "name": name,
                                                         "value": expected},
            )
        if await self.store.domain_active_elsewhere(domain, ctx.account.id):
            raise Conflict(f"{domain} is already in use.", type_slug="domain-taken")
        try:
            await self.store.activate_domain(ctx.account.id, domain, now)
        except DomainTaken:
            raise Conflict(f"{domain} is already in use.", type_slug="domain-taken") from None
        self._hosts.pop(domain)
        await self.audit.record("domain.verified", actor=ctx.principal,
                                account_id=ctx.account.id, solution_id=ctx.solution.id,
                                target=domain)
        return self._domain_view(await self._own_domain(ctx, domain))

    # -- public resolution ----------------------------------------------------------

    async def resolve_host(self, host: str) -> HostMatch:
        """Platform host, a Solution's domain, a tenant's host, or unknown."""
        name = normalize_host(host)
        if not name:
            return UNKNOWN_HOST
        if name in self.platform_hosts:
            return PLATFORM_HOST
        cached = self._hosts.get(name)
        if cached is not MISSING:
            return cached
        match = await self._lookup_host(name)
        self._hosts.put(name, match)
        return match

    async def _lookup_host(self, name: str) -> HostMatch:
        claim = await self.store.active_domain(name)
        if claim is not None:
            account = await self.store.account_by_id(claim["account_id"])
            solution = await self.store.solution_by_id(claim["solution_id"]) if account else None
            if account is not None and solution is not None:
                tenant = Tenant(solution, account)
                return HostMatch("tenant", solution, tenant) if _active(tenant) else UNKNOWN_HOST
            return UNKNOWN_HOST
        solution = await self.store.solution_by_domain(name)
        if solution is not None:
            return HostMatch("solution", solution) if solution.status is Status.ACTIVE \
                else UNKNOWN_HOST
        label, _, parent = name.partition(".")
        if parent and _SLUG.match(label):
            solution = await self.store.solution_by_domain(parent)
            if solution is not None:
                account = await self.store.account_by_slug(solution.id, label)
                if account is not None:
                    tenant = Tenant(solution, account)
                    if _active(tenant):
                        return HostMatch("tenant", solution, tenant)
        return UNKNOWN_HOST

    async def tenant_by_slugs(self, solution_slug: str, account_slug: str) -> Tenant | None:
        if not (_SLUG.match(solution_slug) and _SLUG.match(account_slug)):
            return None
        key = (solution_slug, account_slug)
        cached = self._slugs.get(key)
        if cached is not MISSING:
            return cached
        tenant: Tenant | None = None
        solution = await self.store.solution_by_slug(solution_slug)
        if solution is not None:
            account = await self.store.account_by_slug(solution.id, account_slug)
            if account is not None and _active(Tenant(solution, account)):
                tenant = Tenant(solution, account)
        self._slugs.put(key, tenant)
        return tenant

    async def tenant_for_request(self, host: str, solution_slug: str | None,
                                 account_slug: str | None) -> Tenant | None:
        """The tenant a public request names by Host and/or slugs; None means 404.

        A tenant's own host serves only that tenant (slugs, if given, must name
        it); a Solution's domain serves only its own accounts; platform hosts
        serve any tenant named by slugs; unknown hosts serve nothing.
        """
        match = await self.resolve_host(host)
        if match.kind == "unknown":
            return None
        if match.kind == "tenant":
            tenant = match.tenant
            assert tenant is not None
            if solution_slug is None and account_slug is None:
                return tenant
            if (solution_slug, account_slug) == (tenant.solution.slug, tenant.account.slug):
                return tenant
            return None
        if not solution_slug or not account_slug:
            return None
        tenant = await self.tenant_by_slugs(solution_slug, account_slug)
        if tenant is None:
            return None
        if match.kind == "solution" and match.solution and tenant.solution.id != match.solution.id:
            return None
        return tenant

    async def host_allows_account(self, host: str, account_id: str) -> bool:
        """Previews: on platform hosts, or on the account's own hosts."""
        match = await self.resolve_host(host)
        if match.kind == "platform":
            return True
        return match.kind == "tenant" and match.tenant is not None \
            and match.tenant.account.id == account_id

    async def _tenant_by_id(self, account_id: str) -> Tenant | None:
        cached = self._tenants.get(account_id)
        if cached is not MISSING:
            return cached
        account = await self.store.account_by_id(account_id)
        solution = await self.store.solution_by_id(account.solution_id) if account else None
        tenant = Tenant(solution, account) if account and solution else None
        tenant = tenant if tenant is not None and _active(tenant) else None
        self._tenants.put(account_id, tenant)
        return tenant

    async def media_file(self, storage: StorageService, host: str,
                         asset_id: str) -> MediaFile | None:
        """A confirmed branding image, on a host that may show its tenant; else None.

        Platform hosts serve any active tenant's images, a Solution's domain
        only its accounts', a tenant's own host only its own.
        """
        if asset_id_of(MEDIA_PREFIX + asset_id) is None:
            return None  # never let junk ids near the cache or the database
        match = await self.resolve_host(host)
        if match.kind == "unknown":
            return None
        cached = self._media.get(asset_id)
        record = None
        if cached is MISSING:
            record = await self.assets.public_record(asset_id)
            if record is None:
                return None
            owner = (record["account_id"], record["solution_id"])
        else:
            owner = (cached.account_id, cached.solution_id)
        # Host and tenant first: a refused request reads no bytes.
        if not self._host_shows(match, *owner) or await self._tenant_by_id(owner[0]) is None:
            return None
        if record is None:
            found: MediaFile = cached
            return found
        fetched = await self.assets.media(storage, record)
        if fetched is not None:
            self._media.put(asset_id, fetched)  # only hits: misses cannot flush the cache
        return fetched

    @staticmethod
    def _host_shows(match: HostMatch, account_id: str, solution_id: str) -> bool:
        if match.kind == "tenant":
            return match.tenant is not None and match.tenant.account.id == account_id
        if match.kind == "solution":
            return match.solution is not None and match.solution.id == solution_id
        return match.kind == "platform"

    async def images_in_use(self, ctx: AccountContext) -> set[str]:
        """Image ids the account's branding points at, and those its published page shows
        (a snapshot taken at publish time, live until the next publish)."""
        layers = await self.store.branding_layers(ctx.solution.id, ctx.account.id)
        own = next((layer.values for layer in layers if layer.level == "account"), {})
        shown: Mapping[str, Any] = {}
        published = await self.store.published_version(ctx.account.id)
        if published is not None:
            shown = ((await self.store.version(ctx.account.id, published)) or {}).get(
                "branding") or {}
        return {asset for values in (own, shown) for key in MEDIA_KEYS
                if (asset := asset_id_of(str(values.get(key) or "")))}

    async def delete_image(self, ctx: AccountContext, storage: StorageService,
                           asset_id: str) -> None:
        await self.assets.delete(ctx, storage, asset_id, in_use=await self.images_in_use(ctx))
        self._media.pop(asset_id)

    # -- public pages ----------------------------------------------------------------

    async def _published_pointer(self, account_id: str) -> int | None:
        cached = self._pointers.get(account_id)
        if cached is not MISSING:
            return cached
        version = await self.store.published_version(account_id)
        self._pointers.put(account_id, version)
        return version

    async def public_page(self, tenant: Tenant) -> RenderedPage | None:
        """The published page (cached by account, version and plugin set), or None."""
        version = await self._published_pointer(tenant.account.id)
        if version is None:
            return None
        key = (tenant.account.id, version, frozenset(tenant.solution.enabled_plugins))
        page = self._pages.get(key)
        if page is MISSING:
            doc = await self.store.version(tenant.account.id, version)
            if doc is None:
                return None
            page = await self._render(tenant, doc, version=version)
            self._pages.put(key, page)
        return page

    async def _render(self, tenant: Tenant, snapshot: Mapping[str, Any], *, version: int
                      ) -> RenderedPage:
        renderer = await self.renderer_for(tenant.solution.enabled_plugins)
        theme = snapshot.get("theme")
        if theme not in self.themes:
            theme = self.theme_for(tenant.solution).name
        sections: list[BaseModel] = []
        for section in snapshot.get("sections", []):
            # A section whose plugin is no longer enabled, or whose schema changed,
            # is left out rather than failing the whole page.
            if not isinstance(section, dict) or section.get("type") not in renderer.registry:
                continue
            try:
                sections.append(renderer.registry.validate(section))
            except ValidationError:
                log.warning("landing section skipped", extra={
                    "account_id": tenant.account.id, "section_type": section.get("type")})
        placeholder = secrets.token_hex(16)
        html = renderer.render_page(
            str(theme), tokens=snapshot.get("tokens"), branding=snapshot.get("branding") or {},
            sections=sections, csp_nonce=placeholder, static_url_prefix=f"/static/themes/{theme}",
        )
        ancestors = list(snapshot.get("frame_ancestors") or [])
        return RenderedPage.from_html(
            html, placeholder, frame_ancestors=" ".join(ancestors) if ancestors else "'none'",
            version=version,
        )

    # -- public tenant settings -------------------------------------------------------

    async def tenant_settings(self, tenant: Tenant) -> tuple[bytes, str]:
        """The public theming document for the React frontend, and its ETag."""
        cached = self._settings.get(tenant.account.id)
        if cached is not MISSING:
            return cached
        appearance = await self.appearance(tenant.solution, tenant.account)
        if appearance.contrast_failures:
            # Colours that fail AA are never served: fall back to the theme's own.
            layers = await self._branding_layers(tenant.solution.id, tenant.account.id)
            values = {k: r.value for k, r in resolve(layers).items() if k not in COLOR_KEYS}
            appearance = resolve_appearance(appearance.theme, values,
                                            account_name=tenant.account.name)
        published = await self._published_pointer(tenant.account.id) is not None
        installed = set(self.plugins.infos)
        body = {
            "solution": {"slug": tenant.solution.slug, "name": tenant.solution.name},
            "account": {"slug": tenant.account.slug, "name": tenant.account.name},
            "theme": {
                "name": appearance.theme.name,
                "title": appearance.theme.title,
                "stylesheet": f"/static/themes/{appearance.theme.name}/theme.css",
                "tokens": appearance.tokens.model_dump(mode="json"),
                "css_variables": dict(appearance.tokens.css_custom_properties()),
            },
            "branding": appearance.branding.model_dump(mode="json"),
            "plugins": sorted(p for p in tenant.solution.enabled_plugins if p in installed),
            "landing_page": {
                "published": published,
                "path": f"/t/{tenant.solution.slug}/{tenant.account.slug}",
            },
        }
        data = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        etag = '"' + hashlib.sha256(data).hexdigest()[:32] + '"'
        self._settings.put(tenant.account.id, (data, etag))
        return data, etag

