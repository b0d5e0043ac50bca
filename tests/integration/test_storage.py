"""Document files through signed URLs, against a real fake-gcs-server.

Bytes travel the way a browser sends them: an HTTP PUT with httpx to the
signed URL, then ``complete``, then a GET of the signed download URL.
fake-gcs-server does not check signatures or signed headers, so every refusal
tested here is the server's own check on ``complete``.
"""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest

from core.storage import policy, sniff
from core.storage.gcs import GCSStorage, load_signer, throwaway_key_info
from core.storage.port import StorageUnavailable

pytestmark = pytest.mark.asyncio(loop_scope="session")

DOCS = "/api/v1/accounts/{account}/documents"
PDF_BYTES = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj <<>> endobj\ntrailer <<>>\n%%EOF\n"
PNG_BYTES = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 40
JPEG_BYTES = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00" + b"\x01" * 40
TEXT_BYTES = "Händbook — chapter 1\n\tsection ✓\n".encode()


def docx_bytes(*, word: bool = True) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        archive.writestr("[Content_Types].xml", "<Types/>")
        archive.writestr("_rels/.rels", "<Relationships/>")
        archive.writestr("word/document.xml" if word else "data/document.xml", "<w:document/>")
    return buffer.getvalue()


@pytest.fixture
async def http() -> Any:
    async with httpx.AsyncClient(trust_env=False, timeout=10) as client:
        yield client


async def create(client: Any, persona: Any, account: str, *, content_type: str, size: int,
                 title: str = "Handbook", scope: str = "private") -> dict[str, Any]:
    response = await client.post(DOCS.format(account=account), headers=persona.headers(),
                                 json={"title": title, "content_type": content_type,
                                       "size": size, "scope": scope})
    assert response.status_code == 201, await response.get_data(as_text=True)
    return dict(await response.get_json())


async def post(client: Any, persona: Any, account: str, doc_id: str, action: str) -> Any:
    return await client.post(f"{DOCS.format(account=account)}/{doc_id}/{action}",
                             headers=persona.headers())


async def download_url(client: Any, persona: Any, account: str, doc_id: str) -> Any:
    return await client.get(f"{DOCS.format(account=account)}/{doc_id}/download-url",
                            headers=persona.headers())


async def upload_url(client: Any, persona: Any, account: str, doc_id: str) -> dict[str, Any]:
    response = await post(client, persona, account, doc_id, "upload-url")
    assert response.status_code == 200, await response.get_data(as_text=True)
    return dict(await response.get_json())


async def put(http: httpx.AsyncClient, signed: dict[str, Any], data: bytes,
              **header_overrides: str) -> None:
    headers = {**signed["headers"], **header_overrides}
    response = await http.put(signed["url"], content=data, headers=headers)
    assert response.status_code == 200, response.text


async def uploaded(client: Any, http: httpx.AsyncClient, persona: Any, account: str, *,
                   content_type: str, data: bytes, title: str = "Handbook",
                   scope: str = "private") -> dict[str, Any]:
    """Create, upload and complete; returns the ready document."""
    doc = await create(client, persona, account, content_type=content_type, size=len(data),
                       title=title, scope=scope)
    await put(http, await upload_url(client, persona, account, doc["id"]), data)
    done = await post(client, persona, account, doc["id"], "complete")
    assert done.status_code == 200, await done.get_data(as_text=True)
    return dict(await done.get_json())


async def stored(services: Any, doc_id: str) -> dict[str, Any]:
    return dict(await services.db["documents"].find_one({"_id": doc_id}))


def strip(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "request_id"}


# --------------------------------------------------------------------------- round trips


async def test_pdf_upload_complete_download_round_trip(
    client: Any, http: httpx.AsyncClient, personas: Any, synergyhub_services: Any
) -> None:
    member, acc = personas["MEMBER"], personas.home_account
    doc = await create(client, member, acc, content_type="application/pdf",
                       size=len(PDF_BYTES), title="Q3 report")
    assert doc["status"] == "pending"

    response = await post(client, member, acc, doc["id"], "upload-url")
    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    signed = await response.get_json()
    assert signed["method"] == "PUT" and signed["max_bytes"] == policy.DOCUMENTS.max_bytes
    assert signed["headers"] == {
        "Content-Type": "application/pdf",
        "x-goog-content-length-range": f"{len(PDF_BYTES)},{len(PDF_BYTES)}",
        "x-goog-if-generation-match": "0",
    }
    query = parse_qs(urlsplit(signed["url"]).query)
    assert query["X-Goog-Algorithm"] == ["GOOG4-RSA-SHA256"]
    assert int(query["X-Goog-Expires"][0]) <= 600
    assert set(query["X-Goog-SignedHeaders"][0].split(";")) >= {
        "content-type", "x-goog-content-length-range", "x-goog-if-generation-match", "host"}

    # The object name is the server's, under solution/account prefixes.
    record = await stored(synergyhub_services, doc["id"])
    prefix = f"{personas.home_solution}/{acc}/documents/{doc['id']}/"
    assert record["object_name"].startswith(prefix)
    assert len(record["object_name"].removeprefix(prefix)) == 32
    assert urlsplit(signed["url"]).path.endswith(record["object_name"])

    early = await download_url(client, member, acc, doc["id"])
    assert early.status_code == 409
    assert (await early.get_json())["type"].endswith("/document-not-ready")

    await put(http, signed, PDF_BYTES)
    done = await post(client, member, acc, doc["id"], "complete")
    assert done.status_code == 200, await done.get_data(as_text=True)
    ready = await done.get_json()
    assert ready["status"] == "ready" and ready["sniffed_type"] == "application/pdf"
    assert "object_name" not in ready and "object_generation" not in ready

    again = await post(client, member, acc, doc["id"], "complete")
    assert again.status_code == 200  # idempotent

    response = await download_url(client, member, acc, doc["id"])
    assert response.status_code == 200
    link = await response.get_json()
    assert link["method"] == "GET" and link["filename"] == "Q3 report.pdf"
    query = parse_qs(urlsplit(link["url"]).query)
    assert int(query["X-Goog-Expires"][0]) <= 300
    assert query["response-content-disposition"][0].startswith(
        'attachment; filename="Q3 report.pdf"')
    assert query["response-content-type"] == ["application/pdf"]
    fetched = await http.get(link["url"])
    assert fetched.status_code == 200 and fetched.content == PDF_BYTES

    event = await synergyhub_services.db["audit_events"].find_one(
        {"action": "document.file_uploaded", "target": f"documents:{doc['id']}"})
    assert event is not None and event["actor"] == member.uid and event["account_id"] == acc
    assert event["details"] == {"content_type": "application/pdf", "size": len(PDF_BYTES),
                                "sniffed_type": "application/pdf"}

    # The list can ask for ready documents only; the public record hides storage fields.
    listed = await client.get(f"{DOCS.format(account=acc)}?status=ready&limit=100",
                              headers=member.headers())
    items = (await listed.get_json())["items"]
    assert doc["id"] in {i["id"] for i in items}
    assert all(i["status"] == "ready" and "object_name" not in i for i in items)
    pending = await client.get(f"{DOCS.format(account=acc)}?status=pending&limit=100",
                               headers=member.headers())
    assert doc["id"] not in {i["id"] for i in (await pending.get_json())["items"]}

    # A ready document keeps its file: no second upload URL.
    refused = await post(client, member, acc, doc["id"], "upload-url")
    assert refused.status_code == 409


@pytest.mark.parametrize(("content_type", "data"), [
    ("text/plain", TEXT_BYTES),
    ("text/markdown", b"# Title\n\n- item\n"),
    ("image/png", PNG_BYTES),
    ("image/jpeg", JPEG_BYTES),
    (sniff.DOCX, docx_bytes()),
])
async def test_every_allowed_type_round_trips(
    client: Any, http: httpx.AsyncClient, personas: Any, content_type: str, data: bytes
) -> None:
    member, acc = personas["MEMBER"], personas.home_account
    ready = await uploaded(client, http, member, acc, content_type=content_type, data=data)
    assert ready["status"] == "ready"
    link = await (await download_url(client, member, acc, ready["id"])).get_json()
    fetched = await http.get(link["url"])
    assert fetched.content == data
    assert link["filename"].endswith(policy.EXTENSIONS[content_type])


# --------------------------------------------------------------------------- refusals


async def assert_refused(client: Any, services: Any, persona: Any, account: str,
                         doc_id: str, slug: str) -> None:
    """422 with ``slug``, the object gone, the document still pending without a name."""
    record = await stored(services, doc_id)
    name = record["object_name"]
    assert await services.storage.stat(name) is not None
    response = await post(client, persona, account, doc_id, "complete")
    assert response.status_code == 422, await response.get_data(as_text=True)
    body = await response.get_json()
    assert response.headers["Content-Type"].startswith("application/problem+json")
    assert body["type"].endswith(f"/{slug}")
    assert await services.storage.stat(name) is None
    record = await stored(services, doc_id)
    assert record["status"] == "pending" and record["object_name"] is None
    assert (await download_url(client, persona, account, doc_id)).status_code == 409
    event = await services.db["audit_events"].find_one(
        {"action": "document.file_refused", "target": f"documents:{doc_id}"})
    assert event is not None and event["details"]["reason"] == slug


async def test_wrong_content_type_is_refused_and_deleted(
    client: Any, http: httpx.AsyncClient, personas: Any, synergyhub_services: Any
) -> None:
    member, acc = personas["MEMBER"], personas.home_account
    doc = await create(client, member, acc, content_type="application/pdf", size=len(PDF_BYTES))
    signed = await upload_url(client, member, acc, doc["id"])
    await put(http, signed, PDF_BYTES, **{"Content-Type": "text/html"})
    await assert_refused(client, synergyhub_services, member, acc, doc["id"],
                         "content-type-mismatch")


async def test_oversized_object_is_refused_and_deleted(
    client: Any, http: httpx.AsyncClient, personas: Any, synergyhub_services: Any
) -> None:
    member, acc = personas["MEMBER"], personas.home_account
    doc = await create(client, member, acc, content_type="text/plain", size=10)
    signed = await upload_url(client, member, acc, doc["id"])
    await put(http, signed, b"0123456789" * 100)
    await assert_refused(client, synergyhub_services, member, acc, doc["id"], "size-mismatch")

    # A declaration above the limit never gets a URL at all.
    big = await create(client, member, acc, content_type="application/pdf",
                       size=policy.DOCUMENTS.max_bytes + 1)
    response = await post(client, member, acc, big["id"], "upload-url")
    assert response.status_code == 422
    assert (await response.get_json())["type"].endswith("/file-too-large")


async def test_mislabelled_file_is_refused_and_deleted(
    client: Any, http: httpx.AsyncClient, personas: Any, synergyhub_services: Any
) -> None:
    member, acc = personas["MEMBER"], personas.home_account
    doc = await create(client, member, acc, content_type="application/pdf", size=len(PNG_BYTES))
    await put(http, await upload_url(client, member, acc, doc["id"]), PNG_BYTES)
    await assert_refused(client, synergyhub_services, member, acc, doc["id"], "content-mismatch")
    body = (await stored(synergyhub_services, doc["id"]))
    assert body["sniffed_type"] is None

    # A ZIP that is not a Word document, declared as .docx.
    fake = docx_bytes(word=False)
    assert len(fake) == len(docx_bytes())
    doc = await create(client, member, acc, content_type=sniff.DOCX, size=len(fake))
    await put(http, await upload_url(client, member, acc, doc["id"]), fake)
    await assert_refused(client, synergyhub_services, member, acc, doc["id"], "content-mismatch")

    # After a refusal a new upload URL works, under a new object name.
    retry = await upload_url(client, member, acc, doc["id"])
    await put(http, retry, docx_bytes())
    done = await post(client, member, acc, doc["id"], "complete")
    assert done.status_code == 200 and (await done.get_json())["sniffed_type"] == sniff.DOCX


async def test_unsupported_type_and_flow_order(
    client: Any, http: httpx.AsyncClient, personas: Any
) -> None:
    member, acc = personas["MEMBER"], personas.home_account
    html = await create(client, member, acc, content_type="text/html", size=10)
    response = await post(client, member, acc, html["id"], "upload-url")
    assert response.status_code == 422
    assert (await response.get_json())["type"].endswith("/unsupported-content-type")

    doc = await create(client, member, acc, content_type="text/plain", size=5)
    not_started = await post(client, member, acc, doc["id"], "complete")
    assert not_started.status_code == 409
    assert (await not_started.get_json())["type"].endswith("/upload-not-started")
    await upload_url(client, member, acc, doc["id"])
    missing = await post(client, member, acc, doc["id"], "complete")
    assert missing.status_code == 409
    assert (await missing.get_json())["type"].endswith("/upload-missing")

    anonymous = await client.post(f"{DOCS.format(account=acc)}/{doc['id']}/upload-url")
    assert anonymous.status_code == 401


async def test_overwrite_after_complete_is_never_served(
    client: Any, http: httpx.AsyncClient, personas: Any
) -> None:
    """Downloads are pinned to the verified generation. (Real GCS already refuses the
    second PUT: the URL is signed with x-goog-if-generation-match: 0.)"""
    member, acc = personas["MEMBER"], personas.home_account
    doc = await create(client, member, acc, content_type="text/plain", size=len(TEXT_BYTES))
    signed = await upload_url(client, member, acc, doc["id"])
    await put(http, signed, TEXT_BYTES)
    assert (await post(client, member, acc, doc["id"], "complete")).status_code == 200
    evil = b"<script>1</script>"[: len(TEXT_BYTES)].ljust(len(TEXT_BYTES), b" ")
    await http.put(signed["url"], content=evil, headers=signed["headers"])
    link = await (await download_url(client, member, acc, doc["id"])).get_json()
    fetched = await http.get(link["url"])
    assert fetched.content != evil
    assert fetched.status_code == 404 or fetched.content == TEXT_BYTES


async def test_files_go_with_their_document(
    client: Any, http: httpx.AsyncClient, personas: Any, synergyhub_services: Any
) -> None:
    member, acc = personas["MEMBER"], personas.home_account
    storage = synergyhub_services.storage
    doc = await create(client, member, acc, content_type="text/plain", size=len(TEXT_BYTES))
    await put(http, await upload_url(client, member, acc, doc["id"]), TEXT_BYTES)
    first = (await stored(synergyhub_services, doc["id"]))["object_name"]
    # A second upload URL abandons the first upload: its object is removed.
    await put(http, await upload_url(client, member, acc, doc["id"]), TEXT_BYTES)
    second = (await stored(synergyhub_services, doc["id"]))["object_name"]
    assert second != first and await storage.stat(first) is None
    assert (await post(client, member, acc, doc["id"], "complete")).status_code == 200
    assert await storage.stat(second) is not None

    viewer = personas["VIEWER"]
    refused = await client.delete(f"{DOCS.format(account=acc)}/{doc['id']}",
                                  headers=viewer.headers())
    assert refused.status_code == 404 and await storage.stat(second) is not None
    deleted = await client.delete(f"{DOCS.format(account=acc)}/{doc['id']}",
                                  headers=member.headers())
    assert deleted.status_code == 204
    assert await storage.stat(second) is None


# --------------------------------------------------------------------------- access


async def test_other_accounts_documents_answer_404(
    client: Any, http: httpx.AsyncClient, personas: Any
) -> None:
    home = personas.home_account
    foreign_acc = personas.tenants[1].accounts[0]
    foreign_admin = personas[f"ADMIN:{foreign_acc}"]
    foreign = await uploaded(client, http, foreign_admin, foreign_acc,
                             content_type="text/plain", data=TEXT_BYTES, scope="account")
    missing_id = "0" * 24
    for persona in (personas["MEMBER"], personas["ACCOUNT_ADMIN"], personas["SOLUTION_ADMIN"]):
        baseline = {
            "upload-url": strip(await (await post(client, persona, home, missing_id,
                                                  "upload-url")).get_json()),
            "complete": strip(await (await post(client, persona, home, missing_id,
                                                "complete")).get_json()),
            "download-url": strip(await (await download_url(client, persona, home,
                                                            missing_id)).get_json()),
        }
        for action in ("upload-url", "complete", "download-url"):
            for account in (home, foreign_acc):
                if action == "download-url":
                    response = await download_url(client, persona, account, foreign["id"])
                else:
                    response = await post(client, persona, account, foreign["id"], action)
                assert response.status_code == 404, (persona.name, action, account)
                if account == home:
                    assert strip(await response.get_json()) == baseline[action]
    # The owner still reaches it.
    ok = await download_url(client, foreign_admin, foreign_acc, foreign["id"])
    assert ok.status_code == 200


async def test_viewers_download_but_never_upload(
    client: Any, http: httpx.AsyncClient, personas: Any
) -> None:
    acc = personas.home_account
    admin, viewer, member = personas["ACCOUNT_ADMIN"], personas["VIEWER"], personas["MEMBER"]
    doc = await create(client, admin, acc, content_type="text/plain", size=len(TEXT_BYTES),
                       scope="account")
    for persona in (viewer, member):  # readers, not writers of an account document
        assert (await post(client, persona, acc, doc["id"], "upload-url")).status_code == 404
    await put(http, await upload_url(client, admin, acc, doc["id"]), TEXT_BYTES)
    assert (await post(client, viewer, acc, doc["id"], "complete")).status_code == 404
    assert (await post(client, admin, acc, doc["id"], "complete")).status_code == 200
    for persona in (viewer, member):
        response = await download_url(client, persona, acc, doc["id"])
        assert response.status_code == 200
    # Another member's private document is invisible to the viewer and the admin alike.
    private = await create(client, member, acc, content_type="text/plain", size=3)
    for persona in (viewer, admin):
        assert (await post(client, persona, acc, private["id"], "upload-url")).status_code == 404


async def test_display_title_is_sanitized(
    client: Any, http: httpx.AsyncClient, personas: Any, synergyhub_services: Any
) -> None:
    member, acc = personas["MEMBER"], personas.home_account
    title = "../../etc/pass\x07wd\u202e\\evil"
    doc = await create(client, member, acc, content_type="application/pdf",
                       size=len(PDF_BYTES), title=title)
    await put(http, await upload_url(client, member, acc, doc["id"]), PDF_BYTES)
    record = await stored(synergyhub_services, doc["id"])
    assert record["title"] == "_.._etc_passwd_evil"
    assert "etc" not in record["object_name"]
    assert (await post(client, member, acc, doc["id"], "complete")).status_code == 200
    link = await (await download_url(client, member, acc, doc["id"])).get_json()
    assert link["filename"] == "_.._etc_passwd_evil.pdf"


async def test_unconfigured_storage_answers_503(
    client: Any, personas: Any, synergyhub_services: Any
) -> None:
    member, acc = personas["MEMBER"], personas.home_account
    doc = await create(client, member, acc, content_type="text/plain", size=3)
    saved, synergyhub_services.storage = synergyhub_services.storage, None
    try:
        response = await post(client, member, acc, doc["id"], "upload-url")
    finally:
        synergyhub_services.storage = saved
    assert response.status_code == 503
    body = await response.get_json()
    assert "STORAGE_EMULATOR_HOST" in body["detail"]


# --------------------------------------------------------------------------- adapter and rules


async def test_signing_key_file_is_used(
    tmp_path: Path, http: httpx.AsyncClient, synergyhub_settings: Any
) -> None:
    import json

    info = throwaway_key_info("demo-keyfile")
    key_file = tmp_path / "signer.json"
    key_file.write_text(json.dumps(info))
    storage = GCSStorage.from_settings(
        synergyhub_settings.model_copy(update={"gcs_signing_key_file": key_file}))
    assert storage is not None and storage.bucket == synergyhub_settings.gcs_bucket
    try:
        await storage.ensure_bucket()  # also when this test runs before the app started
        signed = await storage.signed_upload("tests/keyfile/object", content_type="text/plain",
                                             size=5, ttl=policy.DOCUMENTS.upload_ttl)
        credential = parse_qs(urlsplit(signed.url).query)["X-Goog-Credential"][0]
        assert credential.startswith(info["client_email"] + "/")
        response = await http.put(signed.url, content=b"hello", headers=signed.headers)
        assert response.status_code == 200
        found = await storage.stat("tests/keyfile/object")
        assert found is not None and found.size == 5 and found.content_type == "text/plain"
        assert await storage.read("tests/keyfile/object", start=1, length=3) == b"ell"
        await storage.delete("tests/keyfile/object")
        await storage.delete("tests/keyfile/object")  # missing is fine
        assert await storage.stat("tests/keyfile/object") is None
        for path in ("tests/keyfile/a/1", "tests/keyfile/a/2", "tests/keyfile/b/1"):
            signed = await storage.signed_upload(path, content_type="text/plain", size=1,
                                                 ttl=policy.DOCUMENTS.upload_ttl)
            await http.put(signed.url, content=b"x", headers=signed.headers)
        assert await storage.delete_prefix("tests/keyfile/a/") == 2
        assert await storage.stat("tests/keyfile/b/1") is not None
        with pytest.raises(ValueError):
            await storage.delete_prefix("tests/")
    finally:
        await storage.close()

    broken = tmp_path / "broken.json"
    broken.write_text('{"private_key": "-----BEGIN SECRET-----"}')
    with pytest.raises(StorageUnavailable) as refused:
        load_signer(broken)
    assert "SECRET" not in refused.value.detail


async def test_unreachable_storage_is_a_503_problem(synergyhub_settings: Any) -> None:
    from core.kernel.devstack import free_port

    storage = GCSStorage(bucket="nowhere", project="demo",
                         emulator_host=f"http://127.0.0.1:{free_port()}",
                         signer=load_signer_from_info(), timeout=1.0)
    with pytest.raises(StorageUnavailable):
        await storage.stat("x")
    await storage.close()


def load_signer_from_info() -> Any:
    from google.oauth2 import service_account

    return service_account.Credentials.from_service_account_info(throwaway_key_info("demo"))


async def test_sniffer_and_names() -> None:
    assert sniff.sniff(PDF_BYTES, truncated=False) == sniff.PDF
    assert sniff.sniff(PNG_BYTES, truncated=False) == sniff.PNG
    assert sniff.sniff(JPEG_BYTES, truncated=False) == sniff.JPEG
    assert sniff.sniff(docx_bytes(), truncated=False) == sniff.ZIP
    assert sniff.sniff(TEXT_BYTES, truncated=False) == sniff.TEXT
    assert sniff.sniff(b"\xef\xbb\xbfhello\r\n", truncated=False) == sniff.TEXT
    assert sniff.sniff(b"MZ\x90\x00binary", truncated=False) is None
    assert sniff.sniff(b"text\x00with nul", truncated=False) is None
    cut = "ü".encode() * 3
    assert sniff.sniff(cut[:-1], truncated=True) == sniff.TEXT
    assert sniff.sniff(cut[:-1], truncated=False) is None

    data = docx_bytes()
    assert sniff.is_docx(sniff.zip_names(data, len(data)) or [])
    assert sniff.is_docx(sniff.zip_names(data[-60:], len(data)) or []) is False
    assert sniff.zip_names(b"not a zip", 9) is None

    assert policy.sanitize_display_name("\x00\x1b[31m") == "[31m"
    assert policy.sanitize_display_name("...") == "document"
    assert policy.sanitize_display_name("a/b\\c  d\u200b.txt") == "a_b_c d.txt"
    assert len(policy.sanitize_display_name("x" * 1000)) == policy.MAX_DISPLAY_NAME
    assert policy.content_disposition('ré"sumé.pdf') == (
        "attachment; filename=\"re'sume.pdf\"; filename*=UTF-8''r%C3%A9%22sum%C3%A9.pdf")
    with pytest.raises(ValueError):
        policy.object_name(solution_id="s", account_id="../a", use="documents", resource_id="d")
