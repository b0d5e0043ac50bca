"""``synergyhub plugin new NAME``: write a third-party plugin package from templates.

The templates under ``core/kit/templates/plugin/`` are plain files with
``<<name>>``-style placeholders (``.tmpl`` suffix, so no tool mistakes them
for code); paths use ``NAME`` for the plugin name. What comes out is an
ordinary Python project a partner owns: a ``pyproject.toml`` with the
``synergyhub.plugins`` entry point, hook implementations, a scoped model, a
CRUD blueprint, a Socket.IO handler, a landing-page section and tests that
use the kernel's pytest fixtures.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import keyword
import re
import sys
from dataclasses import dataclass
from pathlib import Path

TEMPLATES = Path(__file__).parent / "templates" / "plugin"
# 2-32 characters: the section type "<name>_teaser" must stay within 40.
NAME_RE = re.compile(r"^[a-z][a-z0-9_]{1,31}$")

# Names a plugin may not take: the kernel's own plugins and the path segments
# the kernel serves under /api/v1/accounts/<account_id>/ (a plugin is mounted
# at /api/v1/accounts/<account_id>/<name>/), plus the kernel's packages.
RESERVED = frozenset({
    # kernel plugins and packages
    "core", "plugins", "kernel", "tenancy", "whitelabel", "realtime", "storage", "ai", "broker",
    "documents", "hooks", "testing", "kit", "synergyhub", "tests", "test",
    # account-level kernel routes (hyphenated ones written with "_" too)
    "access", "activity", "branding", "domains", "ephemeral_tokens", "groups", "invitations",
    "landing_page", "members", "restore", "settings", "audit", "export", "static",
    "sockets", "socket_io", "api", "admin", "public", "me", "themes", "solutions", "accounts",
})


class ScaffoldError(ValueError):
    """The name or target directory cannot be used; the message says why."""


@dataclass(frozen=True)
class Scaffolded:
    """What was written."""

    name: str
    root: Path
    files: tuple[Path, ...]


def installed_plugin_names() -> set[str]:
    return {ep.name for ep in importlib.metadata.entry_points(group="synergyhub.plugins")}


def validate_plugin_name(name: str) -> str:
    """Return ``name`` if a new plugin may take it; raise :class:`ScaffoldError` otherwise."""
    if not NAME_RE.fullmatch(name or ""):
        raise ScaffoldError(
            f"Plugin name {name!r} is not valid: use 2-32 characters, lowercase letters, digits "
            "and underscores, starting with a letter (it is a Python package name and a URL "
            "segment), e.g. acme_notes.")
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        raise ScaffoldError(f"Plugin name {name!r} is a Python keyword.")
    if name in RESERVED or name.startswith("kernel_"):
        raise ScaffoldError(f"Plugin name {name!r} is reserved by the SynergyHub kernel.")
    if name in installed_plugin_names():
        raise ScaffoldError(f"A plugin named {name!r} is already installed.")
    if name in sys.stdlib_module_names or importlib.util.find_spec(name) is not None:
        raise ScaffoldError(
            f"Plugin name {name!r} clashes with an importable Python module of that name; "
            "prefix it with your company, e.g. acme_" + name + ".")
    return name


def _title(name: str) -> str:
    return " ".join(part.capitalize() for part in name.split("_") if part)


def _kernel_version() -> str:
    try:
        return importlib.metadata.version("synergyhub")
    except importlib.metadata.PackageNotFoundError:
        return "0.1.0"


def render(text: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        text = text.replace(f"<<{key}>>", value)
    leftover = re.search(r"<<[a-z_]+>>", text)
    if leftover:
        raise RuntimeError(f"template placeholder {leftover.group(0)} has no value")
    return text


def scaffold_plugin(name: str, parent: Path | str = ".", *, title: str | None = None,
                    directory_name: str | None = None) -> Scaffolded:
    """Write the plugin project ``<parent>/<name>/`` and return what was written.

    Refuses invalid or taken names and a target directory that exists and is
    not empty; nothing is written then.
    """
    validate_plugin_name(name)
    root = Path(parent).expanduser().resolve() / (directory_name or name)
    if root.exists() and (not root.is_dir() or any(root.iterdir())):
        raise ScaffoldError(f"{root} already exists and is not empty.")
    values = {
        "name": name,
        "title": title or _title(name),
        "dist": "synergyhub-" + name.replace("_", "-"),
        "kernel_version": _kernel_version(),
    }
    planned: list[tuple[Path, str]] = []
    for template in sorted(TEMPLATES.rglob("*.tmpl")):
        relative = template.relative_to(TEMPLATES).with_suffix("")
        target = root / Path(*(part.replace("NAME", name) for part in relative.parts))
        planned.append((target, render(template.read_text(encoding="utf-8"), values)))
    written = []
    for target, text in planned:
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        written.append(target)
    return Scaffolded(name=name, root=root, files=tuple(written))
