"""Helpers for the WeComply tests: files of every supported type, the upload flow, problems."""

from __future__ import annotations

import io
import json
from dataclasses import dataclass
from typing import Any

import httpx

from core.testing.fake_ai import FakeAIServer
from core.testing.tenancy import Persona, Personas

PROBLEM = "application/problem+json"
TEXT = "text/plain"
MARKDOWN = "text/markdown"
PDF = "application/pdf"
DOCX = "application/vnd.openxmlformats-officedocument.wordprocessingml.document"
PNG = "image/png"
PNG_BYTES = b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + b"\x00" * 40
CHAT_PATH = "/v1/chat/completions"


def pdf_bytes(*pages: list[str]) -> bytes:
    """A small, valid PDF whose pages show the given lines (Helvetica, extractable)."""
    objects: list[bytes] = []
    page_ids = [3 + 2 * i for i in range(len(pages))]
    font_id = 3 + 2 * len(pages)
    objects.append(b"<< /Type /Catalog /Pages 2 0 R >>")
    kids = " ".join(f"{pid} 0 R" for pid in page_ids).encode()
    objects.append(b"<< /Type /Pages /Kids [" + kids + b"] /Count "
                   + str(len(pages)).encode() + b" >>")
    for pid, lines in zip(page_ids, pages, strict=True):
        ops = ["BT /F1 12 Tf 14 TL 72 720 Td"]
        for line in lines:
            escaped = line.replace("\\", "\\\\").replace("(", "\\(").replace(")", "\\)")
            ops.append(f"({escaped}) Tj T*")
        ops.append("ET")
        stream = "\n".join(ops).encode("latin-1")
        objects.append(f"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] "
                       f"/Contents {pid + 1} 0 R /Resources << /Font << /F1 {font_id} 0 R >> "
                       f">> >>".encode())
        objects.append(b"<< /Length " + str(len(stream)).encode() + b" >>\nstream\n"
                       + stream + b"\nendstream")
    objects.append(b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>")
    out = io.BytesIO()
    out.write(b"%PDF-1.4\n%\xe2\xe3\xcf\xd3\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(out.tell())
        out.write(f"{number} 0 obj\n".encode() + body + b"\nendobj\n")
    xref = out.tell()
    out.write(f"xref\n0 {len(objects) + 1}\n0000000000 65535 f \n".encode())
    for offset in offsets:
        out.write(f"{offset:010d} 00000 n \n".encode())
    out.write(f"trailer\n<< /Size {len(objects) + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n"
              .encode())
    return out.getvalue()


def docx_bytes(blocks: list[tuple[str, str]], table: list[list[str]] | None = None) -> bytes:
    """A Word document from (kind, text) blocks: kind is "h1", "h2" or "p"."""
    import docx

    document = docx.Document()
    for kind, text in blocks:
        if kind.startswith("h"):
            document.add_heading(text, level=int(kind[1:]))
        else:
            document.add_paragraph(text)
    if table:
        grid = document.add_table(rows=len(table), cols=len(table[0]))
        for r, row in enumerate(table):
            for c, value in enumerate(row):
                grid.cell(r, c).text = value
    buffer = io.BytesIO()
    document.save(buffer)
    return buffer.getvalue()


async def problem(response: Any, status: int, slug: str | None = None) -> dict[str, Any]:
    text = await response.get_data(as_text=True)
    assert response.status_code == status, text
    assert response.content_type == PROBLEM, response.content_type
    body: dict[str, Any] = json.loads(text)
    assert body["status"] == status and body["detail"]
    if slug is not None:
        assert body["type"].endswith("/" + slug), body
    return body


async def ok(response: Any, status: int = 200) -> Any:
    text = await response.get_data(as_text=True)
    assert response.status_code == status, text
    return json.loads(text) if text else None


@dataclass
class WeComplyApp:
    """The app (FakeAIServer as the AI provider) and a tenancy seeded for one test module."""

    test_app: Any
    services: Any
    personas: Personas
    fake: FakeAIServer
    http: httpx.AsyncClient

    def client(self) -> Any:
        return self.test_app.test_client()

    @property
    def account(self) -> str:
        return self.personas.home_account

    def url(self, path: str, account: str | None = None) -> str:
        return f"/api/v1/accounts/{account or self.account}/wecomply/{path.lstrip('/')}"

    def docs(self, account: str | None = None) -> str:
        return f"/api/v1/accounts/{account or self.account}/documents"

    async def get(self, who: Persona | str, path: str, **kw: Any) -> Any:
        return await self.client().get(self.url(path, kw.pop("account", None)),
                                       headers=self._persona(who).headers(), **kw)

    async def post(self, who: Persona | str, path: str, json: Any = None, **kw: Any) -> Any:
        return await self.client().post(self.url(path, kw.pop("account", None)), json=json,
                                        headers=self._persona(who).headers(), **kw)

    async def patch(self, who: Persona | str, path: str, json: Any = None, **kw: Any) -> Any:
        return await self.client().patch(self.url(path, kw.pop("account", None)), json=json,
                                         headers=self._persona(who).headers(), **kw)

    async def delete(self, who: Persona | str, path: str, **kw: Any) -> Any:
        return await self.client().delete(self.url(path, kw.pop("account", None)),
                                          headers=self._persona(who).headers(), **kw)

    def _persona(self, who: Persona | str) -> Persona:
        return self.personas[who] if isinstance(who, str) else who

    async def document(self, who: Persona | str, data: bytes, content_type: str, *,
                       title: str = "Handbook", scope: str = "account",
                       group_id: str | None = None, tags: list[str] | None = None,
                       upload: bool = True, account: str | None = None) -> dict[str, Any]:
        """A kernel document with its file uploaded through the signed URL and completed."""
        persona = self._persona(who)
        docs = self.docs(account)
        body: dict[str, Any] = {"title": title, "content_type": content_type,
                                "size": len(data), "scope": scope, "tags": tags or []}
        if group_id:
            body["group_id"] = group_id
        created = await ok(await self.client().post(docs, json=body,
                                                    headers=persona.headers()), 201)
        if not upload:
            return dict(created)
        signed = await ok(await self.client().post(f"{docs}/{created['id']}/upload-url",
                                                   headers=persona.headers()))
        put = await self.http.put(signed["url"], content=data, headers=signed["headers"])
        assert put.status_code == 200, put.text
        done = await ok(await self.client().post(f"{docs}/{created['id']}/complete",
                                                 headers=persona.headers()))
        assert done["status"] == "ready"
        return dict(done)

    async def source(self, who: Persona | str, data: bytes, content_type: str,
                     **kw: Any) -> dict[str, Any]:
        """Upload a document and register it as a source of truth."""
        account = kw.get("account")
        document = await self.document(who, data, content_type, **kw)
        response = await self.post(who, "sources", {"document_id": document["id"]},
                                   account=account)
        return dict(await ok(response, 201))

    def answer(self, answer: str, citations: list[int], *, found: bool = True) -> None:
        """Script the fake model's next reply as the JSON WeComply asks for."""
        self.fake.next_chat_reply(json.dumps({"found": found, "answer": answer,
                                              "citations": citations}))

    def chat_requests(self) -> list[Any]:
        return self.fake.requests_to(CHAT_PATH)
