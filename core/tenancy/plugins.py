"""Enabling and disabling feature plugins per Solution."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from core.kernel.errors import Conflict, NotFound, Unprocessable, validation_error_list
from core.tenancy import service
from core.tenancy.directory import doc_to
from core.tenancy.models import Account, Principal, Solution, Status

if TYPE_CHECKING:
    from core.kernel.services import Services


def validate_plugin_settings(
    services: Services, plugin: str, settings: dict[str, Any]
) -> dict[str, Any]:
    info = services.plugins.infos[plugin]
    schema = info.manifest.solution_settings
    if schema is None:
        if settings:
            raise Unprocessable(f"Plugin {plugin!r} takes no settings.")
        return {}
    try:
        return schema.model_validate(settings).model_dump(mode="json", exclude_unset=True)
    except ValidationError as exc:
        raise Unprocessable(f"Invalid settings for plugin {plugin!r}.",
                            errors=validation_error_list(exc)) from None


async def set_plugin_enabled(
    services: Services, principal: Principal, solution_id: str, plugin: str, *,
    enabled: bool, settings: dict[str, Any],
) -> Solution:
    db = services.db
    solution = await service.visible_solution(db, principal, solution_id)
    service.require_solution_admin(principal, solution.id)
    if plugin not in services.plugins.feature_plugins():
        raise NotFound(f"No installed plugin is named {plugin!r}.")
    clean = validate_plugin_settings(services, plugin, settings)
    enabled_set = set(solution.enabled_plugins)
    if enabled:
        missing = [
            name for name in services.plugins.infos[plugin].manifest.requires
            if name not in enabled_set
        ]
        if missing:
            raise Conflict(f"Enable {', '.join(missing)} first: {plugin} requires it.")
        enabled_set.add(plugin)
    else:
        dependants = [
            name for name in enabled_set
            if plugin in services.plugins.infos.get(name, services.plugins.infos[plugin])
            .manifest.requires
        ]
        if dependants:
            raise Conflict(f"Disable {', '.join(sorted(dependants))} first: it requires {plugin}.")
        enabled_set.discard(plugin)
    update: dict[str, Any] = {"enabled_plugins": sorted(enabled_set)}
    if settings or enabled:
        update[f"plugin_settings.{plugin}"] = clean
    await db["solutions"].update_one({"_id": solution.id}, {"$set": update})
    services.tenancy.directory.invalidate()
    await services.tenancy.audit.record(
        "plugin." + ("enabled" if enabled else "disabled"), actor=principal,
        solution_id=solution.id, target=plugin, details={"settings_keys": sorted(clean)},
    )
    if enabled and plugin not in solution.enabled_plugins:
        accounts = await db["accounts"].find(
            {"solution_id": solution.id, "status": Status.ACTIVE.value}
        ).to_list()
        for doc in accounts:
            await services.plugins.call(
                "account_provisioned", only=[plugin], account=doc_to(Account, doc),
                services=services,
            )
    updated = await db["solutions"].find_one({"_id": solution.id})
    result: Solution = doc_to(Solution, updated or {})
    return result
