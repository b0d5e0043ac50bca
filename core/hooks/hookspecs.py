"""The one contract between the kernel and plugins.

Every hook is an empty function whose docstring says when the kernel calls it,
what it receives and what it must return. Implementations take only the
arguments they need (pluggy passes them by keyword) and may be ``async def``:
the kernel awaits whatever a hook returns, bounds each call with a timeout, and
isolates a plugin that raises or hangs (its result is skipped and reported on
``/readyz``) so one plugin never takes the kernel down.

Hooks are grouped by lifecycle. ``register_*`` hooks return things to add;
lifecycle hooks are nouns or past participles. ``docs/plugin_hooks.md``
documents each one with an example, and a meta-test fails when a hook here is
missing there or has no ``test_hook_<name>``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from core.hooks.markers import hookspec

if TYPE_CHECKING:
    from quart import Blueprint

    from core.hooks.manifest import PluginManifest, ThemeAssets


# --------------------------------------------------------------------------
# Identity of a plugin
# --------------------------------------------------------------------------


@hookspec
def plugin_manifest() -> PluginManifest:
    """Describe the plugin.

    Called once per plugin at start-up, before any other hook. Return a
    :class:`core.hooks.PluginManifest`: name, version, title, the plugins it
    requires, pydantic schemas for its Solution- and Account-level settings,
    its data migrations, and what happens to its data when a Solution disables
    it (retain, archive or purge). A plugin without a manifest is listed under
    its registration name with version ``"0"``.
    """


# --------------------------------------------------------------------------
# Registration (called once at start-up; results are cached by the kernel)
# --------------------------------------------------------------------------


@hookspec
def register_routes() -> Blueprint | list[Blueprint] | None:
    """Return Quart blueprints with the plugin's HTTP routes.

    Called once at start-up. The kernel mounts every blueprint under
    ``/api/v1/accounts/<account_id>/<plugin>/``; each view receives
    ``account_id`` as a keyword argument. Before the view runs the kernel has
    authenticated the caller, resolved the account context and checked that
    the account's Solution enables this plugin (404 otherwise). Views reach
    kernel services through ``core.kernel.context`` helpers, never pymongo.
    """


@hookspec
def register_socket_handlers() -> dict[str, Any] | None:
    """Return Socket.IO event handlers for the namespace ``/<plugin>``.

    Called once at start-up. Map event name → ``async def handler(ctx, payload)``.
    The kernel wraps each handler: it runs only after the connection has
    authenticated, with ``ctx`` carrying the principal and account context, and
    only when the account's Solution enables the plugin.
    """


@hookspec
def register_models() -> list[Any] | None:
    """Return the plugin's scoped model classes.

    Called once at start-up. Each class is a ``core.tenancy.ScopedModel``
    subclass naming its collection, its user-filterable and sortable fields and
    its extra indexes. The kernel creates the indexes (including the access
    filter's) and hands out ``ScopedRepository`` instances for them.
    """


@hookspec
def register_landing_sections() -> list[Any] | None:
    """Return landing-page section types the plugin contributes.

    Called once at start-up. Each item is a ``core.whitelabel.SectionType``
    (a type name, a pydantic schema and a template path inside the plugin's
    templates directory). Tenants can then add sections of that type to
    their landing page; fields are validated by the schema and auto-escaped.
    """


@hookspec
def register_theme_assets() -> ThemeAssets | None:
    """Return the static files and templates the plugin ships.

    Called once at start-up. Static files are served under
    ``/static/plugins/<plugin>/``; templates are added to the sandboxed
    landing-page loader under the prefix ``plugins/<plugin>/``.
    """


@hookspec
def register_token_providers() -> list[Any] | None:
    """Return ephemeral-token providers the broker can mint for.

    Called once at start-up. Each item implements
    ``core.ai.tokens.TokenProvider`` (a unique ``name`` and an async ``mint``).
    The kernel pins the session configuration server-side, clamps the TTL and
    audits every mint; a provider never sees client-supplied model settings.
    """


# --------------------------------------------------------------------------
# Lifecycle
# --------------------------------------------------------------------------


@hookspec
def startup(services: Any) -> None:
    """Prepare the plugin when the kernel starts serving.

    Called once per process after the database is reachable and indexes
    exist, with the kernel's app-scoped ``services``. A plugin that raises or
    exceeds the hook timeout is marked faulty on ``/readyz``; the kernel keeps
    serving the other plugins.
    """


@hookspec
def shutdown(services: Any) -> None:
    """Release what ``startup`` acquired.

    Called once per process when the kernel stops serving, before the
    database client closes.
    """


@hookspec
def account_provisioned(account: Any, services: Any) -> None:
    """Set up the plugin for an Account.

    Called when an Account is created in a Solution that enables the plugin,
    and for every existing Account when a Solution enables it. Must be
    idempotent: it can run more than once for the same Account.
    """


@hookspec
def activity_recorded(event: Any) -> None:
    """Observe an audit event after it has been stored.

    Called for every audit event of an enabled plugin's Solution. Observers
    cannot veto or alter the event; errors are logged and ignored.
    """
