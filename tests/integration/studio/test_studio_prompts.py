"""Prompts, versions, diff, restore, variables, sandboxed rendering, tags and search."""

from __future__ import annotations

import asyncio
import uuid
from datetime import timedelta

import pytest

from core.tenancy.models import new_id, utcnow
from tests.integration.studio.conftest import Studio

pytestmark = pytest.mark.asyncio(loop_scope="session")


def words() -> str:
    return uuid.uuid4().hex[:10]


async def test_create_prompt_stores_version_one(studio: Studio) -> None:
    body = await studio.prompt(title="Greeting", description="Says hello", tags=["demo"],
                               system="You are {{ 'kind' }}.", note="first")
    assert body["scope"] == "private" and body["latest_version"] == 1
    assert body["latest"]["number"] == 1 and body["latest"]["note"] == "first"
    assert body["latest"]["template"] == "Hello {{ name }}"
    assert body["latest"]["variables"][0] == {
        "name": "name", "type": "string", "required": True, "default": None, "values": None,
        "max_length": None, "description": ""}
    for hidden in ("read_keys", "write_keys", "search_terms"):
        assert hidden not in body and hidden not in body["latest"]
    again = await studio.ok("get", f"/prompts/{body['id']}")
    assert again["latest"]["id"] == body["latest"]["id"]


async def test_edits_are_new_immutable_versions_with_diff_and_restore(studio: Studio) -> None:
    prompt = await studio.prompt(template="Line one\nHello {{ name }}\n")
    pid = prompt["id"]
    v2 = await studio.ok("post", f"/prompts/{pid}/versions", json_body={
        "template": "Line one\nHi there {{ name }}\n", "variables": [{"name": "name"}],
        "note": "friendlier", "base_version": 1}, status=201)
    assert v2["number"] == 2 and v2["note"] == "friendlier" and v2["id"] != prompt["latest"]["id"]
    v3 = await studio.ok("post", f"/prompts/{pid}/versions", json_body={
        "template": "Hi {{ name }}", "variables": [{"name": "name"}], "temperature": 0.2},
        status=201)
    assert v3["number"] == 3

    # Version 1 is untouched by later edits.
    v1 = await studio.ok("get", f"/prompts/{pid}/versions/1")
    assert v1["template"] == "Line one\nHello {{ name }}\n" and v1["id"] == prompt["latest"]["id"]
    listed = await studio.ok("get", f"/prompts/{pid}/versions?limit=2")
    assert [v["number"] for v in listed["items"]] == [3, 2] and listed["next_cursor"]
    rest = await studio.ok("get", f"/prompts/{pid}/versions?limit=2&cursor={listed['next_cursor']}")
    assert [v["number"] for v in rest["items"]] == [1] and rest["next_cursor"] is None

    diff = await studio.ok("get", f"/prompts/{pid}/diff?from=1&to=2")
    assert diff["changed"] == ["template"]
    assert "--- v1/template\n+++ v2/template\n" in diff["diff"]
    assert "-Hello {{ name }}\n" in diff["diff"] and "+Hi there {{ name }}\n" in diff["diff"]
    settings = await studio.ok("get", f"/prompts/{pid}/diff?from=2&to=3")
    assert "settings" in settings["changed"] and '+  "temperature": 0.2' in settings["diff"]
    same = await studio.ok("get", f"/prompts/{pid}/diff?from=2&to=2")
    assert same["changed"] == [] and same["diff"] == ""

    restored = await studio.ok("post", f"/prompts/{pid}/versions/1/restore", json_body={},
                               status=201)
    assert restored["number"] == 4 and restored["restored_from"] == 1
    assert restored["template"] == v1["template"] and restored["note"] == "Restored from version 1"
    assert (await studio.ok("get", f"/prompts/{pid}/diff?from=1&to=4"))["changed"] == []
    current = await studio.ok("get", f"/prompts/{pid}")
    assert current["latest_version"] == 4 and current["latest"]["number"] == 4

    # An edit based on an old version is refused instead of silently overwriting.
    stale = await studio.problem("post", f"/prompts/{pid}/versions", json_body={
        "template": "x", "base_version": 2}, status=409)
    assert stale["latest_version"] == 4
    await studio.problem("get", f"/prompts/{pid}/versions/99", status=404)
    await studio.problem("post", f"/prompts/{pid}/versions/99/restore", json_body={}, status=404)
    await studio.problem("get", f"/prompts/{pid}/diff?from=1", status=422)


async def test_metadata_edits_do_not_create_versions(studio: Studio) -> None:
    prompt = await studio.prompt(title="Old title")
    patched = await studio.ok("patch", f"/prompts/{prompt['id']}",
                              json_body={"title": "New title", "tags": ["a", "b"]})
    assert patched["title"] == "New title" and patched["tags"] == ["a", "b"]
    assert patched["latest_version"] == 1
    await studio.problem("patch", f"/prompts/{prompt['id']}", json_body={"title": None},
                         status=422)
    await studio.problem("patch", f"/prompts/{prompt['id']}", json_body={"template": "x"},
                         status=422)


async def test_typed_variables_are_checked(studio: Studio) -> None:
    variables = [
        {"name": "topic", "type": "string", "max_length": 20},
        {"name": "count", "type": "number", "required": False, "default": 3},
        {"name": "formal", "type": "boolean", "required": False},
        {"name": "tone", "type": "enum", "values": ["warm", "dry"], "default": "warm"},
    ]
    template = ("Write {{ count }} lines about {{ topic }} in a {{ tone }} tone."
                "{% if formal is defined and formal %} Be formal.{% endif %}")
    prompt = await studio.prompt(template=template, variables=variables)
    render = f"/prompts/{prompt['id']}/render"

    out = await studio.ok("post", render, json_body={"inputs": {"topic": "tea"}})
    assert out["user"] == "Write 3 lines about tea in a warm tone."
    assert out["messages"] == [{"role": "user", "content": out["user"]}]
    out = await studio.ok("post", render, json_body={"inputs": {
        "topic": "tea", "count": 2, "formal": True, "tone": "dry"}})
    assert out["user"] == "Write 2 lines about tea in a dry tone. Be formal."

    for inputs, needle in (
        ({}, "'topic' is required"),
        ({"topic": 5}, "'topic' must be a string"),
        ({"topic": "x" * 21}, "longer than 20"),
        ({"topic": "t", "count": "two"}, "'count' must be a number"),
        ({"topic": "t", "count": True}, "'count' must be a number"),
        ({"topic": "t", "formal": "yes"}, "true or false"),
        ({"topic": "t", "tone": "loud"}, "must be one of"),
        ({"topic": "t", "colour": "red"}, "'colour' is not a declared variable"),
    ):
        problem = await studio.problem("post", render, json_body={"inputs": inputs}, status=422)
        assert needle in problem["detail"], (inputs, problem)
        assert problem["type"].endswith("/invalid-inputs")

    # Declarations themselves are validated.
    for bad, needle in (
        ([{"name": "x", "type": "enum"}], "needs values"),
        ([{"name": "x", "values": ["a"]}], "only enum"),
        ([{"name": "loop"}], "reserved"),
        ([{"name": "1x"}], "pattern"),
        ([{"name": "x", "type": "number", "default": "3"}], "must be a number"),
        ([{"name": "x"}, {"name": "x"}], "unique"),
        ([{"name": "x", "type": "date"}], "type"),
    ):
        problem = await studio.problem("post", "/prompts", json_body={
            "title": "t", "template": "{{ x }}", "variables": bad}, status=422)
        assert needle in str(problem), (bad, problem)


async def test_template_errors_name_the_line(studio: Studio) -> None:
    # Undeclared variable: found when the version is saved.
    problem = await studio.problem("post", "/prompts", json_body={
        "title": "t", "template": "Hi {{ name }}\n\nBye {{ nickname }}",
        "variables": [{"name": "name"}]}, status=422)
    assert problem["line"] == 3 and problem["part"] == "template"
    assert "'nickname'" in problem["detail"] and problem["type"].endswith("/template-error")
    # Syntax error, in the system part.
    problem = await studio.problem("post", "/prompts", json_body={
        "title": "t", "template": "ok", "system": "one\ntwo {% if %}\n"}, status=422)
    assert problem["line"] == 2 and problem["part"] == "system"
    # Undefined at render time (attribute of a value), with the line.
    prompt = await studio.prompt(template="first\n{{ name.first_name }}")
    problem = await studio.problem("post", f"/prompts/{prompt['id']}/render",
                                   json_body={"inputs": {"name": "Ann"}}, status=422)
    assert problem["line"] == 2 and "first_name" in problem["detail"]
    # An optional variable left out and used directly.
    prompt = await studio.prompt(template="a\nb\n{{ extra }}",
                                 variables=[{"name": "extra", "required": False}])
    problem = await studio.problem("post", f"/prompts/{prompt['id']}/render",
                                   json_body={"inputs": {}}, status=422)
    assert problem["line"] == 3 and "'extra' is undefined" in problem["detail"]


async def test_oversized_templates_and_inputs_are_refused(studio: Studio) -> None:
    big = "x" * (20 * 1024 + 1)
    problem = await studio.problem("post", "/prompts", json_body={"title": "t", "template": big},
                                   status=422)
    assert problem["type"].endswith("/template-too-large") and "20 KB" in problem["detail"]
    problem = await studio.problem("post", "/prompts", json_body={
        "title": "t", "template": "ok", "system": "é" * 10_241}, status=422)
    assert problem["part"] == "system" and problem["type"].endswith("/template-too-large")
    await studio.problem("post", "/prompts", json_body={"title": "t", "template": "y" * 50_000},
                         status=422)
    prompt = await studio.prompt()
    problem = await studio.problem("post", f"/prompts/{prompt['id']}/render",
                                   json_body={"inputs": {"name": "n" * 10_001}}, status=422)
    assert "longer than" in str(problem)
    many = {f"v{i}": "x" for i in range(51)}
    await studio.problem("post", f"/prompts/{prompt['id']}/render", json_body={"inputs": many},
                         status=422)


@pytest.mark.parametrize(("template", "needle"), [
    ("{{ ''.__class__.__mro__ }}", "unsafe"),
    ("{{ 'a' * 1000000000 }}", "size limit"),
    ("{{ 9 ** 99999 }}", "bits"),
    ("{{ '{:>999999999}'.format(1) }}", "unsafe"),
    ("{{ '%999999999d' % 1 }}", "not available"),
    ("{{ 'a'|center(999999999) }}", "limited"),
    ("{% for i in range(100000) %}{% endfor %}", "range() is limited"),
    ("{% include 'other' %}", "Error in the template"),
    ("{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
     "took longer than"),
])
async def test_sandbox_refuses_escapes_and_bombs(studio: Studio, template: str,
                                                 needle: str) -> None:
    prompt = await studio.prompt(template=template, variables=[])
    problem = await studio.problem("post", f"/prompts/{prompt['id']}/render",
                                   json_body={"inputs": {}}, status=422)
    assert needle in problem["detail"], problem
    assert problem["part"] == "template"


async def test_tags_search_and_cursor_pagination(studio: Studio) -> None:
    marker = words()
    titles = ["Invoice triage", "Invoice summary", "Contract review", "Meeting notes",
              "Release notes"]
    made = []
    for n, title in enumerate(titles):
        made.append(await studio.prompt(
            persona="ACCOUNT_ADMIN", title=f"{title} {marker}", scope="account",
            tags=[marker, "even" if n % 2 == 0 else "odd"],
            template=f"Body {marker} number{n} {{{{ name }}}}"))
    # Someone else's private prompt with the same words stays invisible to the search.
    await studio.prompt(persona="MEMBER", title=f"Invoice secret {marker}", tags=[marker])

    async def titles_for(query: str, persona: str = "ACCOUNT_ADMIN") -> list[str]:
        body = await studio.ok("get", f"/prompts?{query}", persona)
        return sorted(p["title"].removesuffix(f" {marker}") for p in body["items"])

    assert await titles_for(f"tag={marker}") == sorted(titles)
    assert await titles_for("tag=even") != []
    assert await titles_for(f"q=invoice+{marker}") == ["Invoice summary", "Invoice triage"]
    assert await titles_for(f"q=INVO+{marker}") == ["Invoice summary", "Invoice triage"]
    assert await titles_for(f"q=notes+{marker}") == ["Meeting notes", "Release notes"]
    assert await titles_for(f"q=number3+{marker}") == ["Meeting notes"]  # template body
    assert await titles_for(f"q=invoice+{marker}&tag=odd") == ["Invoice summary"]
    assert await titles_for(f"q=nothing{marker}") == []
    # The MEMBER sees the account prompts and its own private one.
    assert await titles_for(f"q=invoice+{marker}", "MEMBER") == [
        "Invoice secret", "Invoice summary", "Invoice triage"]
    assert await titles_for(f"q=invoice+{marker}&scope=private", "MEMBER") == ["Invoice secret"]
    await studio.problem("get", "/prompts?q=a", "MEMBER", status=422)

    seen: list[str] = []
    cursor = None
    for _ in range(10):
        path = f"/prompts?tag={marker}&limit=2&sort=title" + (f"&cursor={cursor}" if cursor else "")
        page = await studio.ok("get", path, "ACCOUNT_ADMIN")
        assert len(page["items"]) <= 2
        seen += [p["title"] for p in page["items"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == sorted(f"{t} {marker}" for t in titles)

    for bad in ("sort=secret", "limit=0", "limit=1000", "cursor=%%%", "scope=everyone",
                "search_terms=x&%24where=1"):
        code, body = await studio.call("get", f"/prompts?{bad}", "MEMBER")
        assert code in (400, 422), (bad, code, body)
    assert len(made) == len(titles)


async def test_delete_removes_versions_and_test_cases(studio: Studio) -> None:
    prompt = await studio.prompt()
    pid = prompt["id"]
    await studio.ok("post", f"/prompts/{pid}/versions", json_body={"template": "v2 {{ name }}",
                                                                  "variables": [{"name": "name"}]},
                    status=201)
    case = await studio.ok("post", f"/prompts/{pid}/tests", json_body={
        "name": "c", "inputs": {"name": "x"}, "expectations": []}, status=201)
    code, _ = await studio.call("delete", f"/prompts/{pid}")
    assert code == 204
    await studio.problem("get", f"/prompts/{pid}", status=404)
    await studio.problem("get", f"/prompts/{pid}/versions", status=404)
    await studio.problem("get", f"/prompts/{pid}/tests/{case['id']}", status=404)
    assert await studio.services.db["studio_prompt_versions"].count_documents(
        {"prompt_id": pid}) == 0
    assert await studio.services.db["studio_test_cases"].count_documents({"prompt_id": pid}) == 0


async def test_writes_are_audited(studio: Studio) -> None:
    prompt = await studio.prompt()
    pid = prompt["id"]
    await studio.ok("post", f"/prompts/{pid}/versions/1/restore", json_body={}, status=201)
    await studio.ok("patch", f"/prompts/{pid}", json_body={"tags": ["x"]})
    await studio.call("delete", f"/prompts/{pid}")
    events = await studio.services.db["audit_events"].find(
        {"target": pid}, projection={"action": 1, "actor": 1, "account_id": 1}).to_list()
    actions = [e["action"] for e in events]
    assert actions == ["studio.prompt.created", "studio.version.restored",
                       "studio.prompt.updated", "studio.prompt.deleted"]
    assert {e["actor"] for e in events} == {studio.personas["MEMBER"].uid}
    assert {e["account_id"] for e in events} == {studio.home}


async def test_malformed_requests_answer_problem_json(studio: Studio) -> None:
    code, body = await studio.call("post", "/prompts", raw=b"{not json")
    assert code in (400, 422) and body["detail"]
    await studio.problem("post", "/prompts", json_body={"title": "t", "template": "x",
                                                        "account_id": "x"}, status=422)
    await studio.problem("post", "/prompts", json_body={"title": "t", "template": "x",
                                                        "owner_id": "me"}, status=422)
    await studio.problem("post", "/prompts", json_body={"title": "", "template": "x"},
                         status=422)
    await studio.problem("get", "/prompts/not-an-id", status=404)
    await studio.problem("get", "/prompts/0123456789abcdef01234567", status=404)
    await studio.problem("post", "/prompts", "ANONYMOUS",
                         json_body={"title": "t", "template": "x"}, status=401)


async def test_concurrent_edits_never_share_a_version_number(studio: Studio) -> None:
    prompt = await studio.prompt()
    pid = prompt["id"]

    async def edit(n: int) -> int:
        code, _ = await studio.call("post", f"/prompts/{pid}/versions", json_body={
            "template": f"edit {n} {{{{ name }}}}", "variables": [{"name": "name"}]})
        return code

    for _ in range(3):
        codes = await asyncio.gather(*(edit(n) for n in range(4)))
        assert set(codes) <= {201, 409}, codes
    listed = await studio.ok("get", f"/prompts/{pid}/versions?limit=100")
    numbers = [v["number"] for v in listed["items"]]
    assert numbers == list(range(len(numbers), 0, -1)), numbers  # unique and gap-free
    current = await studio.ok("get", f"/prompts/{pid}")
    assert current["latest_version"] == numbers[0]
    assert current["latest"]["id"] == listed["items"][0]["id"]


async def test_a_lost_latest_version_update_heals(studio: Studio) -> None:
    """A version stored while the prompt's latest_version update was lost (crash between
    the two writes) is counted once it has settled, instead of blocking every edit."""
    prompt = await studio.prompt()
    versions = studio.services.db["studio_prompt_versions"]
    v1 = await versions.find_one({"prompt_id": prompt["id"], "number": 1})
    orphan = {**v1, "_id": new_id(), "number": 2, "created_at": utcnow() - timedelta(hours=1)}
    await versions.insert_one(orphan)
    made = await studio.ok("post", f"/prompts/{prompt['id']}/versions", json_body={
        "template": "after {{ name }}", "variables": [{"name": "name"}]}, status=201)
    assert made["number"] == 3
    assert (await studio.ok("get", f"/prompts/{prompt['id']}"))["latest_version"] == 3
