"""What a plugin declares about itself (returned by ``plugin_manifest``)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from pydantic import BaseModel


class DisablePolicy(StrEnum):
    """What happens to a plugin's data when a Solution disables it."""

    RETAIN = "retain"
    ARCHIVE = "archive"
    PURGE = "purge"


@dataclass(frozen=True)
class Migration:
    """A versioned, idempotent data migration; ``apply`` receives kernel services."""

    version: int
    description: str
    apply: Callable[[Any], Awaitable[None] | None]


@dataclass(frozen=True)
class PluginManifest:
    """Name, version and settings schemas of a plugin.

    ``solution_settings`` / ``account_settings`` are pydantic models whose field
    defaults are the platform level of the settings cascade.
    """

    name: str
    version: str
    title: str
    description: str = ""
    requires: tuple[str, ...] = ()
    solution_settings: type[BaseModel] | None = None
    account_settings: type[BaseModel] | None = None
    migrations: tuple[Migration, ...] = ()
    on_disable: DisablePolicy = DisablePolicy.RETAIN


@dataclass(frozen=True)
class ThemeAssets:
    """Static files and templates a plugin ships (served under /static/plugins/<name>/)."""

    static_dir: Path | None = None
    templates_dir: Path | None = None
    extra: dict[str, Any] = field(default_factory=dict)
