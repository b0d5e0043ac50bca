"""WeComply reaches databases, identity, cloud storage and AI only through kernel services.

Every module of the plugin is parsed (not imported) and its imports checked:
no database driver, Firebase, OpenAI or Google Cloud SDK, and no kernel
adapter module that would hand it a driver object (repositories come from
``core.kernel.context.repository``).
"""

from __future__ import annotations

import ast
from pathlib import Path

import plugins.wecomply

PACKAGE = Path(plugins.wecomply.__file__).parent
FORBIDDEN = ("pymongo", "motor", "bson", "firebase_admin", "openai", "google.cloud",
             "google.auth", "httpx", "requests")
# Kernel modules that are adapters over those SDKs (type-only imports are fine).
FORBIDDEN_KERNEL = ("core.kernel.database", "core.storage.gcs", "core.ai.gateway",
                    "core.ai.clients", "core.tenancy.identity")


def imports(path: Path) -> list[tuple[str, int, bool]]:
    """(module, line, under TYPE_CHECKING) for every import in ``path``."""
    tree = ast.parse(path.read_text(), filename=str(path))
    type_only: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test):
            type_only.update(id(child) for stmt in node.body for child in ast.walk(stmt))
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno, id(node) in type_only) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.append((node.module, node.lineno, id(node) in type_only))
    return found


def test_no_driver_sdk_or_adapter_imports() -> None:
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) >= 10
    bad = []
    for path in modules:
        for module, line, type_only in imports(path):
            hit = [f for f in FORBIDDEN if module == f or module.startswith(f + ".")]
            kernel = [f for f in FORBIDDEN_KERNEL if module == f or module.startswith(f + ".")]
            if hit or (kernel and not type_only):
                bad.append(f"{path.name}:{line} imports {module}")
    assert bad == []


def test_the_checker_sees_imports_in_every_form(tmp_path: Path) -> None:
    sample = tmp_path / "sample.py"
    sample.write_text("import pymongo.errors\nfrom google.cloud import storage\n"
                      "def f():\n    import openai\n"
                      "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n"
                      "    from core.ai.gateway import AIGateway\n")
    assert sorted(imports(sample)) == [
        ("core.ai.gateway", 7, True), ("google.cloud", 2, False), ("openai", 4, False),
        ("pymongo.errors", 1, False), ("typing", 5, False)]
