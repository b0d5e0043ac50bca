"""Sources of truth over HTTP: upload through signed URLs, register, extract, chunk, index.

Files travel the real way (fake-gcs-server, signed PUT, ``complete``); WeComply
reads the bytes back through the kernel's storage port.
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.integration.wecomply.support import (
    DOCX,
    MARKDOWN,
    PDF,
    PNG,
    PNG_BYTES,
    TEXT,
    WeComplyApp,
    docx_bytes,
    ok,
    pdf_bytes,
    problem,
)

pytestmark = pytest.mark.asyncio(loop_scope="session")

HANDBOOK_MD = b"""# Employee handbook

Welcome to the company.

## Remote work

Staff may work remotely up to three days per week. Managers approve exceptions in writing.

## Expenses

Receipts are required for every expense above 25 euros.
"""


async def _events(wc: WeComplyApp, action: str) -> list[dict[str, Any]]:
    return [e async for e in wc.services.tenancy.audit.iter_chain(wc.account)
            if e["action"] == action]


async def test_every_supported_type_becomes_indexed_chunks(wc: WeComplyApp) -> None:
    admin = wc.personas["ACCOUNT_ADMIN"]
    files = {
        TEXT: b"Visitors sign in at reception.\n\nBadges are returned on leaving.",
        MARKDOWN: HANDBOOK_MD,
        PDF: pdf_bytes(["Travel policy", "Flights under six hours are economy class."]),
        DOCX: docx_bytes([("h1", "Security"), ("p", "Lock your screen when you leave."),
                          ("h2", "Passwords"), ("p", "Rotate passwords every 90 days.")]),
    }
    extractor = {TEXT: "text", MARKDOWN: "markdown", PDF: "pdf", DOCX: "docx"}
    for content_type, data in files.items():
        source = await wc.source(admin, data, content_type, title=f"Doc {extractor[content_type]}")
        assert source["extractor"] == extractor[content_type]
        assert source["scope"] == "account" and source["chunk_count"] >= 1
        assert "read_keys" not in source and "write_keys" not in source
        chunks = await ok(await wc.get("MEMBER", f"sources/{source['id']}/chunks"))
        assert len(chunks["items"]) == source["chunk_count"]
        assert all("terms" not in c for c in chunks["items"])
        document = await ok(await wc.client().get(f"{wc.docs()}/{source['document_id']}",
                                                  headers=admin.headers()))
        assert "wecomply" in document["tags"]  # the kernel document is tagged for WeComply

    md = (await ok(await wc.get("MEMBER", "sources?limit=100")))["items"]
    handbook = next(s for s in md if s["extractor"] == "markdown")
    chunks = (await ok(await wc.get("MEMBER", f"sources/{handbook['id']}/chunks")))["items"]
    assert [(c["ordinal"], c["heading"]) for c in chunks] == [
        (0, "Employee handbook"), (1, "Employee handbook › Remote work"),
        (2, "Employee handbook › Expenses")]
    assert chunks[1]["text"].startswith("Staff may work remotely")
    docx_source = next(s for s in md if s["extractor"] == "docx")
    headings = [c["heading"] for c in (await ok(await wc.get(
        "MEMBER", f"sources/{docx_source['id']}/chunks")))["items"]]
    assert headings == ["Security", "Security › Passwords"]

    # Chunks are scoped records inheriting the document's scope (one grant key: the account).
    stored = await wc.services.db["wecomply_chunks"].find_one({"source_id": handbook["id"]})
    assert stored["read_keys"] == [f"acc:{wc.account}"] and stored["scope"] == "account"
    assert "remot" in stored["terms"] or "welcom" in stored["terms"]

    events = await _events(wc, "wecomply.source_registered")
    assert len(events) >= 4 and events[-1]["actor"] == admin.uid


async def test_unsupported_empty_and_damaged_files_are_clear_4xx(wc: WeComplyApp) -> None:
    admin = wc.personas["ACCOUNT_ADMIN"]
    before = await wc.services.db["wecomply_sources"].count_documents({})

    png = await wc.document(admin, PNG_BYTES, PNG, title="Logo")
    body = await problem(await wc.post(admin, "sources", {"document_id": png["id"]}), 415,
                         "unsupported-source-type")
    assert "image/png" in body["detail"] and "text/markdown" in body["detail"]

    empty = await wc.document(admin, b"   \n\n  \t\n", TEXT, title="Blank")
    await problem(await wc.post(admin, "sources", {"document_id": empty["id"]}), 422,
                  "empty-source")
    scanned = await wc.document(admin, pdf_bytes([]), PDF, title="Scan")
    body = await problem(await wc.post(admin, "sources", {"document_id": scanned["id"]}), 422,
                         "empty-source")
    assert "OCR" in body["detail"]
    damaged = await wc.document(admin, b"%PDF-1.7\n" + b"\x00garbage" * 20, PDF, title="Bad")
    await problem(await wc.post(admin, "sources", {"document_id": damaged["id"]}), 422,
                  "unreadable-source")
    plain = await wc.document(admin, "Café policy".encode(), TEXT)
    pending = await wc.document(admin, b"Not uploaded yet", TEXT, upload=False)
    await problem(await wc.post(admin, "sources", {"document_id": pending["id"]}), 409,
                  "document-not-ready")
    await problem(await wc.post(admin, "sources", {"document_id": "0" * 24}), 404)
    for bad in ({"document_id": "not-an-id"}, {}, {"document_id": plain["id"], "x": 1},
                {"document_id": ["$ne"]}):
        await problem(await wc.post(admin, "sources", bad), 422)
    await problem(await wc.client().post(wc.url("sources"), data="not json",
                                         headers=admin.headers()), 422)
    assert await wc.services.db["wecomply_sources"].count_documents({}) == before
    refused = await wc.services.db["wecomply_chunks"].count_documents(
        {"document_id": {"$in": [empty["id"], scanned["id"], damaged["id"]]}})
    assert refused == 0

    first = await ok(await wc.post(admin, "sources", {"document_id": plain["id"]}), 201)
    again = await problem(await wc.post(admin, "sources", {"document_id": plain["id"]}), 409,
                          "source-exists")
    assert again["source_id"] == first["id"]


async def test_only_editors_of_the_document_register_it(wc: WeComplyApp) -> None:
    p = wc.personas
    account_doc = await wc.document("ACCOUNT_ADMIN", b"Account-wide rule.", TEXT)
    # A MEMBER reads the document but may not edit it.
    await problem(await wc.post("MEMBER", "sources", {"document_id": account_doc["id"]}), 403,
                  "source-forbidden")
    await problem(await wc.post("VIEWER", "sources", {"document_id": account_doc["id"]}), 403)
    # A group document registered by its GROUP_ADMIN stays in the group.
    group_source = await wc.source("GROUP_ADMIN", b"Cardiology rota rule.", TEXT,
                                    scope="group", group_id=p.home_group)
    assert (group_source["scope"], group_source["group_id"]) == ("group", p.home_group)
    # A MEMBER's private document registered by that MEMBER stays private.
    private = await wc.source("MEMBER", b"My own notes on leave.", TEXT, scope="private")
    assert private["scope"] == "private"
    # Outside the group, outside the account: 404 like an unknown id.
    assert (await wc.get("MEMBER", f"sources/{group_source['id']}")).status_code == 404
    assert (await wc.get("ACCOUNT_ADMIN", f"sources/{private['id']}")).status_code == 404
    other = p.tenants[0].accounts[1]
    await problem(await wc.get(p[f"ADMIN:{other}"], f"sources/{group_source['id']}",
                               account=other), 404)
    await problem(await wc.post(p[f"ADMIN:{other}"], "sources",
                                {"document_id": account_doc["id"]}, account=other), 404)
    # Another Solution (wecomply not enabled): the whole API is 404.
    far = p.tenants[1].accounts[0]
    await problem(await wc.get(p[f"ADMIN:{far}"], "sources", account=far), 404)
    await problem(await wc.get("OUTSIDER", "sources"), 404)
    await problem(await wc.client().get(wc.url("sources")), 401)


async def test_sync_registers_tagged_documents_and_delete_drops_the_index(
        wc: WeComplyApp) -> None:
    admin = wc.personas["ACCOUNT_ADMIN"]
    tagged = await wc.document(admin, b"Tagged rule about fire drills.", TEXT,
                               tags=["wecomply"], title="Fire drills")
    bad = await wc.document(admin, PNG_BYTES, PNG, tags=["wecomply"], title="Poster")
    await wc.document(admin, b"Untagged.", TEXT)
    result = await ok(await wc.post(admin, "sources/sync"))
    assert [s["document_id"] for s in result["registered"]] == [tagged["id"]]
    assert {(s["document_id"], s["status"], s["type"]) for s in result["skipped"]} == {
        (bad["id"], 415, "unsupported-source-type")}
    assert (await ok(await wc.post(admin, "sources/sync")))["registered"] == []

    source = result["registered"][0]
    await problem(await wc.delete("MEMBER", f"sources/{source['id']}"), 404)
    assert (await wc.delete(admin, f"sources/{source['id']}")).status_code == 204
    await problem(await wc.get(admin, f"sources/{source['id']}"), 404)
    assert await wc.services.db["wecomply_chunks"].count_documents(
        {"source_id": source["id"]}) == 0
    assert (await _events(wc, "wecomply.source_deleted"))[-1]["target"].endswith(source["id"])
    # The kernel document is untouched and can be registered again.
    await ok(await wc.post(admin, "sources", {"document_id": tagged["id"]}), 201)
