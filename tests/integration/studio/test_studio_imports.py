"""The studio plugin reaches the database, identity and AI only through kernel services."""

from __future__ import annotations

import ast
from pathlib import Path

import plugins.studio

FORBIDDEN = ("pymongo", "bson", "motor", "firebase_admin", "openai", "google.cloud")
PACKAGE = Path(plugins.studio.__file__).parent


def imported_modules(source: str) -> set[str]:
    """Every module named by import statements, ``__import__`` or ``importlib.import_module``
    (including imports inside functions and ``TYPE_CHECKING`` blocks)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
            names.update(f"{node.module}.{alias.name}" for alias in node.names)
        elif isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = node.func
            called = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            if called in ("import_module", "__import__") and isinstance(node.args[0].value, str):
                names.add(node.args[0].value)
    return names


def test_studio_never_imports_drivers_or_sdks() -> None:
    files = sorted(PACKAGE.rglob("*.py"))
    assert len(files) >= 6
    offenders = {
        f"{path.relative_to(PACKAGE)}: {name}"
        for path in files
        for name in imported_modules(path.read_text())
        if any(name == bad or name.startswith(bad + ".") for bad in FORBIDDEN)
    }
    assert not offenders, sorted(offenders)


def test_the_check_sees_every_import_form() -> None:
    sample = (
        "import pymongo\nfrom openai import AsyncOpenAI\nimport google.cloud.storage\n"
        "def f():\n    import firebase_admin\n    return importlib.import_module('bson')\n"
    )
    found = imported_modules(sample)
    assert {"pymongo", "openai", "google.cloud.storage", "firebase_admin", "bson"} <= found
