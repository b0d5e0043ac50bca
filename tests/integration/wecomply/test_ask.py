"""Ask over HTTP: grounded answers with citations, refusals without an AI call, cross-scope.

The AI provider is FakeAIServer reached by the real openai SDK through the
kernel gateway; each test scripts the model's reply and inspects what was sent.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
import pytest_asyncio

from tests.integration.wecomply.support import MARKDOWN, TEXT, WeComplyApp, ok, problem

pytestmark = pytest.mark.asyncio(loop_scope="session")

REMOTE = b"""# Handbook

## Remote work

Staff may work remotely up to three days per week. Managers approve exceptions in writing.

## Expenses

Receipts are required for every expense above 25 euros.
"""
CARDIOLOGY = b"# Cardiology\n\nThe zebracorn defibrillator is checked every Monday at 7am."


@pytest_asyncio.fixture(scope="module", loop_scope="session")
async def corpus(wc: WeComplyApp) -> dict[str, Any]:
    """An account-wide handbook and a Cardiology-only procedure."""
    handbook = await wc.source("ACCOUNT_ADMIN", REMOTE, MARKDOWN, title="Handbook")
    cardio = await wc.source("GROUP_ADMIN", CARDIOLOGY, MARKDOWN, title="Cardiology SOP",
                             scope="group", group_id=wc.personas.home_group)
    return {"handbook": handbook, "cardio": cardio}


async def ask(wc: WeComplyApp, who: str, question: str) -> Any:
    return await wc.post(who, "ask", {"question": question})


def sent_sources(request: Any) -> str:
    messages = request.json["messages"]
    assert messages[0]["role"] == "system" and "ONLY" in messages[0]["content"]
    return str(messages[-1]["content"])


async def test_answer_is_grounded_and_cites_document_and_chunk(
        wc: WeComplyApp, corpus: dict[str, Any]) -> None:
    wc.answer("Up to three days per week [1].", [1])
    answer = await ok(await ask(wc, "MEMBER", "How many days can I work remotely?"), 201)
    assert answer["status"] == "answered" and answer["answer"] == "Up to three days per week [1]."
    assert answer["scope"] == "private" and answer["refusal_reason"] is None
    [cite] = answer["citations"]
    handbook = corpus["handbook"]
    assert (cite["document_id"], cite["source_id"]) == (handbook["document_id"], handbook["id"])
    assert cite["chunk"] == 0 and cite["heading"] == "Handbook › Remote work"
    assert cite["title"] == "Handbook" and cite["excerpt"].startswith("Staff may work remotely")
    chunk = (await ok(await wc.get("MEMBER", f"sources/{handbook['id']}/chunks")))["items"][0]
    assert cite["chunk_id"] == chunk["id"]
    assert answer["model"] == "gpt-wecomply-test" and answer["prompt_tokens"] > 0

    [request] = wc.chat_requests()
    assert request.json["response_format"] == {"type": "json_object"}
    prompt = sent_sources(request)
    assert "[1] Handbook › Handbook › Remote work" in prompt
    assert "Staff may work remotely" in prompt and "zebracorn" not in prompt
    assert "How many days can I work remotely?" in prompt

    # History is the asker's alone.
    mine = await ok(await wc.get("MEMBER", "questions"))
    assert answer["id"] in [q["id"] for q in mine["items"]]
    await problem(await wc.get("ACCOUNT_ADMIN", f"questions/{answer['id']}"), 404)
    await problem(await wc.get("SUPERADMIN", f"questions/{answer['id']}"), 404)
    theirs = await ok(await wc.get("ACCOUNT_ADMIN", "questions"))
    assert answer["id"] not in [q["id"] for q in theirs["items"]]
    usage = await ok(await wc.client().get(f"/api/v1/accounts/{wc.account}/ai/usage",
                                           headers=wc.personas["ACCOUNT_ADMIN"].headers()))
    assert usage["totals"]["requests"] >= 1  # metered to the account by the gateway


async def test_nothing_relevant_is_refused_without_calling_the_model(
        wc: WeComplyApp, corpus: dict[str, Any]) -> None:
    for question in ("What is the parking policy for visitors?", "the and of what how?"):
        refused = await ok(await ask(wc, "MEMBER", question), 201)
        assert refused["status"] == "refused" and refused["citations"] == []
        assert refused["refusal_reason"] == "no-relevant-sources"
        assert "can't answer" in refused["answer"]
    assert wc.chat_requests() == []
    history = await ok(await wc.get("MEMBER", "questions?status=refused"))
    assert len(history["items"]) >= 2


async def test_model_saying_not_found_is_a_refusal(wc: WeComplyApp, corpus: dict[str, Any]
                                                   ) -> None:
    wc.answer("", [], found=False)
    refused = await ok(await ask(wc, "MEMBER", "Which expenses need receipts?"), 201)
    assert (refused["status"], refused["refusal_reason"]) == ("refused", "not-in-sources")
    assert len(wc.chat_requests()) == 1


async def test_group_source_never_grounds_an_answer_for_a_non_member(
        wc: WeComplyApp, corpus: dict[str, Any]) -> None:
    question = "When is the zebracorn defibrillator checked?"
    wc.answer("Every Monday at 7am [1].", [1])
    inside = await ok(await ask(wc, "GROUP_MEMBER", question), 201)
    assert inside["citations"][0]["document_id"] == corpus["cardio"]["document_id"]
    assert "zebracorn" in sent_sources(wc.chat_requests()[0])

    # A MEMBER of the account outside the group: refused, and the model is never called.
    wc.fake.reset()
    wc.answer("Every Monday at 7am [1].", [1])  # would be used if anything leaked
    refused = await ok(await ask(wc, "MEMBER", question), 201)
    assert refused["status"] == "refused" and refused["citations"] == []
    assert wc.chat_requests() == []
    await problem(await wc.get("MEMBER", f"sources/{corpus['cardio']['id']}/chunks"), 404)
    # Admins above the group read it, so it grounds their answers.
    wc.fake.reset()
    wc.answer("Mondays [1].", [1])
    admin = await ok(await ask(wc, "ACCOUNT_ADMIN", question), 201)
    assert admin["status"] == "answered"
    # Another account of the same Solution never sees it either.
    other = wc.personas.tenants[0].accounts[1]
    wc.fake.reset()
    refused = await ok(await wc.post(wc.personas[f"ADMIN:{other}"], "ask",
                                     {"question": question}, account=other), 201)
    assert refused["status"] == "refused" and wc.chat_requests() == []


async def test_malformed_model_output_is_a_clear_error_and_stores_nothing(
        wc: WeComplyApp, corpus: dict[str, Any]) -> None:
    before = await wc.services.db["wecomply_questions"].count_documents({})
    question = "How many days can I work remotely?"
    for reply in ("Sure! Three days, I think.", '{"found": true, "answer": "Three', "[1, 2]",
                  json.dumps({"found": True, "answer": "Three days.", "citations": [9]}),
                  json.dumps({"found": "maybe", "answer": 3})):
        wc.fake.next_chat_reply(reply)
        body = await problem(await ask(wc, "MEMBER", question), 502, "ai-output-error")
        assert "nothing was stored" in body["detail"] or "JSON" in body["detail"]
    assert await wc.services.db["wecomply_questions"].count_documents({}) == before


async def test_provider_failure_is_a_problem_not_a_500(wc: WeComplyApp,
                                                       corpus: dict[str, Any]) -> None:
    wc.fake.fail_next(401, times=5)
    body = await problem(await ask(wc, "MEMBER", "How many days can I work remotely?"), 502)
    assert wc.fake.openai_key not in json.dumps(body)


async def test_bad_questions_are_4xx(wc: WeComplyApp, corpus: dict[str, Any]) -> None:
    too_long = await problem(await ask(wc, "MEMBER", "remote " * 400), 422)
    assert too_long["errors"][0]["field"] == "question"
    assert "2000" in too_long["errors"][0]["message"]
    await problem(await ask(wc, "MEMBER", ""), 422)
    await problem(await ask(wc, "MEMBER", "   \n  "), 422)
    await problem(await wc.post("MEMBER", "ask", {"question": "x", "scope": "account"}), 422)
    await problem(await wc.post("MEMBER", "ask", {"question": {"$gt": ""}}), 422)
    await problem(await wc.post("MEMBER", "ask", ["question"]), 422)
    viewer = await problem(await ask(wc, "VIEWER", "How many days remote?"), 403,
                           "ask-forbidden")
    assert "VIEWER" in viewer["detail"]
    await problem(await wc.client().post(wc.url("ask"), json={"question": "x"}), 401)
    assert wc.chat_requests() == []


async def test_ai_not_configured_answers_503(client: Any, personas: Any,
                                             synergyhub_services: Any) -> None:
    """The session app has no AI provider: grounded questions answer 503 problem+json."""
    assert synergyhub_services.ai is None or synergyhub_services.ai.default_config is None
    admin = personas["ACCOUNT_ADMIN"]
    base = f"/api/v1/accounts/{personas.home_account}"
    created = await ok(await client.post(f"{base}/documents", headers=admin.headers(), json={
        "title": "Rules", "content_type": TEXT, "size": len(b"Quokka feeding rules."),
        "scope": "account"}), 201)
    if synergyhub_services.storage is None:
        pytest.skip("storage is not configured in the session app")
    import httpx

    signed = await ok(await client.post(f"{base}/documents/{created['id']}/upload-url",
                                        headers=admin.headers()))
    async with httpx.AsyncClient(trust_env=False) as http:
        await http.put(signed["url"], content=b"Quokka feeding rules.",
                       headers=signed["headers"])
    await ok(await client.post(f"{base}/documents/{created['id']}/complete",
                               headers=admin.headers()))
    await ok(await client.post(f"{base}/wecomply/sources", headers=admin.headers(),
                               json={"document_id": created["id"]}), 201)
    body = await problem(await client.post(f"{base}/wecomply/ask", headers=admin.headers(),
                                           json={"question": "What are the quokka rules?"}),
                         503)
    assert "OPENAI_API_KEY" in body["detail"] or "AI" in body["detail"]
    # Nothing relevant still refuses without needing the provider.
    refused = await ok(await client.post(f"{base}/wecomply/ask", headers=admin.headers(),
                                         json={"question": "Parking for visitors?"}), 201)
    assert refused["status"] == "refused"


async def test_a_deleted_document_no_longer_grounds_answers(wc: WeComplyApp,
                                                            corpus: dict[str, Any]) -> None:
    admin = wc.personas["ACCOUNT_ADMIN"]
    source = await wc.source(admin, b"The narwhal badge opens the east door.", TEXT,
                             title="Badges")
    question = "Which door does the narwhal badge open?"
    wc.answer("The east door [1].", [1])
    assert (await ok(await ask(wc, "MEMBER", question), 201))["status"] == "answered"
    deleted = await wc.client().delete(f"{wc.docs()}/{source['document_id']}",
                                       headers=admin.headers())
    assert deleted.status_code == 204
    wc.fake.reset()
    refused = await ok(await ask(wc, "MEMBER", question), 201)
    assert refused["status"] == "refused" and wc.chat_requests() == []
