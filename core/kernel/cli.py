"""The ``synergyhub`` command line."""

from __future__ import annotations

import asyncio
import json
import os
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any, TypeVar

import click

from core.kernel.settings import Settings, SettingsError, load_settings

T = TypeVar("T")
REPO_ROOT = Path(__file__).resolve().parents[2]
DEV_PORTS = {"mongo": 27117, "auth": 9199, "gcs": 4543}


def _settings(**overrides: Any) -> Settings:
    try:
        return load_settings(**overrides)
    except SettingsError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)


def _with_db(settings: Settings, work: Callable[[Any], Awaitable[T]]) -> T:
    """Run ``work(database)`` with a client opened inside the loop."""
    from core.kernel.database import open_client

    async def runner() -> T:
        client = open_client(settings)
        try:
            return await work(client[settings.mongodb_database])
        finally:
            await client.close()

    return asyncio.run(runner())


@click.group()
def main() -> None:
    """SynergyHub: plugin-based, white-label B2B SaaS platform."""


@main.command()
@click.option("--bind", default=None, help="host:port (default SYNERGYHUB_BIND)")
@click.option("--workers", type=int, default=None, help="Hypercorn worker processes")
def serve(bind: str | None, workers: int | None) -> None:
    """Serve in production; refuses development defaults and emulators."""
    settings = _settings(environment="production")
    problems = settings.production_problems()
    if problems:
        click.echo(str(SettingsError(problems)), err=True)
        sys.exit(2)
    from core.kernel.serving import serve_forever

    serve_forever(settings, bind=bind or settings.bind, workers=workers or settings.workers)


@main.group(invoke_without_command=True)
@click.option("--data-dir", type=click.Path(path_type=Path), default=REPO_ROOT / ".data")
@click.option("--port", type=int, default=8080)
@click.pass_context
def dev(ctx: click.Context, data_dir: Path, port: int) -> None:
    """Run the whole platform on the embedded stack (what `make run` does)."""
    if ctx.invoked_subcommand is not None:
        return
    from core.kernel.devstack import run_embedded_stack
    from core.kernel.serving import serve_forever

    data_dir.mkdir(parents=True, exist_ok=True)
    click.echo(f"Starting the embedded stack in {data_dir} ...")
    with run_embedded_stack(
        data_dir, mongo_port=DEV_PORTS["mongo"], auth_port=DEV_PORTS["auth"],
        gcs_port=DEV_PORTS["gcs"], log=click.echo,
    ) as stack:
        os.environ.update(stack.env())
        settings = _settings(environment="development")
        _seed(settings)
        click.echo(
            "\nSynergyHub is starting:\n"
            f"  app        http://127.0.0.1:{port}  (API docs: /docs, health: /readyz)\n"
            f"  mongodb    {stack.mongo_uri}\n"
            f"  auth       http://{stack.firebase_auth_host}  (Firebase Auth emulator)\n"
            f"  storage    {stack.gcs_endpoint}  (fake-gcs-server)\n"
            "  demo users: see README (password 'synergyhub-demo'); "
            "`synergyhub dev token EMAIL` prints a token\n"
            "Press Ctrl-C to stop everything.\n"
        )
        serve_forever(settings, bind=f"127.0.0.1:{port}", workers=1)


def _seed(settings: Settings) -> None:
    import firebase_admin

    from core.tenancy.seed import seed_tenancy, seed_users

    app = firebase_admin.initialize_app(
        options={"projectId": settings.firebase_project_id}, name="synergyhub-seed"
    )
    async def work(db: Any) -> None:
        await seed_tenancy(db)
        await seed_users(db, app)

    try:
        _with_db(settings, work)
    finally:
        firebase_admin.delete_app(app)
    _seed_landing_page(settings)


def _seed_landing_page(settings: Settings) -> None:
    """Publish the demo page; a failure is reported and the platform starts anyway."""
    from core.tenancy.seed import ACCOUNT_ADMIN_EMAIL, emulator_id_token
    from core.whitelabel.demo import publish_demo_page

    try:
        token = emulator_id_token(str(settings.firebase_auth_emulator_host), ACCOUNT_ADMIN_EMAIL)
        click.echo(asyncio.run(publish_demo_page(settings, token)))
    except Exception as exc:  # the demo page is a convenience, never a reason not to start
        click.echo(f"demo landing page not published ({type(exc).__name__}: {exc})", err=True)


@main.command("seed-demo")
def seed_demo() -> None:
    """Create the demo Solutions, Accounts, Group and users (idempotent)."""
    settings = _settings()
    if not settings.firebase_auth_emulator_host:
        click.echo("seed-demo creates users in the Firebase Auth emulator: set "
                   "FIREBASE_AUTH_EMULATOR_HOST (make run does).", err=True)
        sys.exit(2)
    _seed(settings)
    click.echo("Demo data is in place.")


@dev.command("token")
@click.argument("email")
@click.option("--password", default="synergyhub-demo")
def dev_token(email: str, password: str) -> None:
    """Print an ID token from the Auth emulator for curl."""
    import httpx

    from core.tenancy.seed import emulator_id_token

    host = os.environ.get("FIREBASE_AUTH_EMULATOR_HOST", f"127.0.0.1:{DEV_PORTS['auth']}")
    try:
        click.echo(emulator_id_token(host, email, password))
    except httpx.HTTPError as exc:
        click.echo(f"Sign-in failed ({exc}); is `make run` running?", err=True)
        sys.exit(1)


@main.group()
def plugins() -> None:
    """Inspect installed plugins."""


@plugins.command("list")
@click.option("--no-db", is_flag=True, help="Do not ask the database which Solutions enable them")
def plugins_list(no_db: bool) -> None:
    """Name, version, origin and enabling Solutions of every installed plugin."""
    from core.kernel.plugins import build_plugin_registry

    settings = _settings()
    registry = build_plugin_registry(timeout=settings.hook_timeout_seconds)
    enabling: dict[str, list[str]] = {}
    if not no_db:
        async def work(db: Any) -> None:
            async for doc in db["solutions"].find({}, projection={"slug": 1, "enabled_plugins": 1}):
                for name in doc.get("enabled_plugins", []):
                    enabling.setdefault(name, []).append(doc["slug"])

        try:
            _with_db(settings, work)
        except Exception:
            click.echo("(database not reachable: Solutions not shown)", err=True)
    for name in registry.feature_plugins():
        info = registry.infos[name]
        solutions = ", ".join(sorted(enabling.get(name, []))) or "-"
        click.echo(f"{name:<16} {info.manifest.version:<10} {info.source:<40} {solutions}")


@main.group()
def plugin() -> None:
    """Write a plugin (see docs/plugins.md)."""


@plugin.command("new")
@click.argument("name")
@click.option("--dir", "parent", type=click.Path(file_okay=False, path_type=Path),
              default=Path("."), help="Where to create the NAME/ project (default: here)")
def plugin_new(name: str, parent: Path) -> None:
    """Scaffold a third-party plugin package NAME (entry point, hooks, model, tests)."""
    from core.kit import ScaffoldError, scaffold_plugin

    try:
        made = scaffold_plugin(name, parent)
    except ScaffoldError as exc:
        click.echo(str(exc), err=True)
        sys.exit(2)
    click.echo(f"Created {made.root} ({len(made.files)} files). Next:\n"
               f"  cd {made.root} && pip install -e . && synergyhub plugins list && pytest\n"
               f"Then enable it: PUT /api/v1/solutions/{{id}}/plugins/{name}")


@main.command()
def openapi() -> None:
    """Print the OpenAPI document."""
    from core.kernel.app import create_app

    app = create_app(_settings())

    async def fetch() -> Any:
        client = app.test_client()
        response = await client.get("/openapi.json")
        return await response.get_json()

    click.echo(json.dumps(asyncio.run(fetch()), indent=2))


@main.group()
def admin() -> None:
    """Platform administration."""


@admin.command("grant-superadmin")
@click.argument("email")
def grant_superadmin(email: str) -> None:
    """Make the user with EMAIL a SUPERADMIN (they must have signed in once)."""
    from core.tenancy.identity import normalize_email

    settings = _settings()

    async def work(db: Any) -> int:
        result = await db["users"].update_one(
            {"email_normalized": normalize_email(email)}, {"$set": {"system_role": "SUPERADMIN"}}
        )
        if result.matched_count:
            from core.tenancy.audit import AuditLog

            await AuditLog(db).record("superadmin.granted", actor="cli", target=email)
        return int(result.matched_count)

    if not _with_db(settings, work):
        click.echo(f"No user with email {email!r} has signed in yet.", err=True)
        sys.exit(1)
    click.echo(f"{email} is now SUPERADMIN.")


@admin.command("purge-account")
@click.argument("account_id")
@click.option("--yes", is_flag=True, help="Confirm the irreversible deletion")
@click.option("--keep-files", is_flag=True,
              help="Purge without file storage configured (stored files stay behind)")
def purge_account(account_id: str, yes: bool, keep_files: bool) -> None:
    """Hard-delete an ARCHIVED account's data (its audit chain is kept)."""
    from core.kernel.default_plugins import kernel_plugins
    from core.kernel.plugins import build_plugin_registry
    from core.tenancy.purge import PurgeRefused
    from core.tenancy.purge import purge_account as purge

    if not yes:
        click.echo("Refusing without --yes: purging cannot be undone.", err=True)
        sys.exit(2)
    settings = _settings()
    registry = build_plugin_registry(timeout=settings.hook_timeout_seconds,
                                     kernel_plugins=kernel_plugins())
    collections = {
        model.collection
        for models in registry.collect("register_models").values()
        for model in models
    }

    from core.storage.gcs import GCSStorage
    from core.storage.port import StorageUnavailable

    storage = GCSStorage.from_settings(settings)
    if storage is None and not keep_files:
        click.echo("File storage is not configured, so the account's stored files cannot be "
                   "deleted: configure it, or pass --keep-files to purge the records only.",
                   err=True)
        sys.exit(2)

    async def work(db: Any) -> Any:
        try:
            if storage is not None:
                await storage.ensure_bucket()  # the emulator's, when a fresh one runs
            return await purge(db, account_id, scoped_collections=collections, actor="cli",
                               storage=storage)
        finally:
            if storage is not None:
                await storage.close()

    try:
        report = _with_db(settings, work)
    except PurgeRefused as exc:
        click.echo(str(exc), err=True)
        sys.exit(1)
    except StorageUnavailable as exc:
        click.echo(f"Nothing was purged: the account's stored files could not be deleted "
                   f"({exc.detail}). Try again when storage answers.", err=True)
        sys.exit(1)
    click.echo(json.dumps(report.as_dict()))


@main.group()
def audit() -> None:
    """The tamper-evident audit log."""


@audit.command("verify")
@click.argument("account_id")
def audit_verify(account_id: str) -> None:
    """Verify an account's hash chain; exit 1 at the first broken link."""
    from core.tenancy.audit import AuditLog

    settings = _settings()

    async def work(db: Any) -> Any:
        return await AuditLog(db).verify(account_id)

    result = _with_db(settings, work)
    click.echo(json.dumps(result.as_dict()))
    sys.exit(0 if result.ok else 1)


if __name__ == "__main__":  # pragma: no cover
    main()
