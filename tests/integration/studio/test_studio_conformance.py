"""Tenancy conformance of the studio API: every persona × every scope × every operation.

Expected outcomes are written out from the rules table of ARCHITECTURE §3 (not computed
with ``can_read``/``can_write``): prompts, their versions and test cases share the
prompt's scope; runs are private to the runner. Each test collects every mismatch and
fails once, listing all of them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import pytest

from tests.integration.studio.conftest import Studio

pytestmark = pytest.mark.asyncio(loop_scope="session")

HOME = frozenset({"SUPERADMIN", "SOLUTION_ADMIN", "ACCOUNT_ADMIN", "MEMBER", "VIEWER",
                  "GROUP_ADMIN", "GROUP_MEMBER"})


@dataclass(frozen=True)
class Case:
    name: str
    scope: str
    creator: str
    group: str | None = None  # "home" | "home2"
    readers: frozenset[str] = frozenset()
    writers: frozenset[str] = frozenset()


CASES = (
    Case("global", "global", "SUPERADMIN", readers=HOME, writers=frozenset({"SUPERADMIN"})),
    Case("solution", "solution", "SOLUTION_ADMIN", readers=HOME,
         writers=frozenset({"SUPERADMIN", "SOLUTION_ADMIN"})),
    Case("account", "account", "ACCOUNT_ADMIN", readers=HOME,
         writers=frozenset({"SUPERADMIN", "SOLUTION_ADMIN", "ACCOUNT_ADMIN"})),
    Case("group", "group", "GROUP_ADMIN", group="home",
         readers=frozenset({"SUPERADMIN", "SOLUTION_ADMIN", "ACCOUNT_ADMIN", "GROUP_ADMIN",
                            "GROUP_MEMBER"}),
         writers=frozenset({"SUPERADMIN", "SOLUTION_ADMIN", "ACCOUNT_ADMIN", "GROUP_ADMIN"})),
    Case("group2", "group", "ACCOUNT_ADMIN", group="home2",
         readers=frozenset({"SUPERADMIN", "SOLUTION_ADMIN", "ACCOUNT_ADMIN"}),
         writers=frozenset({"SUPERADMIN", "SOLUTION_ADMIN", "ACCOUNT_ADMIN"})),
    Case("private", "private", "MEMBER", readers=frozenset({"MEMBER"}),
         writers=frozenset({"MEMBER"})),
    Case("private-of-admin", "private", "ACCOUNT_ADMIN",
         readers=frozenset({"ACCOUNT_ADMIN"}), writers=frozenset({"ACCOUNT_ADMIN"})),
)
ACTORS = (*sorted(HOME), "OUTSIDER", "ANONYMOUS", "SIBLING_ADMIN", "OTHER_ADMIN")


class Harness:
    def __init__(self, studio: Studio) -> None:
        self.studio = studio
        tenants = studio.personas.tenants
        self.sibling = tenants[0].accounts[1]
        self.other = tenants[1].accounts[0]
        self.groups = {"home": studio.personas.home_group,
                       "home2": tenants[0].groups[studio.home][1]}
        self.marker = uuid.uuid4().hex[:10]
        self.ids: dict[str, str] = {}
        self.problems: list[str] = []

    def persona(self, actor: str) -> str:
        return {"SIBLING_ADMIN": f"ADMIN:{self.sibling}",
                "OTHER_ADMIN": f"ADMIN:{self.other}"}.get(actor, actor)

    def expect(self, what: str, got: int, want: int) -> None:
        if got != want:
            self.problems.append(f"{what}: got {got}, expected {want}")

    async def seed(self) -> None:
        for case in CASES:
            body = {"title": f"conf {case.name}", "tags": [self.marker], "scope": case.scope,
                    "template": "Hi {{ name }}", "variables": [{"name": "name"}]}
            if case.group:
                body["group_id"] = self.groups[case.group]
            prompt = await self.studio.ok("post", "/prompts", case.creator, json_body=body,
                                          status=201)
            self.ids[case.name] = prompt["id"]
            await self.studio.ok("post", f"/prompts/{prompt['id']}/tests", case.creator,
                                 json_body={"name": "t", "inputs": {"name": "x"}}, status=201)


@pytest.fixture(scope="module")
def harness_state() -> dict[str, Harness]:
    return {}


async def harness(studio: Studio, state: dict[str, Harness]) -> Harness:
    if "h" not in state:
        h = Harness(studio)
        await h.seed()
        state["h"] = h
    h = state["h"]
    h.problems = []
    return h


def read_status(actor: str, case: Case, account: str, h: Harness) -> int:
    if actor == "ANONYMOUS":
        return 401
    if account == h.studio.home:
        if actor not in HOME:
            return 404  # no access to the home account at all
        return 200 if actor in case.readers else 404
    # Acting in their own account: only global and (same-Solution) solution prompts reach.
    if case.scope == "global":
        return 200
    if case.scope == "solution" and account == h.sibling:
        return 200
    return 404


def own_account(actor: str, h: Harness) -> str:
    return {"SIBLING_ADMIN": h.sibling, "OTHER_ADMIN": h.other}.get(actor, h.studio.home)


async def test_reads_lists_and_search(studio: Studio, harness_state: dict[str, Harness]) -> None:
    h = await harness(studio, harness_state)
    for actor in ACTORS:
        account = own_account(actor, h)
        persona = h.persona(actor)
        visible = set()
        for case in CASES:
            pid = h.ids[case.name]
            want = read_status(actor, case, account, h)
            if want == 200:
                visible.add(pid)
            for path in (f"/prompts/{pid}", f"/prompts/{pid}/versions",
                         f"/prompts/{pid}/versions/1", f"/prompts/{pid}/tests",
                         f"/prompts/{pid}/diff?from=1&to=1"):
                code, _ = await studio.call("get", path, persona, account=account)
                h.expect(f"{actor} GET {path} [{case.name}]", code, want)
            code, _ = await studio.call("post", f"/prompts/{pid}/render", persona,
                                        json_body={"inputs": {"name": "x"}}, account=account)
            h.expect(f"{actor} render [{case.name}]", code, want)
        if actor == "ANONYMOUS":
            continue
        for query in (f"tag={h.marker}", f"q=conf+{h.marker}"):
            code, body = await studio.call("get", f"/prompts?{query}&limit=100", persona,
                                           account=account)
            listed = {p["id"] for p in body["items"]} if code == 200 else set()
            want_code = 404 if actor == "OUTSIDER" else 200
            h.expect(f"{actor} list ?{query} status", code, want_code)
            if listed != visible:
                names = {v: k for k, v in h.ids.items()}
                h.problems.append(f"{actor} list ?{query}: got {sorted(names[i] for i in listed)}"
                                  f", expected {sorted(names[i] for i in visible)}")
    assert not h.problems, "\n".join(h.problems)


async def test_writes_follow_the_scope(studio: Studio,
                                       harness_state: dict[str, Harness]) -> None:
    h = await harness(studio, harness_state)
    for actor in ACTORS:
        account = own_account(actor, h)
        persona = h.persona(actor)
        for case in CASES:
            pid = h.ids[case.name]
            readable = read_status(actor, case, account, h)
            writable = account == studio.home and actor in case.writers
            want = 201 if writable else (403 if readable == 200 else readable)
            code, body = await studio.call("post", f"/prompts/{pid}/versions", persona,
                                           json_body={"template": f"by {actor}"},
                                           account=account)
            h.expect(f"{actor} new version [{case.name}]", code, want)
            code, _ = await studio.call("post", f"/prompts/{pid}/tests", persona, json_body={
                "name": actor, "inputs": {}}, account=account)
            h.expect(f"{actor} new test case [{case.name}]", code, want)
            code, _ = await studio.call("patch", f"/prompts/{pid}", persona,
                                        json_body={"description": actor}, account=account)
            # Updates and deletes outside the write filter answer 404 (docs/decisions.md).
            h.expect(f"{actor} patch [{case.name}]", code, 200 if writable else
                     (404 if readable == 200 else readable))
            if not writable:
                code, _ = await studio.call("delete", f"/prompts/{pid}", persona,
                                            account=account)
                h.expect(f"{actor} delete [{case.name}]", code,
                         404 if readable == 200 else readable)
        # Creating in each scope (group: home group) from the actor's own context.
        if actor in ("ANONYMOUS", "OUTSIDER"):
            continue
        for case in CASES[:5]:
            if account != studio.home:
                continue
            body = {"title": "new", "template": "x", "scope": case.scope}
            if case.group:
                body["group_id"] = h.groups[case.group]
            code, created = await studio.call("post", "/prompts", persona, json_body=body,
                                              account=account)
            h.expect(f"{actor} create {case.name}", code, 201 if actor in case.writers else 403)
            if code == 201:
                await studio.call("delete", f"/prompts/{created['id']}", persona)
    assert not h.problems, "\n".join(h.problems)


async def test_runs_are_private_to_the_runner(studio: Studio,
                                              harness_state: dict[str, Harness]) -> None:
    h = await harness(studio, harness_state)
    runs: dict[str, str] = {}
    for actor in sorted(HOME):
        for case in CASES:
            pid = h.ids[case.name]
            code, body = await studio.call("post", f"/prompts/{pid}/runs", actor,
                                           json_body={"version": 1, "inputs": {"name": actor}})
            if actor not in case.readers:
                h.expect(f"{actor} run [{case.name}]", code, 404)
            elif actor == "VIEWER":
                h.expect(f"{actor} run [{case.name}]", code, 403)
            else:
                h.expect(f"{actor} run [{case.name}]", code, 201)
                if code == 201:
                    runs[f"{actor}/{case.name}"] = body["id"]
    for key, run_id in runs.items():
        runner = key.split("/")[0]
        for actor in (*sorted(HOME), "SIBLING_ADMIN"):
            code, _ = await studio.call("get", f"/runs/{run_id}", h.persona(actor),
                                        account=own_account(actor, h))
            h.expect(f"{actor} GET run of {key}", code, 200 if actor == runner else 404)
            if actor != runner:
                code, _ = await studio.call("post", f"/runs/{run_id}/save", h.persona(actor),
                                            account=own_account(actor, h))
                h.expect(f"{actor} save run of {key}", code, 404)
    assert not h.problems, "\n".join(h.problems)
