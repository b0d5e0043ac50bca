"""The composition root: ``create_app(settings)`` wires everything, once.

Tests build the same app with test settings; production, ``make run`` and the
benchmarks all go through here. Connections are opened in the serving
lifecycle, never at import time.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
from quart import Blueprint, Quart, Response, current_app, render_template_string, request
from quart_schema import Info, QuartSchema
from quart_schema.openapi import OpenAPIProvider

from core.kernel import context
from core.kernel.database import open_client, ping
from core.kernel.default_plugins import kernel_plugins
from core.kernel.errors import NotFound, install_error_handlers
from core.kernel.logging import configure_logging
from core.kernel.middleware import DOCS_CSP, install_middleware
from core.kernel.plugins import PluginRegistry, build_plugin_registry
from core.kernel.services import Services
from core.kernel.settings import Settings

log = logging.getLogger("synergyhub.kernel")

STATIC_DIR = Path(__file__).parent / "static"
PLUGIN_PREFIX = "/api/v1/accounts/<account_id>/{plugin}"

DOCS_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>SynergyHub API</title>
<link rel="stylesheet" href="/static/vendor/swagger-ui/swagger-ui.css"></head>
<body><div id="swagger-ui" data-spec-url="/openapi.json"></div>
<script src="/static/vendor/swagger-ui/swagger-ui-bundle.js"></script>
<script src="/static/docs-init.js"></script></body></html>"""


class ProblemAwareOpenAPI(OpenAPIProvider):
    """Every operation documents its problem+json errors (and a default response)."""

    def schema(self) -> dict[str, Any]:
        spec: dict[str, Any] = super().schema()
        problem = {
            "description": "An RFC 9457 problem (application/problem+json).",
            "content": {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}
            },
        }
        spec.setdefault("components", {}).setdefault("schemas", {})["Problem"] = {
            "type": "object",
            "properties": {
                "type": {"type": "string"},
                "title": {"type": "string"},
                "status": {"type": "integer"},
                "detail": {"type": "string"},
                "request_id": {"type": "string"},
            },
            "required": ["type", "title", "status", "detail"],
        }
        seen: set[str] = set()
        for path, path_item in spec.get("paths", {}).items():
            for operation in path_item.values():
                if not isinstance(operation, dict) or "responses" not in operation:
                    continue
                operation_id = operation.get("operationId")
                if operation_id in seen:
                    # Plugins reuse view names; the path keeps operation ids unique.
                    slug = "".join(c if c.isalnum() else "_" for c in path).strip("_")
                    operation["operationId"] = f"{operation_id}__{slug}"
                seen.add(operation.get("operationId", ""))
                # quart-schema may key responses by int; OpenAPI wants strings.
                responses = {str(code): value for code, value in operation["responses"].items()}
                operation["responses"] = responses
                if not any(code.startswith("2") for code in responses):
                    responses["200"] = {"description": "Success"}
                responses.setdefault("default", problem)
        return spec


def _mount_plugin_routes(app: Quart, registry: PluginRegistry) -> None:
    """Mount every installed plugin's blueprints; gate each request per Solution.

    The gate is one app-level ``before_request`` keyed by the registered
    blueprint name, so a plugin's module-level blueprint is never mutated and
    can be mounted by several apps in one process (tests, workers).
    """
    owners: dict[str, str] = {}
    for plugin, blueprints in registry.collect("register_routes").items():
        if registry.is_kernel(plugin):
            for blueprint in blueprints:
                app.register_blueprint(blueprint)
            continue
        for blueprint in blueprints:
            if not isinstance(blueprint, Blueprint):
                registry.record_fault(plugin, "register_routes",
                                      TypeError("register_routes returned a non-blueprint"))
                continue
            name = f"plugin_{plugin}_{blueprint.name}"
            app.register_blueprint(
                blueprint, url_prefix=PLUGIN_PREFIX.format(plugin=plugin), name=name
            )
            owners[name] = plugin

    @app.before_request
    async def _plugin_gate() -> None:
        plugin = next((owners[b] for b in request.blueprints if b in owners), None)
        if plugin is None:
            return
        account_id = (request.view_args or {}).get("account_id", "")
        ctx = await context.enter_account(account_id)
        if plugin not in ctx.solution.enabled_plugins:
            raise NotFound("No such resource.")


def _install_health_routes(app: Quart) -> None:
    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @app.get("/readyz")
    async def readyz() -> tuple[dict[str, Any], int]:
        """Readiness: the database answers; plugin faults are reported, not fatal."""
        services: Services = current_app.extensions["synergyhub"]
        database = "ok"
        try:
            await ping(services.db)
        except Exception as exc:
            log.warning("readiness: database ping failed", extra={"error": str(exc)})
            database = "unavailable"
        faults = services.plugins.faults_by_plugin()
        plugins = {
            name: {
                "version": info.manifest.version,
                "state": "faulty" if name in faults else "ok",
                "faults": faults.get(name, []),
            }
            for name, info in services.plugins.infos.items()
        }
        ready = database == "ok"
        body = {"status": "ready" if ready else "unavailable", "database": database,
                "plugins": plugins}
        return body, 200 if ready else 503

    @app.get("/docs")
    async def api_docs() -> Response:
        """Swagger UI from vendored assets: no CDN, no inline script."""
        response = Response(await render_template_string(DOCS_PAGE), content_type="text/html")
        response.headers["Content-Security-Policy"] = DOCS_CSP
        return response


def _install_lifecycle(app: Quart, services: Services) -> None:
    @app.before_serving
    async def _open() -> None:
        services._mongo = open_client(services.settings)
        services._http = httpx.AsyncClient(timeout=httpx.Timeout(10.0))
        for hook in services.extras.get("on_open", []):
            await hook(services)
        await services.plugins.call("startup", services=services)

    @app.after_serving
    async def _close() -> None:
        await services.plugins.call("shutdown", services=services)
        for hook in reversed(services.extras.get("on_close", [])):
            await hook(services)
        if services._http is not None:
            await services._http.aclose()
        if services._mongo is not None:
            await services._mongo.close()
        services._mongo = None
        services._http = None


def create_app(
    settings: Settings,
    *,
    extra_plugins: Iterable[tuple[str, object]] = (),
    load_entrypoints: bool | None = None,
) -> Quart:
    """Build the SynergyHub ASGI app for ``settings``.

    ``extra_plugins`` registers plugin objects directly (tests, embedding);
    installed plugins come from the ``synergyhub.plugins`` entry points.
    """
    configure_logging(settings.log_level)
    registry = build_plugin_registry(
        timeout=settings.hook_timeout_seconds,
        load_entrypoints=(
            settings.load_entrypoint_plugins if load_entrypoints is None else load_entrypoints
        ),
        kernel_plugins=kernel_plugins(),
        extra_plugins=extra_plugins,
    )
    services = Services(settings=settings, plugins=registry)

    app = Quart("synergyhub", static_folder=str(STATIC_DIR), static_url_path="/static")
    app.config.update(
        MAX_CONTENT_LENGTH=settings.max_body_bytes,
        SECRET_KEY=settings.secret_key.get_secret_value(),
        PROPAGATE_EXCEPTIONS=False,
        QUART_SCHEMA_CONVERSION_PREFERENCE="pydantic",
    )
    app.extensions["synergyhub"] = services
    QuartSchema(
        app,
        info=Info(title="SynergyHub API", version="1"),
        openapi_path="/openapi.json",
        swagger_ui_path=None,
        redoc_ui_path=None,
        scalar_ui_path=None,
        convert_casing=False,
        openapi_provider_class=ProblemAwareOpenAPI,
    )
    install_middleware(app, cors_origins=settings.cors_origins)
    install_error_handlers(app)
    _install_health_routes(app)
    context.install(app, services)
    _install_lifecycle(app, services)
    _mount_plugin_routes(app, registry)
    return app


def create_asgi_app(settings: Settings, **kwargs: Any) -> Any:
    """The ASGI application Hypercorn serves: Quart, with Socket.IO at ``/socket.io/``."""
    from core.realtime.channel import mount_socketio

    return mount_socketio(create_app(settings, **kwargs))
