"""The tenancy conformance check any plugin can run: every route, every role, every scope.

Given an app (the session ``synergyhub_app`` or one built with extra plugins),
the seeded :class:`~core.testing.tenancy.Personas` and a description of each
scoped resource the plugin exposes over HTTP, :func:`check_tenancy` seeds
items in every scope (in the home account, a sibling account of the same
Solution and an account of another Solution), then drives the plugin's routes
as every persona and compares each answer with the rules table of
ARCHITECTURE §3. The table is written out below on purpose: it does not call
``core.tenancy.rules``, so the check tests the implementation against the
specification rather than against itself.

Routes are also *discovered*: every rule under the plugin's prefix in the
app's ``url_map`` is exercised. Every GET route without an id is listed by
every persona and searched for items the persona may not read (anywhere in
the JSON, and by the tenant fields of listed items); every route below a
declared item path is probed with the ids of items the persona may not read,
and must answer exactly as for an id that does not exist (never 2xx); every
route refuses anonymous callers and outsiders.

The check talks HTTP only (no database access), so partners can run it
against their own plugin unchanged. It returns a :class:`ConformanceReport`;
``report.assert_ok()`` fails with the list of every mismatch.
"""

from __future__ import annotations

import asyncio
import re
import uuid
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal
from urllib.parse import quote

from core.testing.tenancy import Personas

__all__ = [
    "ROLES",
    "Action",
    "ConformanceReport",
    "ResourceRoute",
    "check_tenancy",
    "scoped_body",
]

PROBLEM = "application/problem+json"
PLUGIN_PREFIX = "/api/v1/accounts/<account_id>/{plugin}"
ROLES = (
    "SUPERADMIN", "SOLUTION_ADMIN", "ACCOUNT_ADMIN", "MEMBER", "VIEWER",
    "GROUP_ADMIN", "GROUP_MEMBER", "OUTSIDER", "ANONYMOUS",
)
SCOPES = ("global", "solution", "account", "group", "private")
SUCCESS = range(200, 300)
CONCURRENCY = 8

# ----------------------------------------------------------------------------
# The specification (ARCHITECTURE §3), for the seeded personas acting in the
# HOME account (home Solution, home group). Written out, not computed.
# ----------------------------------------------------------------------------

# Personas that may act in the home account at all; every other signed-in
# persona gets 404 there, an anonymous caller 401.
HOME_ACCESS = frozenset({"SUPERADMIN", "SOLUTION_ADMIN", "ACCOUNT_ADMIN", "MEMBER", "VIEWER",
                         "GROUP_ADMIN", "GROUP_MEMBER"})

# "who may read", per scope, for an item visible in the home account context.
READERS: dict[str, frozenset[str]] = {
    "global": HOME_ACCESS,                     # everyone signed in
    "solution": HOME_ACCESS,                   # members of any account of the Solution, its admin
    "account": HOME_ACCESS,                    # members of the account (any role), admins above
    "group:home": frozenset({"SUPERADMIN", "SOLUTION_ADMIN", "ACCOUNT_ADMIN", "GROUP_ADMIN",
                             "GROUP_MEMBER"}),  # group members, ACCOUNT_ADMIN, admins above
    "group:home2": frozenset({"SUPERADMIN", "SOLUTION_ADMIN", "ACCOUNT_ADMIN"}),
}
# "who may write", per scope (private: the owner only).
WRITERS: dict[str, frozenset[str]] = {
    "global": frozenset({"SUPERADMIN"}),
    "solution": frozenset({"SUPERADMIN", "SOLUTION_ADMIN"}),
    "account": frozenset({"SUPERADMIN", "SOLUTION_ADMIN", "ACCOUNT_ADMIN"}),
    "group:home": frozenset({"SUPERADMIN", "SOLUTION_ADMIN", "ACCOUNT_ADMIN", "GROUP_ADMIN"}),
    "group:home2": frozenset({"SUPERADMIN", "SOLUTION_ADMIN", "ACCOUNT_ADMIN"}),
}
# A VIEWER reads what a MEMBER reads and writes nothing.
NEVER_WRITES = frozenset({"VIEWER"})
# Personas that can own a private item in the home account (through the API).
OWNERS = HOME_ACCESS - NEVER_WRITES

CREATE_KEYS = ("global", "solution", "account", "group:home", "group:home2", "private")


@dataclass(frozen=True)
class Res:
    """A seeded item: its scope, where it lives, and who creates it."""

    name: str
    scope: str
    where: str = "home"          # home | sibling (same Solution) | other (other Solution)
    group: str | None = None     # home | home2 | sibling
    creator: str = "SELF"        # a persona, SELF (the acting persona) or OTHER (someone else)

    def key(self) -> str:
        return f"group:{self.group}" if self.scope == "group" else self.scope


RESOURCES = (
    Res("global", "global", creator="SUPERADMIN"),
    Res("global@other-solution", "global", "other", creator="SUPERADMIN"),
    Res("solution", "solution", creator="SOLUTION_ADMIN"),
    Res("solution@sibling", "solution", "sibling", creator="SOLUTION_ADMIN"),
    Res("solution@other-solution", "solution", "other", creator="SUPERADMIN"),
    Res("account", "account", creator="ACCOUNT_ADMIN"),
    Res("account@sibling", "account", "sibling", creator="ADMIN:sibling"),
    Res("account@other-solution", "account", "other", creator="ADMIN:other"),
    Res("group", "group", group="home", creator="ACCOUNT_ADMIN"),
    Res("group2", "group", group="home2", creator="ACCOUNT_ADMIN"),
    Res("group@sibling", "group", "sibling", group="sibling", creator="ADMIN:sibling"),
    Res("private-own", "private", creator="SELF"),
    Res("private-other", "private", creator="OTHER"),
    Res("private@sibling", "private", "sibling", creator="ADMIN:sibling"),
    Res("private-superadmin@sibling", "private", "sibling", creator="SUPERADMIN"),
)


def owner_of(res: Res, persona: str) -> str:
    if res.creator == "SELF":
        return persona
    if res.creator == "OTHER":
        return "ACCOUNT_ADMIN" if persona == "MEMBER" else "MEMBER"
    return res.creator


def in_home_context(res: Res) -> bool:
    if res.scope == "global":
        return True
    if res.scope == "solution":
        return res.where in ("home", "sibling")
    return res.where == "home"


def may_read(persona: str, res: Res) -> bool:
    """Persona (acting in the home account) may read ``res``."""
    if persona not in HOME_ACCESS or not in_home_context(res):
        return False
    if res.scope == "private":
        return owner_of(res, persona) == persona
    return persona in READERS[res.key()]


def may_write(persona: str, res: Res) -> bool:
    if not may_read(persona, res) or persona in NEVER_WRITES:
        return False
    if res.scope == "private":
        return owner_of(res, persona) == persona
    return persona in WRITERS[res.key()]


def gate(persona: str) -> int | None:
    """The answer in the home account before any scope is considered."""
    if persona == "ANONYMOUS":
        return 401
    if persona not in HOME_ACCESS:
        return 404
    return None


def expected_create(persona: str, key: str) -> int:
    early = gate(persona)
    if early is not None:
        return early
    if persona in NEVER_WRITES:
        return 403
    if key == "private":
        return 201
    return 201 if persona in WRITERS[key] else 403


def visible_across(res: Res, vantage: str) -> bool:
    """A home item seen through another account's path (sibling or other Solution)."""
    return res.scope == "global" or (res.scope == "solution" and vantage == "sibling")


# ----------------------------------------------------------------------------
# What a plugin tells the check about its API
# ----------------------------------------------------------------------------


def scoped_body(base: Mapping[str, Any]) -> Callable[[str, str | None], dict[str, Any]]:
    """A create-body factory: ``base`` plus ``scope`` (and ``group_id`` for group scope)."""

    def factory(scope: str, group_id: str | None) -> dict[str, Any]:
        body = {**base, "scope": scope}
        if group_id is not None:
            body["group_id"] = group_id
        return body

    return factory


@dataclass(frozen=True)
class Action:
    """A route below an item (``<item>/<suffix>``) with a body the check can send.

    ``needs`` says what the rules table requires of the caller: ``read`` (e.g.
    render or run something you can see) or ``write`` (e.g. add a version).
    """

    method: str
    suffix: str
    needs: Literal["read", "write"]
    body: Callable[[], Any] | None = None


@dataclass(frozen=True)
class ResourceRoute:
    """One scoped resource of the plugin, as its HTTP API exposes it.

    ``collection`` is the list/create URL with ``{account_id}``; items live at
    ``collection + "/<id>"``. ``create_body(scope, group_id)`` returns a valid
    body for that scope; ``update_body(marker)`` a valid change (``None``: the
    resource has no update route).
    """

    collection: str
    create_body: Callable[[str, str | None], dict[str, Any]]
    update_body: Callable[[str], dict[str, Any]] | None = None
    update_method: str = "patch"
    deletable: bool = True
    id_field: str = "id"
    items_field: str = "items"
    list_query: str = "limit=100"
    scopes: tuple[str, ...] = SCOPES
    actions: tuple[Action, ...] = ()
    name: str = ""

    @property
    def label(self) -> str:
        return self.name or self.collection.rsplit("/", 1)[-1]

    def url(self, account_id: str) -> str:
        return self.collection.format(account_id=account_id)

    def rule(self) -> str:
        return self.collection.replace("{account_id}", "<account_id>")


@dataclass
class ConformanceReport:
    """Every mismatch found, what was exercised, and what could not be."""

    failures: list[str] = field(default_factory=list)
    requests: int = 0
    routes: dict[str, str] = field(default_factory=dict)   # "METHOD rule" -> how it was exercised
    notes: list[str] = field(default_factory=list)

    def fail(self, message: str) -> None:
        self.failures.append(message)

    @property
    def ok(self) -> bool:
        return not self.failures

    def leaks(self) -> list[str]:
        return [f for f in self.failures if "leak" in f or "cross-scope" in f]

    def assert_ok(self) -> None:
        if self.failures:
            raise AssertionError(f"{len(self.failures)} tenancy conformance failures:\n"
                                 + "\n".join(self.failures))

    def summary(self) -> str:
        return (f"{self.requests} requests, {len(self.routes)} routes, "
                f"{len(self.failures)} failures")


# ----------------------------------------------------------------------------
# Route discovery
# ----------------------------------------------------------------------------

_VARIABLE = re.compile(r"<(?:(\w+)(?:\([^)]*\))?:)?(\w+)>")


@dataclass(frozen=True)
class Route:
    rule: str
    method: str

    @property
    def variables(self) -> list[tuple[str, str]]:
        return [(conv or "string", name) for conv, name in _VARIABLE.findall(self.rule)]

    def fill(self, account_id: str, item: str | None = None, item_var: str | None = None) -> str:
        def sub(match: re.Match[str]) -> str:
            conv, name = match.group(1) or "string", match.group(2)
            if name == "account_id":
                return account_id
            if name == item_var and item is not None:
                return quote(item, safe="")
            if conv in ("int", "float"):
                return "1"
            return uuid.uuid4().hex[:24]
        return _VARIABLE.sub(sub, self.rule)

    def __str__(self) -> str:
        return f"{self.method} {self.rule}"


def discover_routes(app: Any, prefix: str) -> list[Route]:
    """Every (method, rule) of ``app`` at or below ``prefix`` (a rule, with ``<account_id>``)."""
    quart_app = getattr(app, "app", app)
    found: set[Route] = set()
    base = prefix.rstrip("/")
    for rule in quart_app.url_map.iter_rules():
        text = rule.rule
        if text != base and not text.startswith(base + "/"):
            continue
        for method in rule.methods or ():
            if method in ("HEAD", "OPTIONS"):
                continue
            found.add(Route(text, method))
    return sorted(found, key=lambda r: (r.rule, r.method))


# ----------------------------------------------------------------------------
# The check
# ----------------------------------------------------------------------------


def _strip(body: Any) -> Any:
    if isinstance(body, dict):
        return {k: v for k, v in body.items() if k not in ("request_id", "instance")}
    return body


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, dict):
        for item in value.values():
            yield from _strings(item)
    elif isinstance(value, list):
        for item in value:
            yield from _strings(item)


@dataclass
class Seeded:
    id: str
    res: Res
    account: str       # the account whose path reaches it
    owner: str         # the persona that created it


class TenancyConformance:
    """One run of the check; use :func:`check_tenancy`."""

    def __init__(self, app: Any, personas: Personas, *, plugin: str | None,
                 resources: Sequence[ResourceRoute], prefix: str | None,
                 enable: bool, skip_routes: Iterable[str]) -> None:
        self.app = app
        self.client = app.test_client()
        self.p = personas
        self.plugin = plugin
        self.resources = list(resources)
        if prefix is None:
            if plugin is not None:
                prefix = PLUGIN_PREFIX.format(plugin=plugin)
            elif self.resources:
                prefix = self.resources[0].rule()
            else:
                raise ValueError("name the plugin, a prefix or at least one resource")
        self.prefix = prefix
        self.enable = enable
        self.skip = set(skip_routes)
        self.report = ConformanceReport()
        t0, t1 = personas.tenants[0], personas.tenants[1]
        self.home = personas.home_account
        self.accounts = {"home": self.home, "sibling": t0.accounts[1], "other": t1.accounts[0]}
        self.solution_of = {"home": t0.solution_id, "sibling": t0.solution_id,
                            "other": t1.solution_id}
        self.groups = {"home": personas.home_group, "home2": t0.groups[self.home][1],
                       "sibling": t0.groups[t0.accounts[1]][0]}
        self.names = [*ROLES, "ADMIN:sibling", "ADMIN:other"]
        self.seeded: dict[tuple[str, str, str], Seeded] = {}   # (resource, res, owner)
        self.created: list[tuple[ResourceRoute, Seeded]] = []
        self.enabled_by_us: list[str] = []
        self._missing: dict[tuple[str, str, str], tuple[int, Any]] = {}
        self._other_enabled = False
        self.deleted: set[str] = set()
        self.routes: list[Route] = []

    # -- plumbing ---------------------------------------------------------------

    def persona(self, name: str) -> Any:
        if name == "ADMIN:sibling":
            name = f"ADMIN:{self.accounts['sibling']}"
        elif name == "ADMIN:other":
            name = f"ADMIN:{self.accounts['other']}"
        return self.p[name]

    async def call(self, method: str, path: str, persona: str,
                   json: Any = None) -> tuple[int, Any, str]:
        kwargs: dict[str, Any] = {"headers": self.persona(persona).headers()}
        if json is not None:
            kwargs["json"] = json
        self.report.requests += 1
        response = await getattr(self.client, method.lower())(path, **kwargs)
        ctype = response.headers.get("Content-Type", "")
        body = await response.get_json() if "json" in ctype else None
        return response.status_code, body, ctype

    def problem_ok(self, case: str, status: int, ctype: str, body: Any) -> None:
        if status >= 400 and (not ctype.startswith(PROBLEM) or not isinstance(body, dict)
                              or body.get("status") != status):
            self.report.fail(f"{case}: {status} is not problem+json ({ctype or 'no body'})")

    def mark(self, route: Route | str, how: str) -> None:
        key = str(route)
        if key in self.report.routes and how not in self.report.routes[key]:
            self.report.routes[key] += f", {how}"
        else:
            self.report.routes.setdefault(key, how)

    # -- enabling -------------------------------------------------------------

    async def _solution_plugins(self, solution_id: str) -> list[str]:
        status, body, _ = await self.call("get", f"/api/v1/solutions/{solution_id}",
                                          "SUPERADMIN")
        if status != 200:
            raise AssertionError(f"cannot read Solution {solution_id}: {status} {body}")
        return list(body.get("enabled_plugins", []))

    async def _toggle(self, solution_id: str, enabled: bool) -> None:
        status, body, _ = await self.call(
            "put", f"/api/v1/solutions/{solution_id}/plugins/{self.plugin}", "SUPERADMIN",
            {"enabled": enabled})
        if status != 200:
            raise AssertionError(f"cannot {'en' if enabled else 'dis'}able {self.plugin} for "
                                 f"Solution {solution_id}: {status} {body}")

    async def prepare(self) -> None:
        if self.plugin is None:
            return
        home_solution, other_solution = self.solution_of["home"], self.solution_of["other"]
        for solution_id in (home_solution, other_solution):
            enabled = self.plugin in await self._solution_plugins(solution_id)
            if enabled:
                continue
            if solution_id == other_solution:
                await self.check_disabled_gate()
            if not self.enable:
                if solution_id == home_solution:
                    raise AssertionError(f"{self.plugin} is not enabled for the home Solution")
                self.report.notes.append("the other Solution does not enable the plugin: "
                                         "its items were not seeded")
                continue
            await self._toggle(solution_id, True)
            self.enabled_by_us.append(solution_id)

    async def restore(self) -> None:
        leftovers = [(route, item) for route, item in self.created
                     if route.deletable and item.id not in self.deleted]
        await self.gather(
            self.call("delete", self.item_url(route, item.account, item.id), item.owner)
            for route, item in leftovers)
        for solution_id in self.enabled_by_us:
            await self._toggle(solution_id, False)

    async def gather(self, coroutines: Iterable[Awaitable[Any]]) -> None:
        """Run independent cases a few at a time (the app and database overlap them)."""
        semaphore = asyncio.Semaphore(CONCURRENCY)

        async def bounded(coroutine: Awaitable[Any]) -> None:
            async with semaphore:
                await coroutine

        await asyncio.gather(*(bounded(c) for c in coroutines))

    # -- gates ---------------------------------------------------------------------

    async def check_disabled_gate(self) -> None:
        """A Solution that does not enable the plugin answers 404 on all its routes."""
        account = self.accounts["other"]
        for route in self.routes:
            status, body, ctype = await self.call(route.method, route.fill(account),
                                                  "ADMIN:other", {} if route.method != "GET"
                                                  else None)
            if status != 404:
                self.report.fail(f"ADMIN:other {route} in a Solution that does not enable "
                                 f"{self.plugin}: expected 404, got {status}")
            self.problem_ok(f"ADMIN:other {route} (plugin disabled)", status, ctype, body)
            self.mark(route, "disabled-gate")

    async def check_gates(self) -> None:
        """Anonymous callers get 401 and outsiders 404 on every route (never 2xx)."""
        for route in self.routes:
            path = route.fill(self.home)
            body: Any = None if route.method == "GET" else {}
            for persona, want in (("ANONYMOUS", 401), ("OUTSIDER", 404),
                                  ("ADMIN:other", 404)):
                status, answer, ctype = await self.call(route.method, path, persona, body)
                case = f"{persona} {route}"
                if status in SUCCESS:
                    self.report.fail(f"{case}: cross-scope access, answered {status} "
                                     "outside the caller's accounts")
                elif route.method == "GET" and status != want:
                    self.report.fail(f"{case}: expected {want}, got {status}")
                elif route.method != "GET" and status not in (want, 400, 415, 422):
                    self.report.fail(f"{case}: expected {want} (or a 4xx for the body), "
                                     f"got {status}")
                self.problem_ok(case, status, ctype, answer)
            self.mark(route, "gates")

    # -- seeding ------------------------------------------------------------------

    def item_url(self, route: ResourceRoute, account: str, item_id: str) -> str:
        return f"{route.url(account)}/{quote(item_id, safe='')}"

    def supported(self, route: ResourceRoute, res: Res) -> bool:
        return res.scope in route.scopes and (res.where != "other" or self.other_reachable)

    @property
    def other_reachable(self) -> bool:
        """Items can live in the other Solution (kernel routes, or the plugin is enabled there)."""
        return self.plugin is None or self._other_enabled

    async def create(self, route: ResourceRoute, res: Res, owner: str) -> Seeded:
        account = self.accounts[res.where]
        group = self.groups[res.group] if res.group else None
        status, doc, _ = await self.call("post", route.url(account), owner,
                                         route.create_body(res.scope, group))
        if status != 201 or not isinstance(doc, dict) or route.id_field not in doc:
            raise AssertionError(f"{route.label}: seeding {res.name} as {owner} answered "
                                 f"{status} {doc}; the create body factory must produce a "
                                 "valid body for every scope")
        item = Seeded(str(doc[route.id_field]), res, account, owner)
        self.created.append((route, item))
        return item

    async def shared(self, route: ResourceRoute, res: Res, persona: str) -> Seeded | None:
        """The shared item of ``res`` as seen by ``persona`` (None: cannot exist)."""
        if not self.supported(route, res):
            return None
        owner = owner_of(res, persona)
        if res.creator in ("SELF", "OTHER") and owner not in OWNERS:
            return None
        key = (route.collection, res.name, owner)
        if key not in self.seeded:
            self.seeded[key] = await self.create(route, res, owner)
        return self.seeded[key]

    async def seed(self, route: ResourceRoute) -> None:
        for res in RESOURCES:
            for persona in self.names:
                await self.shared(route, res, persona)

    def readable(self, persona: str, item: Seeded, vantage: str = "home") -> bool:
        """The rules table for one seeded item, acting through ``vantage``'s path."""
        if vantage == "home":
            if item.res.scope == "private":
                return (persona in HOME_ACCESS and item.res.where == "home"
                        and item.owner == persona)
            return may_read(persona, item.res)
        if item.res.scope == "global":
            return True
        return (item.res.scope == "solution"
                and self.solution_of[item.res.where] == self.solution_of[vantage])

    def unreadable_ids(self, persona: str, vantage: str = "home") -> dict[str, str]:
        """Seeded ids (→ description) the persona may not read through ``vantage``.

        From another account's path only items living elsewhere are judged.
        """
        found: dict[str, str] = {}
        for item in self.seeded.values():
            if vantage != "home" and item.account == self.accounts[vantage]:
                continue
            if not self.readable(persona, item, vantage):
                found[item.id] = f"{item.res.name} (owned by {item.owner})"
        return found

    # -- lists ----------------------------------------------------------------------

    async def list_all(self, route: ResourceRoute, account: str,
                       persona: str) -> tuple[int, list[Any], list[Any]]:
        """Every page of a declared collection: (status, items, raw bodies)."""
        items: list[Any] = []
        bodies: list[Any] = []
        cursor: str | None = None
        for _ in range(100):
            query = route.list_query + (f"&cursor={quote(cursor, safe='')}" if cursor else "")
            path = route.url(account) + (f"?{query.lstrip('&')}" if query else "")
            status, body, ctype = await self.call("get", path, persona)
            self.problem_ok(f"{persona} list {route.label}", status, ctype, body)
            if status != 200 or not isinstance(body, dict):
                return status, items, bodies
            bodies.append(body)
            items.extend(body.get(route.items_field) or [])
            cursor = body.get("next_cursor")
            if not cursor:
                break
        return 200, items, bodies

    def judge_items(self, case: str, persona: str, vantage: str, items: Iterable[Any]) -> None:
        """Tenant fields of listed items must be within the caller's reach."""
        account = self.accounts[vantage]
        solution = self.solution_of[vantage]
        uid = self.persona(persona).uid
        for item in items:
            if not isinstance(item, dict) or "account_id" not in item:
                continue
            scope = item.get("scope")
            ident = item.get("id", "?")
            if scope == "global":
                continue
            if scope == "solution":
                if item.get("solution_id") != solution:
                    self.report.fail(f"{case}: leaks solution item {ident} of another Solution")
                continue
            if item["account_id"] != account:
                self.report.fail(f"{case}: leaks {scope} item {ident} of another account "
                                 f"({item['account_id']})")
            elif scope == "private" and item.get("owner_id") not in (None, uid):
                self.report.fail(f"{case}: leaks another user's private item {ident}")
            if "read_keys" in item or "write_keys" in item:
                self.report.fail(f"{case}: exposes grant keys")

    def judge_ids(self, case: str, body: Any, unreadable: Mapping[str, str]) -> None:
        for value in set(_strings(body)) & set(unreadable):
            self.report.fail(f"{case}: leaks {unreadable[value]} (id {value}), which the "
                             "caller may not read")

    async def check_declared_lists(self, route: ResourceRoute) -> None:
        for persona in self.names:
            status, items, bodies = await self.list_all(route, self.home, persona)
            case = f"{persona} list {route.label}"
            early = gate(persona)
            if early is not None:
                if status != early:
                    self.report.fail(f"{case}: expected {early}, got {status}")
                continue
            if status != 200:
                self.report.fail(f"{case}: expected 200, got {status}")
                continue
            seen = set(_strings(bodies))
            for res in RESOURCES:
                item = await self.shared(route, res, persona)
                if item is not None and may_read(persona, res) and item.id not in seen:
                    self.report.fail(f"{case}: {res.name} is missing although readable")
            self.judge_ids(case, bodies, self.unreadable_ids(persona))
            self.judge_items(case, persona, "home", items)
        for vantage, persona in (("sibling", "ADMIN:sibling"), ("other", "ADMIN:other"),
                                 ("sibling", "SUPERADMIN"), ("other", "SUPERADMIN")):
            if vantage == "other" and not self.other_reachable:
                continue
            status, items, bodies = await self.list_all(route, self.accounts[vantage], persona)
            case = f"{persona} list {route.label} in the {vantage} account"
            if status != 200:
                self.report.fail(f"{case}: expected 200, got {status}")
                continue
            self.judge_ids(case, bodies, self.unreadable_ids(persona, vantage))
            self.judge_items(case, persona, vantage, items)

    async def check_discovered_lists(self) -> None:
        """Every GET route without ids, as every persona, for anything not readable."""
        for route in self.routes:
            if route.method != "GET" or [n for _, n in route.variables] != ["account_id"]:
                continue
            if any(route.rule == r.rule() for r in self.resources):
                self.mark(route, "declared list")
                continue
            for persona in self.names:
                status, body, ctype = await self.call("get", route.fill(self.home), persona)
                case = f"{persona} {route}"
                self.problem_ok(case, status, ctype, body)
                early = gate(persona)
                if early is not None:
                    if status != early:
                        self.report.fail(f"{case}: expected {early}, got {status}")
                    continue
                if status in SUCCESS:
                    self.judge_ids(case, body, self.unreadable_ids(persona))
                    if isinstance(body, dict):
                        for value in body.values():
                            if isinstance(value, list):
                                self.judge_items(case, persona, "home", value)
            self.mark(route, "listed by every persona")

    # -- by id ---------------------------------------------------------------------

    async def missing(self, persona: str, method: str, path_of: Callable[[str], str],
                      body: Any, key: str) -> tuple[int, Any]:
        cache_key = (persona, method, key)
        if cache_key not in self._missing:
            status, answer, _ = await self.call(method, path_of(uuid.uuid4().hex[:24]),
                                                persona, body)
            self._missing[cache_key] = (status, _strip(answer))
        return self._missing[cache_key]

    async def snapshot(self, route: ResourceRoute, item: Seeded) -> Any:
        status, body, _ = await self.call("get", self.item_url(route, item.account, item.id),
                                          item.owner)
        return (status, _strip(body))

    async def check_by_id(self, route: ResourceRoute) -> None:
        """Get and update every seeded item as every persona (items run concurrently)."""
        sequences: dict[str, list[tuple[str, Res, Seeded]]] = {}
        for persona in self.names:
            for res in RESOURCES:
                item = await self.shared(route, res, persona)
                if item is not None:
                    sequences.setdefault(item.id, []).append((persona, res, item))
        await self.gather(self._by_id_sequence(route, steps) for steps in sequences.values())
        self.mark(f"GET {self.item_rule(route)}", "every persona × every scope")
        if route.update_body is not None:
            self.mark(f"{route.update_method.upper()} {self.item_rule(route)}",
                      "every persona × every scope")

    async def _by_id_sequence(self, route: ResourceRoute,
                              steps: list[tuple[str, Res, Seeded]]) -> None:
        """One item, persona after persona: a refused update must leave it unchanged."""
        item = steps[0][2]
        last = await self.snapshot(route, item) if route.update_body is not None else None
        unverified: list[str] = []   # refused updates not yet checked against the store

        async def verify() -> Any:
            now = await self.snapshot(route, item)
            if now != last:
                for case in unverified:
                    self.report.fail(f"{case}: refused but the item changed "
                                     "(cross-scope write)")
            unverified.clear()
            return now

        for persona, res, _ in steps:
            early = gate(persona)
            path = self.item_url(route, self.home, item.id)
            case = f"{persona} get {res.name}"
            status, body, ctype = await self.call("get", path, persona)
            want = early or (200 if may_read(persona, res) else 404)
            self.problem_ok(case, status, ctype, body)
            if status != want:
                leak = " (cross-scope read)" if status in SUCCESS else ""
                self.report.fail(f"{case}: expected {want}, got {status}{leak}")
            elif want == 404:
                await self.same_as_missing(case, persona, "get", route, None, body)

            if route.update_body is None:
                continue
            want = early or (200 if may_write(persona, res) else 404)
            if want == 200 and unverified:
                last = await verify()
            change = route.update_body(f"conformance {persona} {uuid.uuid4().hex[:6]}")
            case = f"{persona} update {res.name}"
            status, body, ctype = await self.call(route.update_method, path, persona, change)
            self.problem_ok(case, status, ctype, body)
            if (status in SUCCESS) != (want == 200) or (status not in SUCCESS
                                                        and status != want):
                leak = " (cross-scope write)" if status in SUCCESS else ""
                self.report.fail(f"{case}: expected {want}, got {status}{leak}")
            if status in SUCCESS:
                last = await self.snapshot(route, item)
            else:
                unverified.append(case)
                if want == status == 404:
                    await self.same_as_missing(case, persona, route.update_method, route,
                                               change, body)
        if unverified:
            await verify()

    async def same_as_missing(self, case: str, persona: str, method: str,
                              route: ResourceRoute, body: Any, answer: Any) -> None:
        missing = await self.missing(persona, method,
                                     lambda i: self.item_url(route, self.home, i), body,
                                     route.collection)
        if _strip(answer) != missing[1]:
            self.report.fail(f"{case}: the 404 differs from a missing id's: {answer}")

    async def check_cross_account(self, route: ResourceRoute) -> None:
        """Home items through other accounts' paths, by their admins and SUPERADMIN."""
        home_items = [r for r in RESOURCES if r.where == "home" and r.creator not in ("SELF",)]
        for vantage in ("sibling", "other"):
            if vantage == "other" and not self.other_reachable:
                continue
            account = self.accounts[vantage]
            for persona in (f"ADMIN:{vantage}", "SUPERADMIN"):
                for res in home_items:
                    item = await self.shared(route, res, "SUPERADMIN" if res.creator == "OTHER"
                                             else persona)
                    if item is None:
                        continue
                    visible = visible_across(res, vantage)
                    path = self.item_url(route, account, item.id)
                    status, _, _ = await self.call("get", path, persona)
                    if status != (200 if visible else 404):
                        leak = " (cross-scope read)" if status in SUCCESS else ""
                        self.report.fail(f"{persona} get home {res.name} via the {vantage} "
                                         f"account: expected {200 if visible else 404}, "
                                         f"got {status}{leak}")
                    if route.update_body is None:
                        continue
                    writes = visible and persona == "SUPERADMIN"
                    status, _, _ = await self.call(route.update_method, path, persona,
                                                   route.update_body("conformance cross"))
                    if (status in SUCCESS) != writes or (not writes and status != 404):
                        leak = " (cross-scope write)" if status in SUCCESS else ""
                        self.report.fail(f"{persona} update home {res.name} via the {vantage} "
                                         f"account: expected {200 if writes else 404}, "
                                         f"got {status}{leak}")

    async def check_delete(self, route: ResourceRoute) -> None:
        """Every persona deletes every kind of item: a fresh one where it should work."""
        if not route.deletable:
            return
        cases = []
        for persona in self.names:
            for res in RESOURCES:
                if not self.supported(route, res):
                    continue
                owner = owner_of(res, persona)
                if res.creator in ("SELF", "OTHER") and owner not in OWNERS:
                    continue
                cases.append((persona, res, owner))
        await self.gather(self._delete_case(route, *case) for case in cases)
        self.mark(f"DELETE {self.item_rule(route)}", "every persona × every scope")

    async def _delete_case(self, route: ResourceRoute, persona: str, res: Res,
                           owner: str) -> None:
        early = gate(persona)
        want = early or (204 if may_write(persona, res) else 404)
        # Refusals are tried on the shared item (it must survive them); successes on a
        # fresh one, so later cases still find the shared items.
        if want == 204:
            item = await self.create(route, res, owner)
        else:
            shared = await self.shared(route, res, persona)
            assert shared is not None
            item = shared
        case = f"{persona} delete {res.name}"
        status, body, ctype = await self.call(
            "delete", self.item_url(route, self.home, item.id), persona)
        self.problem_ok(case, status, ctype, body)
        if (status in SUCCESS) != (want == 204) or (status not in SUCCESS and status != want):
            leak = " (cross-scope write)" if status in SUCCESS else ""
            self.report.fail(f"{case}: expected {want}, got {status}{leak}")
        elif want == 404:
            await self.same_as_missing(case, persona, "delete", route, None, body)
        there, _ = await self.snapshot(route, item)
        if there != 200:
            self.deleted.add(item.id)
        if (there == 200) == (status in SUCCESS):
            self.report.fail(f"{case}: answered {status} but the item "
                             f"{'is still there' if there == 200 else 'is gone'}"
                             + (" (cross-scope write)" if status not in SUCCESS else ""))

    async def check_create(self, route: ResourceRoute) -> None:
        for persona in self.names:
            for key in CREATE_KEYS:
                scope, _, group = key.partition(":")
                if scope not in route.scopes:
                    continue
                group_id = self.groups[group] if group else None
                case = f"{persona} create {key}"
                status, doc, ctype = await self.call(
                    "post", route.url(self.home), persona, route.create_body(scope, group_id))
                want = expected_create(persona, key)
                self.problem_ok(case, status, ctype, doc)
                if status != want:
                    leak = " (cross-scope write)" if status in SUCCESS else ""
                    self.report.fail(f"{case}: expected {want}, got {status}{leak}")
                if status in SUCCESS and isinstance(doc, dict) and route.id_field in doc:
                    self.created.append((route, Seeded(str(doc[route.id_field]), Res(
                        case, scope, group=group or None), self.home, persona)))
                    stamped = {"account_id": self.home, "solution_id": self.solution_of["home"],
                               "owner_id": self.persona(persona).uid, "scope": scope}
                    if group_id:
                        stamped["group_id"] = group_id
                    for name, value in stamped.items():
                        if name in doc and doc[name] != value:
                            self.report.fail(f"{case}: {name} is {doc[name]!r}, not "
                                             f"{value!r} from the request context")
        if "group" in route.scopes:
            for persona in sorted(HOME_ACCESS - NEVER_WRITES):
                status, doc, _ = await self.call(
                    "post", route.url(self.home), persona,
                    route.create_body("group", self.groups["sibling"]))
                if status in SUCCESS:
                    self.report.fail(f"{persona} create in another account's group: {status} "
                                     "(cross-scope write)")
                    if isinstance(doc, dict) and route.id_field in doc:
                        self.created.append((route, Seeded(str(doc[route.id_field]), Res(
                            "foreign group", "group"), self.home, persona)))
        self.mark(f"POST {route.rule()}", "every persona × every scope")

    # -- routes below an item -------------------------------------------------------------

    def item_rule(self, route: ResourceRoute) -> str:
        """The discovered rule of a single item (``<collection>/<var>``)."""
        pattern = re.compile(re.escape(route.rule()) + r"/<(?:\w+(?:\([^)]*\))?:)?\w+>$")
        for candidate in self.routes:
            if pattern.match(candidate.rule):
                return candidate.rule
        return f"{route.rule()}/<id>"

    def item_routes(self, route: ResourceRoute) -> list[tuple[Route, str]]:
        """Discovered routes below ``<collection>/<var>``, with the item variable's name."""
        base = route.rule()
        found = []
        pattern = re.compile(re.escape(base) + r"/<(?:\w+(?:\([^)]*\))?:)?(\w+)>(/.*)?$")
        covered = {"GET", route.update_method.upper() if route.update_body else "GET",
                   "DELETE" if route.deletable else "GET"}
        for candidate in self.routes:
            match = pattern.match(candidate.rule)
            if match and (match.group(2) or candidate.method not in covered):
                found.append((candidate, match.group(1)))
        return found

    async def check_item_routes(self, route: ResourceRoute) -> None:
        """Ids the caller may not read answer like ids that do not exist, on every route."""
        probes = []
        for candidate, var in self.item_routes(route):
            if str(candidate) in self.skip:
                self.mark(candidate, "skipped")
                continue
            body: Any = None if candidate.method in ("GET", "DELETE") else {}
            for action in route.actions:
                if action.method.upper() == candidate.method and candidate.rule.endswith(
                        action.suffix) and action.body is not None:
                    body = action.body()
            for persona in sorted(HOME_ACCESS):
                # One item per kind of unreadable resource is enough.
                kinds: dict[str, tuple[str, str]] = {}
                for item_id, label in self.unreadable_ids(persona).items():
                    kinds.setdefault(label.split(" ")[0], (item_id, label))
                for item_id, label in kinds.values():
                    probes.append((candidate, var, persona, body, item_id, label))
            self.mark(candidate, "unreadable ids by every member persona")
        await self.gather(self._probe(*probe) for probe in probes)

    async def _probe(self, candidate: Route, var: str, persona: str, body: Any, item_id: str,
                     label: str) -> None:
        missing = await self.missing(persona, candidate.method,
                                     lambda i: candidate.fill(self.home, i, var), body,
                                     str(candidate))
        status, answer, ctype = await self.call(
            candidate.method, candidate.fill(self.home, item_id, var), persona, body)
        case = f"{persona} {candidate} with {label}"
        self.problem_ok(case, status, ctype, answer)
        if status in SUCCESS:
            self.report.fail(f"{case}: answered {status} (cross-scope "
                             f"{'read' if candidate.method == 'GET' else 'write'})")
        elif status != missing[0]:
            self.report.fail(f"{case}: answered {status}, but {missing[0]} for an id that "
                             "does not exist (ids can be probed)")

    async def check_actions(self, route: ResourceRoute) -> None:
        """Declared item actions: allowed exactly when the rules table says so."""
        for action in route.actions:
            for persona in self.names:
                early = gate(persona)
                for res in RESOURCES:
                    item = await self.shared(route, res, persona)
                    if item is None:
                        continue
                    allowed = (may_read if action.needs == "read" else may_write)(persona, res)
                    path = self.item_url(route, self.home, item.id) + action.suffix
                    body = action.body() if action.body is not None else None
                    status, answer, ctype = await self.call(action.method, path, persona, body)
                    case = f"{persona} {action.method.upper()} {res.name}{action.suffix}"
                    self.problem_ok(case, status, ctype, answer)
                    if early is not None:
                        if status != early:
                            self.report.fail(f"{case}: expected {early}, got {status}")
                    elif allowed and status not in SUCCESS:
                        self.report.fail(f"{case}: expected success, got {status} {answer}")
                    elif not allowed and status in SUCCESS:
                        kind = "read" if action.needs == "read" else "write"
                        self.report.fail(f"{case}: expected 404, got {status} "
                                         f"(cross-scope {kind})")
                    elif not allowed and not may_read(persona, res) and status != 404:
                        self.report.fail(f"{case}: expected 404, got {status}")
                    elif not allowed and status not in (403, 404):
                        self.report.fail(f"{case}: expected 403 or 404, got {status}")
            self.mark(f"{action.method.upper()} {self.item_rule(route)}{action.suffix}",
                      f"declared action ({action.needs})")

    # -- run -----------------------------------------------------------------------------

    async def run(self) -> ConformanceReport:
        self.routes = [r for r in discover_routes(self.app, self.prefix)
                       if str(r) not in self.skip]
        if not self.routes and not self.resources:
            self.report.fail(f"no routes under {self.prefix}: is the plugin installed?")
            return self.report
        try:
            if self.plugin is not None:
                self._other_enabled = self.plugin in await self._solution_plugins(
                    self.solution_of["other"])
            await self.prepare()
            self._other_enabled = self._other_enabled or (
                self.solution_of["other"] in self.enabled_by_us)
            await self.check_gates()
            for route in self.resources:
                await self.seed(route)
            for route in self.resources:
                await self.check_declared_lists(route)
            await self.check_discovered_lists()
            for route in self.resources:
                await self.check_by_id(route)
                await self.check_cross_account(route)
                await self.check_item_routes(route)
                await self.check_actions(route)
                await self.check_create(route)
                await self.check_delete(route)
        finally:
            await self.restore()
        for discovered in self.routes:
            self.report.routes.setdefault(str(discovered), "gates only")
        return self.report


async def check_tenancy(
    app: Any,
    personas: Personas,
    *,
    plugin: str | None = None,
    resources: Sequence[ResourceRoute] = (),
    prefix: str | None = None,
    enable: bool = True,
    skip_routes: Iterable[str] = (),
) -> ConformanceReport:
    """Drive every route of ``plugin`` as every persona in every scope; report mismatches.

    ``app`` is the serving app (``synergyhub_app``) or any object with
    ``test_client()`` and a Quart ``url_map`` (``.app.url_map`` for a test app).
    ``plugin`` names a feature plugin: its routes are discovered under
    ``/api/v1/accounts/<account_id>/<plugin>`` and, with ``enable``, it is
    enabled for both seeded Solutions for the run (and disabled again after).
    For kernel routes pass ``plugin=None`` and ``prefix`` (or rely on the first
    resource's collection). ``skip_routes`` lists ``"METHOD rule"`` strings not
    to call (say why in your test). Items the run creates are deleted again.
    """
    checker = TenancyConformance(app, personas, plugin=plugin, resources=resources,
                                 prefix=prefix, enable=enable, skip_routes=skip_routes)
    return await checker.run()
