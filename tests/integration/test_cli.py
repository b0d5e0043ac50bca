"""The synergyhub CLI as an operator runs it (real subprocesses)."""

from __future__ import annotations

import os
import subprocess
import sys

from tests.unit.test_settings import PRODUCTION_ENV

CLI = [sys.executable, "-m", "core.kernel.cli"]


def _run(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items()
             if k not in ("FIREBASE_AUTH_EMULATOR_HOST", "STORAGE_EMULATOR_HOST", "MONGODB_URI",
                          "FIREBASE_PROJECT_ID", "GOOGLE_CLOUD_PROJECT")}
    return subprocess.run([*CLI, *args], env={**clean, **env}, capture_output=True, text=True,
                          timeout=60, check=False)


def test_serve_refuses_when_auth_emulator_variable_is_set() -> None:
    result = _run("serve", env={**PRODUCTION_ENV, "FIREBASE_AUTH_EMULATOR_HOST": "127.0.0.1:9099"})
    assert result.returncode == 2
    assert "FIREBASE_AUTH_EMULATOR_HOST is set" in result.stderr


def test_serve_refuses_when_storage_emulator_variable_is_set() -> None:
    result = _run("serve", env={**PRODUCTION_ENV, "STORAGE_EMULATOR_HOST": "http://127.0.0.1:1"})
    assert result.returncode == 2
    assert "STORAGE_EMULATOR_HOST is set" in result.stderr


def test_serve_refuses_development_defaults_listing_each() -> None:
    result = _run("serve", env={})
    assert result.returncode == 2
    for name in ("MONGODB_URI", "FIREBASE_PROJECT_ID", "SYNERGYHUB_SECRET_KEY"):
        assert name in result.stderr


def test_plugins_list_names_builtins_with_origin() -> None:
    result = _run("plugins", "list", "--no-db", env={})
    assert result.returncode == 0, result.stderr
    for name in ("wecomply", "studio", "live_assistant", "v2v", "vision"):
        assert name in result.stdout
    assert "entry point (synergyhub" in result.stdout


def test_openapi_command_prints_the_spec() -> None:
    result = _run("openapi", env={})
    assert result.returncode == 0, result.stderr
    assert '"openapi": "3.1.0"' in result.stdout
    assert "/api/v1/me" in result.stdout
