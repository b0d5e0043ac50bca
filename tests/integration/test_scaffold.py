"""``synergyhub plugin new``: names, files, and a scaffolded plugin installed and tested for real.

``test_scaffolded_plugin_installs_lists_and_passes_its_tests`` is the slow one
(about a minute): it creates a fresh virtualenv beside the kernel's, installs
the scaffolded package into it, lists it with ``synergyhub plugins list`` from
that virtualenv, and runs the generated tests there with a nested pytest (which
starts its own embedded servers through the kernel's pytest plugin).
"""

from __future__ import annotations

import ast
import importlib.util
import os
import re
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from core.kernel.cli import main
from core.kit import ScaffoldError, scaffold_plugin, validate_plugin_name
from core.kit.scaffold import RESERVED

NAME = "acme_notes"
EXPECTED = {
    "pyproject.toml", "README.md",
    f"{NAME}/__init__.py", f"{NAME}/plugin.py", f"{NAME}/settings.py", f"{NAME}/models.py",
    f"{NAME}/service.py", f"{NAME}/routes.py", f"{NAME}/sockets.py", f"{NAME}/landing.py",
    f"{NAME}/templates/sections/{NAME}_teaser.html.j2",
    f"tests/test_{NAME}.py",
}


# --------------------------------------------------------------------------- names and files


@pytest.mark.parametrize("name", [
    "Acme", "a", "1acme", "acme-notes", "acme notes", "acme.notes", "x" * 33, "",
    "class", "match",                 # keywords
    "json", "pytest", "quart",        # importable modules
    "studio", "wecomply",             # installed plugins
    "documents", "groups", "landing_page", "core", "plugins", "tenancy",   # the kernel's
])
def test_names_that_cannot_be_used(name: str) -> None:
    with pytest.raises(ScaffoldError) as refused:
        validate_plugin_name(name)
    assert str(refused.value)


def test_good_names() -> None:
    for name in ("acme_notes", "ab", "acme2", "x" * 32):
        assert validate_plugin_name(name) == name


@pytest.mark.asyncio(loop_scope="session")
async def test_reserved_names_cover_the_kernels_account_routes(synergyhub_app: Any,
                                                               synergyhub_services: Any) -> None:
    """A plugin mounts at /api/v1/accounts/<account_id>/<name>/: no kernel segment is free."""
    plugins = set(synergyhub_services.plugins.feature_plugins())
    segments = {rule.rule.split("/")[5].replace("-", "_")
                for rule in synergyhub_app.app.url_map.iter_rules()
                if rule.rule.startswith("/api/v1/accounts/<account_id>/")}
    assert segments - plugins - RESERVED == set()


def test_scaffold_writes_a_complete_package(tmp_path: Path) -> None:
    made = scaffold_plugin(NAME, tmp_path)
    assert made.root == tmp_path / NAME
    assert {str(p.relative_to(made.root)) for p in made.files} == EXPECTED
    project = tomllib.loads((made.root / "pyproject.toml").read_text())
    assert project["project"]["entry-points"]["synergyhub.plugins"] == {NAME: f"{NAME}.plugin"}
    assert any(dep.startswith("synergyhub") for dep in project["project"]["dependencies"])
    for path in made.files:
        text = path.read_text()
        assert re.search(r"<<[a-z_]+>>", text) is None, path   # no placeholder left
        if path.suffix == ".py":
            ast.parse(text, str(path))
    models = (made.root / NAME / "models.py").read_text()
    assert f'collection: ClassVar[str] = "{NAME}_notes"' in models
    assert "filterable" in models and "sortable" in models
    routes = (made.root / NAME / "routes.py").read_text()
    assert 'extra="forbid"' in routes and "context.enter_account" in routes
    assert "context.repository(Note, ctx)" in routes
    # Never over an existing project.
    with pytest.raises(ScaffoldError, match="not empty"):
        scaffold_plugin(NAME, tmp_path)


def test_cli_plugin_new(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(main, ["plugin", "new", NAME, "--dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    assert (tmp_path / NAME / NAME / "plugin.py").is_file()
    assert f"plugins/{NAME}" in result.output
    result = runner.invoke(main, ["plugin", "new", "Bad-Name", "--dir", str(tmp_path)])
    assert result.exit_code == 2
    assert "not valid" in result.output
    assert not (tmp_path / "Bad-Name").exists()


# --------------------------------------------------------------------------- installed for real


def _clean_env(stack: Any) -> dict[str, str]:
    """This process's environment without pytest's and the session stack's variables."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("PYTEST_", "COV_")) and k not in stack.env()}
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    return env


def _run(args: list[str], *, cwd: Path, env: dict[str, str],
         timeout: float) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


def test_scaffolded_plugin_installs_lists_and_passes_its_tests(
        tmp_path: Path, synergyhub_stack: Any) -> None:
    made = scaffold_plugin(NAME, tmp_path / "src")
    env = _clean_env(synergyhub_stack)

    # A fresh virtualenv beside the kernel's. `--system-site-packages` would expose the
    # base interpreter's packages, not the kernel virtualenv's, so the new environment
    # adds the kernel's site-packages as a site directory (its .pth files included, so
    # the editable kernel resolves) after its own.
    venv = tmp_path / "venv"
    created = _run([sys.executable, "-m", "venv", "--without-pip", str(venv)], cwd=tmp_path,
                   env=env, timeout=60)
    assert created.returncode == 0, created.stderr
    python = str(venv / "bin" / "python")
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                   cwd=tmp_path, env=env, timeout=30).stdout.strip()
    kernel_site = sysconfig.get_paths()["purelib"]
    Path(purelib, "synergyhub_kernel.pth").write_text(
        f"import site; site.addsitedir({kernel_site!r})\n")

    installed = _run([python, "-m", "pip", "install", "--quiet", "--no-deps", "--no-index",
                      "--no-build-isolation", "-e", str(made.root)],
                     cwd=tmp_path, env=env, timeout=120)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert any(Path(purelib).glob("synergyhub_acme_notes-*.dist-info"))

    # `synergyhub plugins list` (the console script's code) from the new virtualenv,
    # against the session's database: the plugin is listed with its origin.
    stack_env = {**env, **synergyhub_stack.env()}
    listed = _run([python, "-m", "core.kernel.cli", "plugins", "list"], cwd=tmp_path,
                  env=stack_env, timeout=120)
    assert listed.returncode == 0, listed.stderr
    lines = {line.split()[0]: line for line in listed.stdout.splitlines() if line.strip()}
    assert NAME in lines, listed.stdout
    assert "entry point (synergyhub-acme-notes 0.1.0)" in lines[NAME]
    assert {"studio", "wecomply"} <= set(lines)           # the kernel's plugins too
    # ... and only there: the kernel's own virtualenv does not see it.
    kernel_listed = _run([sys.executable, "-m", "core.kernel.cli", "plugins", "list",
                          "--no-db"], cwd=tmp_path, env=env, timeout=120)
    assert NAME not in kernel_listed.stdout

    # The generated tests, with the new virtualenv's pytest and the kernel's pytest
    # plugin (it starts embedded servers of its own for that session).
    tested = _run([python, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rs"],
                  cwd=made.root, env=env, timeout=400)
    output = tested.stdout[-6000:] + tested.stderr[-3000:]
    assert tested.returncode == 0, output
    assert " passed" in tested.stdout and "failed" not in tested.stdout, output
    import core.testing.pytest_plugin as kernel_fixtures

    if importlib.util.find_spec("core.realtime") and hasattr(kernel_fixtures, "live_server"):
        assert "skipped" not in tested.stdout, output   # the Socket.IO test ran too
