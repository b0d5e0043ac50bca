"""Runs through the AI gateway (FakeAIServer), saving runs, test cases and suites."""

from __future__ import annotations

from typing import Any

import pytest

from core.testing.fake_ai import FakeAIServer
from tests.integration.studio.conftest import MODEL, Studio

pytestmark = pytest.mark.asyncio(loop_scope="session")

CHAT = "/v1/chat/completions"


async def _usage(studio: Studio) -> dict[str, int]:
    docs = await studio.services.db["ai_usage"].find({"account_id": studio.home}).to_list()
    return {k: sum(int(d.get(k, 0)) for d in docs)
            for k in ("requests", "prompt_tokens", "completion_tokens")}


async def test_run_renders_calls_the_gateway_and_stores_a_private_run(
        studio: Studio, fake: FakeAIServer) -> None:
    prompt = await studio.prompt(persona="ACCOUNT_ADMIN", scope="account",
                                 system="You answer in {{ lang }}.",
                                 template="Greet {{ name }}.",
                                 variables=[{"name": "name"}, {"name": "lang", "type": "enum",
                                                               "values": ["English", "French"]}],
                                 temperature=0.3, max_tokens=50)
    before = await _usage(studio)
    fake.next_chat_reply("Bonjour Ann!", chunks=["Bon", "jour ", "Ann!"], usage=(12, 4))
    run = await studio.ok("post", f"/prompts/{prompt['id']}/runs", "MEMBER", json_body={
        "inputs": {"name": "Ann", "lang": "French"}}, status=201)
    assert run["status"] == "completed" and run["output"] == "Bonjour Ann!"
    assert run["scope"] == "private" and run["owner_id"] == studio.personas["MEMBER"].uid
    assert run["version"] == 1 and run["model"] == MODEL and run["finish_reason"] == "stop"
    assert run["usage"] == {"prompt_tokens": 12, "completion_tokens": 4, "total_tokens": 16}
    assert run["messages"] == [{"role": "system", "content": "You answer in French."},
                               {"role": "user", "content": "Greet Ann."}]
    assert run["duration_ms"] >= 0 and run["error"] is None

    sent = fake.requests_to(CHAT)[-1].json
    assert sent["messages"] == run["messages"] and sent["stream"] is True
    assert sent["temperature"] == 0.3 and sent["max_completion_tokens"] == 50
    assert sent["model"] == MODEL
    after = await _usage(studio)
    assert after["requests"] == before["requests"] + 1
    assert after["prompt_tokens"] == before["prompt_tokens"] + 12
    assert after["completion_tokens"] == before["completion_tokens"] + 4

    # The run is the runner's alone until saved.
    assert (await studio.ok("get", f"/runs/{run['id']}", "MEMBER"))["output"] == "Bonjour Ann!"
    await studio.problem("get", f"/runs/{run['id']}", "ACCOUNT_ADMIN", status=404)
    admin_runs = await studio.ok("get", f"/prompts/{prompt['id']}/runs", "ACCOUNT_ADMIN")
    assert run["id"] not in [r["id"] for r in admin_runs["items"]]
    mine = await studio.ok("get", f"/runs?prompt_id={prompt['id']}", "MEMBER")
    assert [r["id"] for r in mine["items"]] == [run["id"]]

    # A MEMBER cannot write account scope, so cannot save into it.
    await studio.problem("post", f"/runs/{run['id']}/save", "MEMBER", status=403)
    # The admin's own run, saved into the prompt's (account) scope, is shared.
    fake.next_chat_reply("Hello Bob!")
    own = await studio.ok("post", f"/prompts/{prompt['id']}/runs", "ACCOUNT_ADMIN", json_body={
        "inputs": {"name": "Bob", "lang": "English"}}, status=201)
    saved = await studio.ok("post", f"/runs/{own['id']}/save", "ACCOUNT_ADMIN", status=201)
    assert saved["scope"] == "account" and saved["source_run_id"] == own["id"]
    assert saved["output"] == "Hello Bob!" and saved["id"] != own["id"]
    seen = await studio.ok("get", f"/runs/{saved['id']}", "VIEWER")
    assert seen["output"] == "Hello Bob!"
    again = await studio.problem("post", f"/runs/{own['id']}/save", "ACCOUNT_ADMIN", status=409)
    assert again["saved_run_id"] == saved["id"]
    await studio.problem("post", f"/runs/{saved['id']}/save", "ACCOUNT_ADMIN", status=409)
    events = await studio.services.db["audit_events"].find(
        {"target": {"$in": [run["id"], saved["id"]]}}, projection={"action": 1}).to_list()
    assert sorted(e["action"] for e in events) == ["studio.run.created", "studio.run.saved"]


async def test_run_of_an_older_version_and_private_prompt(studio: Studio,
                                                         fake: FakeAIServer) -> None:
    prompt = await studio.prompt(template="v1 {{ name }}")
    await studio.ok("post", f"/prompts/{prompt['id']}/versions", json_body={
        "template": "v2 {{ name }}", "variables": [{"name": "name"}], "model": "gpt-pinned"},
        status=201)
    run = await studio.ok("post", f"/prompts/{prompt['id']}/runs", json_body={
        "version": 1, "inputs": {"name": "A"}}, status=201)
    assert run["version"] == 1 and run["messages"][-1]["content"] == "v1 A"
    assert run["output"] == "fake reply to: v1 A"
    run2 = await studio.ok("post", f"/prompts/{prompt['id']}/runs", json_body={
        "inputs": {"name": "B"}}, status=201)
    assert run2["version"] == 2 and fake.requests_to(CHAT)[-1].json["model"] == "gpt-pinned"
    # Private prompt: its runs are already in its scope.
    await studio.problem("post", f"/runs/{run['id']}/save", status=409)


async def test_run_bad_input_and_roles(studio: Studio, fake: FakeAIServer) -> None:
    prompt = await studio.prompt(persona="ACCOUNT_ADMIN", scope="account")
    runs = f"/prompts/{prompt['id']}/runs"
    await studio.problem("post", runs, json_body={"inputs": {}}, status=422)
    await studio.problem("post", runs, json_body={"inputs": {"nope": 1}}, status=422)
    await studio.problem("post", runs, json_body={"version": 7, "inputs": {"name": "x"}},
                         status=404)
    await studio.problem("post", runs, json_body={"inputs": {"name": "x"}, "stream": 1},
                         status=422)
    # VIEWER reads the prompt but writes nothing, not even a private run.
    problem = await studio.problem("post", runs, "VIEWER", json_body={"inputs": {"name": "x"}},
                                   status=403)
    assert "read-only" in problem["detail"]
    problem = await studio.problem("post", f"/prompts/{prompt['id']}/run-tests", "VIEWER",
                                   json_body={}, status=403)
    assert problem["type"].endswith("/read-only")
    # Another account's admin cannot reach the prompt through its own account or ours.
    other = studio.personas.tenants[0].accounts[1]
    await studio.problem("post", runs, f"ADMIN:{other}", json_body={"inputs": {"name": "x"}},
                         status=404)
    await studio.problem("post", runs, f"ADMIN:{other}", json_body={"inputs": {"name": "x"}},
                         status=404, account=other)
    assert fake.requests_to(CHAT) == []


async def test_provider_failure_is_a_502_and_a_failed_run(studio: Studio,
                                                          fake: FakeAIServer) -> None:
    prompt = await studio.prompt()
    fake.fail_next(400, path=CHAT, body={"error": {"message": "bad request sk-secret-123",
                                                   "type": "invalid_request_error"}})
    problem = await studio.problem("post", f"/prompts/{prompt['id']}/runs",
                                   json_body={"inputs": {"name": "x"}}, status=502)
    assert problem["type"].endswith("/ai-upstream-error") and "sk-secret" not in str(problem)
    runs = await studio.ok("get", f"/prompts/{prompt['id']}/runs")
    assert runs["items"][0]["status"] == "failed" and runs["items"][0]["error"]

    # A stream cut before it finished is a failure too, never a complete answer.
    fake.cut_next_stream("partial answer here", after_chunks=1)
    problem = await studio.problem("post", f"/prompts/{prompt['id']}/runs",
                                   json_body={"inputs": {"name": "x"}}, status=502)
    failed = (await studio.ok("get", f"/prompts/{prompt['id']}/runs"))["items"][0]
    assert failed["status"] == "failed" and failed["output"] == "partial "


async def test_without_a_provider_runs_answer_503(client: Any, personas: Any) -> None:
    """The session app has no OPENAI_API_KEY: 503 problem+json, nothing stored."""
    headers = personas["MEMBER"].headers()
    base = f"/api/v1/accounts/{personas.home_account}/studio"
    response = await client.post(f"{base}/prompts", headers=headers, json={
        "title": "t", "template": "hi"})
    assert response.status_code == 201, await response.get_data(as_text=True)
    pid = (await response.get_json())["id"]
    response = await client.post(f"{base}/prompts/{pid}/runs", headers=headers, json={})
    assert response.status_code == 503
    assert response.content_type == "application/problem+json"
    body = await response.get_json()
    assert body["type"].endswith("/ai-not-configured") and "OPENAI_API_KEY" in body["detail"]
    runs = await client.get(f"{base}/runs?prompt_id={pid}", headers=headers)
    assert (await runs.get_json())["items"] == []


# -- test cases and suites -------------------------------------------------------------


async def test_test_case_crud_and_validation(studio: Studio) -> None:
    prompt = await studio.prompt(persona="ACCOUNT_ADMIN", scope="account")
    tests = f"/prompts/{prompt['id']}/tests"
    case = await studio.ok("post", tests, "ACCOUNT_ADMIN", json_body={
        "name": "greets", "inputs": {"name": "Ann"},
        "expectations": [{"kind": "contains", "value": "Ann"},
                         {"kind": "max_length", "value": 100},
                         {"kind": "json", "schema": {"type": "object", "required": ["a"]}},
                         {"kind": "regex", "pattern": r"^fake \w+", "ignore_case": True}]},
        status=201)
    assert case["scope"] == "account" and case["expectations"][2]["schema"]["required"] == ["a"]
    assert case["expectations"][0] == {"kind": "contains", "value": "Ann",
                                       "case_sensitive": False}
    # Readers see test cases; only writers of the prompt change them.
    assert (await studio.ok("get", f"{tests}/{case['id']}", "VIEWER"))["name"] == "greets"
    listed = await studio.ok("get", tests, "MEMBER")
    assert [c["id"] for c in listed["items"]] == [case["id"]]
    await studio.problem("post", tests, "MEMBER", json_body={"name": "x"}, status=403)
    await studio.problem("patch", f"{tests}/{case['id']}", "MEMBER", json_body={"name": "y"},
                         status=404)
    patched = await studio.ok("patch", f"{tests}/{case['id']}", "ACCOUNT_ADMIN",
                              json_body={"name": "renamed", "expectations": []})
    assert patched["name"] == "renamed" and patched["expectations"] == []

    for bad, needle in (
        ({"kind": "regex", "pattern": "(a+)+$"}, "nested quantifiers"),
        ({"kind": "regex", "pattern": r"(x)\1"}, "backreferences"),
        ({"kind": "regex", "pattern": "(a|ab)*c"}, "alternation"),
        ({"kind": "regex", "pattern": "("}, "not a valid regular expression"),
        ({"kind": "regex", "pattern": "a" * 201}, "200"),
        ({"kind": "json", "schema": {"$ref": "http://example.com/s.json"}}, "not supported"),
        ({"kind": "json", "schema": {"type": "strings"}}, "unknown schema type"),
        ({"kind": "contains"}, "value"),
        ({"kind": "max_length", "value": -1}, "greater than or equal"),
        ({"kind": "sql", "value": "x"}, "kind"),
    ):
        problem = await studio.problem("post", tests, "ACCOUNT_ADMIN", json_body={
            "name": "bad", "inputs": {"name": "x"}, "expectations": [bad]}, status=422)
        assert needle in problem["detail"], (bad, problem)
    problem = await studio.problem("post", tests, "ACCOUNT_ADMIN", json_body={
        "name": "bad", "inputs": {"nickname": "x"}}, status=422)
    assert "not a declared variable" in problem["detail"]

    code, _ = await studio.call("delete", f"{tests}/{case['id']}", "ACCOUNT_ADMIN")
    assert code == 204
    await studio.problem("get", f"{tests}/{case['id']}", "ACCOUNT_ADMIN", status=404)
    # A test case is reached only through its own prompt.
    other = await studio.prompt(persona="ACCOUNT_ADMIN", scope="account")
    moved = await studio.ok("post", tests, "ACCOUNT_ADMIN", json_body={
        "name": "c", "inputs": {"name": "x"}}, status=201)
    await studio.problem("get", f"/prompts/{other['id']}/tests/{moved['id']}", "ACCOUNT_ADMIN",
                         status=404)


async def test_run_tests_reports_pass_and_fail_per_case(studio: Studio,
                                                        fake: FakeAIServer) -> None:
    """FakeAIServer answers "fake reply to: <user message>" when nothing is scripted,
    so each case's output is known even though cases run concurrently."""
    prompt = await studio.prompt(template="Say {{ word }}", variables=[{"name": "word"}])
    pid = prompt["id"]
    cases = {
        "contains": ("hello", [{"kind": "contains", "value": "SAY HELLO"}], True),
        "case-sensitive": ("hello", [{"kind": "contains", "value": "SAY HELLO",
                                      "case_sensitive": True}], False),
        "not-contains": ("bye", [{"kind": "not_contains", "value": "hello"}], True),
        "too-long": ("a long answer", [{"kind": "max_length", "value": 10}], False),
        "short-enough": ("hi", [{"kind": "max_length", "value": 100},
                                {"kind": "min_length", "value": 5}], True),
        "regex": ("order 12345", [{"kind": "regex", "pattern": r"order \d{5}$"}], True),
        "regex-miss": ("order x", [{"kind": "regex", "pattern": r"order \d+"}], False),
        "not-json": ("{\"a\": 1}", [{"kind": "json"}], False),
        "no-checks": ("x", [], True),
    }
    ids = {}
    for name, (word, expectations, _) in cases.items():
        case = await studio.ok("post", f"/prompts/{pid}/tests", json_body={
            "name": name, "inputs": {"word": word}, "expectations": expectations}, status=201)
        ids[case["id"]] = name
    report = await studio.ok("post", f"/prompts/{pid}/run-tests", json_body={})
    assert report["version"] == 1 and report["total"] == len(cases)
    outcome = {r["name"]: r["passed"] for r in report["results"]}
    assert outcome == {name: expected for name, (_, _, expected) in cases.items()}
    assert report["passed"] == sum(1 for *_, ok in cases.values() if ok)
    by_name = {r["name"]: r for r in report["results"]}
    assert "not valid JSON" in by_name["not-json"]["checks"][0]["detail"]
    assert by_name["too-long"]["checks"][0]["detail"].startswith("the output has")
    assert len(fake.requests_to(CHAT)) == len(cases)

    # Every case left a private run record, linked to the suite and its verdict.
    runs = await studio.ok("get", f"/runs?suite_id={report['suite_id']}&limit=100")
    assert len(runs["items"]) == len(cases)
    for run in runs["items"]:
        assert run["scope"] == "private" and run["suite_id"] == report["suite_id"]
        assert run["passed"] is (cases[ids[run["test_case_id"]]][2])
    audit = await studio.services.db["audit_events"].find_one(
        {"action": "studio.tests.run", "target": pid})
    assert audit is not None and audit["details"]["total"] == len(cases)


async def test_json_cases_with_schema(studio: Studio, fake: FakeAIServer) -> None:
    prompt = await studio.prompt(template="Give JSON for {{ name }}", json_mode=True)
    pid = prompt["id"]
    schema = {"type": "object", "required": ["name", "age"], "additionalProperties": False,
              "properties": {"name": {"type": "string"},
                             "age": {"type": "integer", "minimum": 0}}}
    await studio.ok("post", f"/prompts/{pid}/tests", json_body={
        "name": "person", "inputs": {"name": "Ann"},
        "expectations": [{"kind": "json", "schema": schema}]}, status=201)

    fake.next_chat_reply('```json\n{"name": "Ann", "age": 41}\n```')
    report = await studio.ok("post", f"/prompts/{pid}/run-tests", json_body={})
    assert report["passed"] == 1, report
    assert fake.requests_to(CHAT)[-1].json["response_format"] == {"type": "json_object"}

    fake.next_chat_reply('{"name": "Ann", "age": -1, "extra": true}')
    report = await studio.ok("post", f"/prompts/{pid}/run-tests", json_body={})
    detail = report["results"][0]["checks"][0]["detail"]
    assert report["failed"] == 1 and "$.age: less than 0" in detail and "'extra'" in detail

    fake.next_chat_reply('{"name": "Ann", "age": 41')  # malformed model JSON
    report = await studio.ok("post", f"/prompts/{pid}/run-tests", json_body={})
    assert report["failed"] == 1
    assert "not valid JSON" in report["results"][0]["checks"][0]["detail"]

    # The provider failing for a case fails that case; the suite still reports.
    fake.fail_next(400, path=CHAT)
    report = await studio.ok("post", f"/prompts/{pid}/run-tests", json_body={})
    assert report["failed"] == 1 and "AI provider failed" in report["results"][0]["error"]


async def test_suite_edge_cases(studio: Studio, fake: FakeAIServer) -> None:
    prompt = await studio.prompt()
    pid = prompt["id"]
    problem = await studio.problem("post", f"/prompts/{pid}/run-tests", json_body={},
                                   status=422)
    assert problem["type"].endswith("/no-test-cases")
    await studio.ok("post", f"/prompts/{pid}/tests", json_body={
        "name": "old inputs", "inputs": {"name": "x"}}, status=201)
    # A later version renames the variable: the old case fails clearly, no model call.
    await studio.ok("post", f"/prompts/{pid}/versions", json_body={
        "template": "Hi {{ who }}", "variables": [{"name": "who"}]}, status=201)
    report = await studio.ok("post", f"/prompts/{pid}/run-tests", json_body={})
    assert report["failed"] == 1 and "not a declared variable" in report["results"][0]["error"]
    assert fake.requests_to(CHAT) == []
    # Against version 1 the case passes.
    report = await studio.ok("post", f"/prompts/{pid}/run-tests", json_body={"version": 1})
    assert report["passed"] == 1
    await studio.problem("post", f"/prompts/{pid}/run-tests", json_body={"version": 9},
                         status=404)
    await studio.problem("post", f"/prompts/{pid}/run-tests", "VIEWER", json_body={},
                         status=404)


async def test_solution_setting_picks_the_model(studio: Studio, fake: FakeAIServer) -> None:
    """A version without a model uses the Solution's studio setting, then the platform's."""
    solution = studio.personas.home_solution
    client = studio.test_app.test_client()
    headers = studio.personas["SOLUTION_ADMIN"].headers()
    response = await client.put(f"/api/v1/solutions/{solution}/plugins/studio", headers=headers,
                                json={"enabled": True, "settings": {"model": "gpt-solution"}})
    assert response.status_code == 200, await response.get_data(as_text=True)
    try:
        prompt = await studio.prompt()
        await studio.ok("post", f"/prompts/{prompt['id']}/runs",
                        json_body={"inputs": {"name": "x"}}, status=201)
        assert fake.requests_to(CHAT)[-1].json["model"] == "gpt-solution"
        # The cascade's Account layer overrides the Solution's choice for that account.
        account = studio.personas.home_account
        response = await client.put(f"/api/v1/accounts/{account}/settings/studio",
                                    json={"values": {"model": "gpt-account"}},
                                    headers=studio.personas["ACCOUNT_ADMIN"].headers())
        assert response.status_code == 200, await response.get_data(as_text=True)
        await studio.ok("post", f"/prompts/{prompt['id']}/runs",
                        json_body={"inputs": {"name": "x"}}, status=201)
        assert fake.requests_to(CHAT)[-1].json["model"] == "gpt-account"
        response = await client.put(f"/api/v1/accounts/{account}/settings/studio",
                                    json={"values": {"model": None}},  # back to "not chosen"
                                    headers=studio.personas["ACCOUNT_ADMIN"].headers())
        assert response.status_code == 200, await response.get_data(as_text=True)
        bad = await client.put(f"/api/v1/solutions/{solution}/plugins/studio", headers=headers,
                               json={"enabled": True, "settings": {"model": "x" * 101}})
        assert bad.status_code == 422
    finally:
        response = await client.put(f"/api/v1/solutions/{solution}/plugins/studio",
                                    headers=headers, json={"enabled": True, "settings": {}})
        assert response.status_code == 200
