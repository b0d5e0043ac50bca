"""Tenancy's app-scoped services, opened with the database in the serving loop."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from core.kernel.cache import CACHE_SECONDS
from core.tenancy.audit import AuditLog
from core.tenancy.cascade import CascadeStore
from core.tenancy.directory import Directory
from core.tenancy.identity import FirebaseTokenVerifier, TokenVerifier
from core.tenancy.impersonation import Impersonation
from core.tenancy.repository import RepositoryFactory

if TYPE_CHECKING:
    from core.kernel.services import Services
    from core.tenancy.models import AccountContext

SettingsCheck = Callable[["AccountContext | None", Mapping[str, Any]], Awaitable[None]]


@dataclass
class TenancyServices:
    verifier: TokenVerifier
    directory: Directory
    repositories: RepositoryFactory
    audit: AuditLog
    impersonation: Impersonation
    cascade: CascadeStore
    #: namespace -> extra check of a settings write (context or None at Solution level,
    #: values); filled by the namespace's owner (white-label checks branding images).
    settings_checks: dict[str, SettingsCheck] = field(default_factory=dict)

    @staticmethod
    async def open(services: Services) -> None:
        db = services.db
        verifier = services.extras.get("token_verifier") or FirebaseTokenVerifier(services.settings)
        tenancy = TenancyServices(
            verifier=verifier,
            directory=Directory(db),
            repositories=RepositoryFactory(db),
            audit=AuditLog(db),
            impersonation=Impersonation(db),
            cascade=CascadeStore(db, cache_seconds=CACHE_SECONDS),
        )
        for plugin, models in services.plugins.collect("register_models").items():
            for model in models:
                try:
                    tenancy.repositories.register(model)
                except (TypeError, ValueError, AttributeError) as exc:
                    services.plugins.record_fault(plugin, "register_models", exc)
        await tenancy.directory.create_indexes()
        await tenancy.audit.create_indexes()
        await tenancy.repositories.create_indexes()

        async def notify(event: dict[str, Any]) -> None:
            """Only the plugins the event's Solution enables observe it."""
            enabled: list[str] = []
            found = (
                await tenancy.directory.account_with_solution(event["account_id"])
                if event.get("account_id") else None
            )
            if found is not None:  # cached: usually no round trip
                enabled = list(found[1].enabled_plugins)
            elif event.get("solution_id"):
                solution = await db["solutions"].find_one(
                    {"_id": event["solution_id"]}, projection={"enabled_plugins": 1}
                )
                enabled = list((solution or {}).get("enabled_plugins", []))
            await services.plugins.call("activity_recorded", only=enabled, event=event)

        tenancy.audit.observers.append(notify)
        services.tenancy = tenancy

    @staticmethod
    async def close(services: Services) -> None:
        tenancy = services.tenancy_or_none
        if tenancy is not None and isinstance(tenancy.verifier, FirebaseTokenVerifier):
            tenancy.verifier.close()
        services.tenancy = None
