"""Tenancy and documents, registered as a kernel default plugin through the hooks."""

from __future__ import annotations

from typing import Any

from quart import Blueprint

from core.hooks import PluginManifest, hookimpl


@hookimpl
def plugin_manifest() -> PluginManifest:
    return PluginManifest(name="kernel.tenancy", version="1", title="Tenancy and documents")


@hookimpl
def register_routes() -> list[Blueprint]:
    from core.documents.routes import blueprint as documents
    from core.tenancy.routes import blueprint as tenancy

    return [tenancy, documents]


@hookimpl
def register_models() -> list[Any]:
    from core.documents.models import Document

    return [Document]
