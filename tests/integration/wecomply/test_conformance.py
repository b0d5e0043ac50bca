"""Tenancy conformance of WeComply: the kernel's check, plus the sources matrix it cannot seed.

``core.testing.conformance.check_tenancy`` drives every WeComply route as every
persona: policies are declared (created in account and group scope over HTTP,
updated, versioned), every other route is discovered and probed with ids the
caller may not read. Sources need an uploaded kernel document per item, which
the check's synchronous body factories cannot make, so this module seeds one
source per scope itself and checks the same rules table for them by hand —
including that a source never grounds an answer for someone who may not read it.
"""

from __future__ import annotations

from typing import Any

import pytest
import pytest_asyncio

from core.testing.conformance import (
    READERS,
    WRITERS,
    Action,
    ResourceRoute,
    check_tenancy,
    scoped_body,
)
from tests.integration.wecomply.support import TEXT, WeComplyApp, ok, problem

pytestmark = pytest.mark.asyncio(loop_scope="session")

MEMBERS_HERE = ("SUPERADMIN", "SOLUTION_ADMIN", "ACCOUNT_ADMIN", "MEMBER", "VIEWER",
                "GROUP_ADMIN", "GROUP_MEMBER")
# Who may ask at all: asking stores a private record, and VIEWERs write nothing.
ASKERS = tuple(p for p in MEMBERS_HERE if p != "VIEWER")


async def test_kernel_conformance_check_passes_for_wecomply(wc: WeComplyApp) -> None:
    policies = ResourceRoute(
        collection="/api/v1/accounts/{account_id}/wecomply/policies",
        create_body=scoped_body({"title": "Conformance policy", "body": "Read me."}),
        update_body=lambda marker: {"title": marker[:200]},
        deletable=False,  # policies are retired, never deleted (compliance records)
        scopes=("account", "group"),
        actions=(Action("post", "/versions", "write", body=lambda: {"body": "Version 2."}),
                 Action("get", "/versions", "read"),
                 Action("get", "/attestations", "read")),
        name="policies",
    )
    report = await check_tenancy(wc.test_app, wc.personas, plugin="wecomply",
                                 resources=[policies])
    print(report.summary())
    report.assert_ok()
    assert report.requests > 500
    assert any("POST" in r and "/ask" in r for r in report.routes)


SCOPES = {  # key → (creator, document scope, group, a word only that source contains)
    "account": ("ACCOUNT_ADMIN", "account", None, "quasaralpha"),
    "group:home": ("GROUP_ADMIN", "group", "home", "quasarbravo"),
    "group:home2": ("ACCOUNT_ADMIN", "group", "home2", "quasarcharlie"),
    "private": ("MEMBER", "private", None, "quasardelta"),
}


def reads(persona: str, key: str) -> bool:
    if key == "private":
        return persona == "MEMBER"  # the owner only, not even SUPERADMIN
    return persona in READERS[key]


def writes(persona: str, key: str) -> bool:
    if key == "private":
        return persona == "MEMBER"
    return persona in WRITERS[key]


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def sources(wc: WeComplyApp) -> dict[str, dict[str, Any]]:
    groups = {"home": wc.personas.home_group,
              "home2": wc.personas.tenants[0].groups[wc.account][1]}
    out = {}
    for key, (creator, scope, group, word) in SCOPES.items():
        out[key] = await wc.source(creator, f"The {word} procedure is documented here.".encode(),
                                   TEXT, title=f"SoT {key}", scope=scope,
                                   group_id=groups[group] if group else None)
        out[key]["word"] = word
    return out


async def test_sources_are_read_listed_and_deleted_exactly_by_the_rules(
        wc: WeComplyApp, sources: dict[str, dict[str, Any]]) -> None:
    failures = []
    for persona in MEMBERS_HERE:
        listed = await ok(await wc.get(persona, "sources?limit=100"))
        ids = {s["id"] for s in listed["items"]}
        for key, source in sources.items():
            want = reads(persona, key)
            got = await wc.get(persona, f"sources/{source['id']}")
            chunks = await wc.get(persona, f"sources/{source['id']}/chunks")
            if (got.status_code == 200) != want or (chunks.status_code == 200) != want:
                failures.append(f"{persona} read {key}: {got.status_code}/{chunks.status_code}")
            if (source["id"] in ids) != want:
                failures.append(f"{persona} list {key}: listed={source['id'] in ids}")
            if not writes(persona, key):
                deleted = await wc.delete(persona, f"sources/{source['id']}")
                if deleted.status_code != 404:
                    failures.append(f"{persona} delete {key}: {deleted.status_code}")
    assert failures == []
    for source in sources.values():  # nothing was deleted by anyone without the right
        assert await wc.services.db["wecomply_sources"].count_documents({"_id": source["id"]})
    for persona in ("OUTSIDER", "ANONYMOUS"):
        for source in sources.values():
            await problem(await wc.get(persona, f"sources/{source['id']}"),
                          401 if persona == "ANONYMOUS" else 404)


async def test_a_source_grounds_answers_only_for_its_readers(
        wc: WeComplyApp, sources: dict[str, dict[str, Any]]) -> None:
    failures = []
    for persona in ASKERS:
        for key, source in sources.items():
            wc.fake.reset()
            wc.answer(f"See [1] ({source['word']}).", [1])
            answer = await ok(await wc.post(persona, "ask", {
                "question": f"How does the {source['word']} procedure work?"}), 201)
            sent = "".join(str(r.json) for r in wc.chat_requests())
            grounded = answer["status"] == "answered"
            if grounded != reads(persona, key):
                failures.append(f"{persona} ask about {key}: {answer['status']}")
            if not reads(persona, key) and source["word"] in sent:
                failures.append(f"{persona} ask about {key}: its text reached the model")
            if grounded and answer["citations"][0]["source_id"] != source["id"]:
                failures.append(f"{persona} ask about {key}: cited {answer['citations']}")
    wc.fake.reset()
    assert failures == []


async def test_questions_are_private_to_the_asker(wc: WeComplyApp,
                                                  sources: dict[str, dict[str, Any]]) -> None:
    mine = await ok(await wc.post("GROUP_MEMBER", "ask",
                                  {"question": "Anything about unicorn parking?"}), 201)
    for persona in MEMBERS_HERE:
        response = await wc.get(persona, f"questions/{mine['id']}")
        listed = await ok(await wc.get(persona, "questions?limit=100"))
        visible = mine["id"] in {q["id"] for q in listed["items"]}
        assert (response.status_code == 200) == (persona == "GROUP_MEMBER"), persona
        assert visible == (persona == "GROUP_MEMBER"), persona
        assert all(q["owner_id"] == wc.personas[persona].uid for q in listed["items"])
