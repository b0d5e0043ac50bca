"""Plugins never import pymongo, firebase_admin, openai or google.cloud (ARCHITECTURE §2).

The import graph of every plugin package — every built-in under plugins/*,
every plugin installed through the ``synergyhub.plugins`` entry points, and a
freshly scaffolded one — is read from source by core.kit.imports, including
imports inside functions, ``TYPE_CHECKING`` blocks and dynamic imports.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import plugins
from core.kit import FORBIDDEN_MODULES, forbidden_imports, scaffold_plugin
from core.kit.imports import imported_names, installed_plugin_packages, is_forbidden

PLUGINS_DIR = Path(plugins.__file__).parent
BUILTIN = sorted(p for p in PLUGINS_DIR.iterdir() if (p / "__init__.py").is_file())


def test_the_rule_names_the_architectures_modules() -> None:
    assert {"pymongo", "firebase_admin", "openai", "google.cloud"} <= set(FORBIDDEN_MODULES)


@pytest.mark.parametrize("package", BUILTIN, ids=[p.name for p in BUILTIN])
def test_builtin_plugin_imports_no_driver_or_sdk(package: Path) -> None:
    assert forbidden_imports(package) == []


def test_every_builtin_plugin_is_checked() -> None:
    assert {p.name for p in BUILTIN} >= {"studio", "wecomply", "live_assistant", "v2v", "vision"}


def test_installed_plugins_import_no_driver_or_sdk() -> None:
    """Whatever is installed as a plugin in this environment (built-ins and partners')."""
    packages = installed_plugin_packages()
    assert {"studio", "wecomply"} <= set(packages)
    offenders = {name: [str(v) for v in forbidden_imports(path)]
                 for name, path in packages.items()}
    assert {name: found for name, found in offenders.items() if found} == {}


def test_a_scaffolded_plugin_imports_no_driver_or_sdk(tmp_path: Path) -> None:
    made = scaffold_plugin("acme_imports", tmp_path)
    assert forbidden_imports(made.root) == []
    # ... and the check would notice one that does.
    (made.root / "acme_imports" / "shortcut.py").write_text(
        "from pymongo import MongoClient\n\n\ndef client():\n    return MongoClient()\n")
    [violation] = forbidden_imports(made.root)
    assert violation.module == "pymongo" and violation.line == 1
    assert violation.path.name == "shortcut.py"


SAMPLE = '''
import os
import pymongo
import google.cloud.storage as gcs
from openai import AsyncOpenAI
from google import cloud
from . import sibling
from .models import Note
from typing import TYPE_CHECKING
if TYPE_CHECKING:
    from firebase_admin import auth
def late():
    import bson
    importlib.import_module("motor.motor_asyncio")
    return __import__("gridfs")
from core.kernel.database import open_client
from core.kernel import context
import pymongo_helpers
import googleapiclient
import openai_like
'''


def test_every_import_form_is_seen() -> None:
    names = {name for _, name in imported_names(SAMPLE)}
    flagged = {name for name in names if is_forbidden(name)}
    assert flagged == {
        "pymongo", "google.cloud.storage", "openai", "openai.AsyncOpenAI", "google.cloud",
        "firebase_admin", "firebase_admin.auth", "bson", "motor.motor_asyncio", "gridfs",
        "core.kernel.database", "core.kernel.database.open_client",
    }
    # Relative imports are the plugin's own modules; look-alike names are not the SDKs.
    assert not {"sibling", ".models", "models"} & names
    assert not is_forbidden("pymongo_helpers") and not is_forbidden("googleapiclient")
    assert not is_forbidden("openai_like") and not is_forbidden("core.kernel.context")


def test_violations_report_file_and_line(tmp_path: Path) -> None:
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "__init__.py").write_text("")
    (tmp_path / "pkg" / "ai.py").write_text("import os\n\nfrom openai import OpenAI\n")
    (tmp_path / "pkg" / "__pycache__").mkdir()
    (tmp_path / "pkg" / "__pycache__" / "junk.py").write_text("import pymongo\n")
    [violation] = forbidden_imports(tmp_path / "pkg")
    assert str(violation).endswith("ai.py:3: imports openai")
