"""The import-graph rule for plugins: no database driver, identity or AI SDK, ever.

ARCHITECTURE §2: plugin code never imports ``pymongo``, ``firebase_admin``,
``openai`` or ``google.cloud``; it receives kernel services instead. This
module reads a plugin package's source (every ``.py`` file, including imports
inside functions and ``TYPE_CHECKING`` blocks, ``__import__`` and
``importlib.import_module`` with a literal name) and reports each offending
import. The kernel's own modules are the sanctioned door, so ``core.*`` is
allowed — except ``core.kernel.database``, which hands out raw driver clients.
"""

from __future__ import annotations

import ast
import importlib.metadata
import importlib.util
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

# The four the architecture names, the other packages of the MongoDB driver
# family, and the kernel module that opens raw clients.
FORBIDDEN_MODULES: tuple[str, ...] = (
    "pymongo", "bson", "gridfs", "motor",
    "firebase_admin",
    "openai",
    "google.cloud",
    "core.kernel.database",
)
SKIP_DIRS = frozenset({"__pycache__", ".venv", "venv", "build", "dist", ".git", "node_modules",
                       ".eggs", ".tox", ".mypy_cache", ".pytest_cache", ".ruff_cache"})


@dataclass(frozen=True)
class Violation:
    """One forbidden import: where, and what it names."""

    path: Path
    line: int
    module: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: imports {self.module}"


def imported_names(source: str, filename: str = "<source>") -> Iterator[tuple[int, str]]:
    """(line, dotted module name) for every import form in ``source``.

    ``from a.b import c`` yields both ``a.b`` and ``a.b.c`` (``c`` may be a
    submodule: ``from google import cloud``). Relative imports name the
    plugin's own modules and are skipped.
    """
    for node in ast.walk(ast.parse(source, filename=filename)):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield node.lineno, alias.name
        elif isinstance(node, ast.ImportFrom):
            if node.level or not node.module:
                continue
            yield node.lineno, node.module
            for alias in node.names:
                yield node.lineno, f"{node.module}.{alias.name}"
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            first = node.args[0]
            if called in ("import_module", "__import__") and isinstance(first, ast.Constant) \
                    and isinstance(first.value, str):
                yield node.lineno, first.value


def is_forbidden(module: str, forbidden: Iterable[str] = FORBIDDEN_MODULES) -> bool:
    return any(module == bad or module.startswith(bad + ".") for bad in forbidden)


def python_files(root: Path) -> list[Path]:
    """Every ``.py`` file below ``root`` (or ``root`` itself), build and cache dirs skipped."""
    if root.is_file():
        return [root]
    return sorted(path for path in root.rglob("*.py")
                  if not SKIP_DIRS.intersection(part for part in path.relative_to(root).parts))


def forbidden_imports(root: Path | str,
                      forbidden: Iterable[str] = FORBIDDEN_MODULES) -> list[Violation]:
    """Every forbidden import in the package (or file) at ``root``."""
    forbidden = tuple(forbidden)
    found: list[Violation] = []
    for path in python_files(Path(root)):
        seen: dict[int, list[str]] = {}
        for line, module in imported_names(path.read_text(encoding="utf-8"), str(path)):
            if not is_forbidden(module, forbidden):
                continue
            # One report per import: "from openai import OpenAI" is "openai", once.
            earlier = seen.setdefault(line, [])
            if any(module == m or module.startswith(m + ".") for m in earlier):
                continue
            earlier.append(module)
            found.append(Violation(path, line, module))
    return found


def installed_plugin_packages(group: str = "synergyhub.plugins") -> dict[str, Path]:
    """Plugin name → source directory of the top-level package its entry point loads.

    Found without importing the plugins. A plugin module that is a single file
    maps to that file.
    """
    found: dict[str, Path] = {}
    for ep in importlib.metadata.entry_points(group=group):
        module = ep.value.split(":", 1)[0].strip()
        package = module.rsplit(".", 1)[0] if "." in module else module
        spec = importlib.util.find_spec(package)
        if spec is None:
            continue
        if spec.submodule_search_locations:
            found[ep.name] = Path(next(iter(spec.submodule_search_locations)))
        elif spec.origin:
            found[ep.name] = Path(spec.origin)
    return found
