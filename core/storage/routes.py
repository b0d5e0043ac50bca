"""Document file routes: upload URL, completion, download URL.

Mounted under the documents path by the ``kernel.storage`` plugin. Views
resolve the context and hand over to :class:`core.storage.documents.DocumentFiles`.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field
from quart import Blueprint

from core.documents.models import Document
from core.documents.routes import public
from core.kernel import context
from core.storage.documents import DocumentFiles
from core.storage.policy import DOCUMENTS, download_filename
from core.storage.port import SignedUrl, StorageService, StorageUnavailable

NO_STORE = {"Cache-Control": "no-store"}


# Response shapes (built and validated here; returned as dicts, since the kernel's
# OpenAPI post-processor expects string status keys, which @validate_response breaks).
class UploadUrlOut(BaseModel):
    """PUT the file's bytes to ``url`` with exactly ``headers``, then POST .../complete."""

    document_id: str
    url: str = Field(description="Signed V4 URL; short-lived, use it once")
    method: str = "PUT"
    headers: dict[str, str] = Field(description="Send these headers unchanged (signed)")
    expires_at: datetime
    max_bytes: int = Field(description="The size limit for this kind of file")


class DownloadUrlOut(BaseModel):
    document_id: str
    url: str = Field(description="Signed V4 GET URL; short-lived")
    method: str = "GET"
    expires_at: datetime
    filename: str = Field(description="The sanitized download name")


def require_storage() -> StorageService:
    """The storage port, or 503 saying what to configure."""
    storage: StorageService | None = context.services().storage
    if storage is None:
        raise StorageUnavailable(
            "File storage is not configured: set STORAGE_EMULATOR_HOST (development, "
            "`make run` does) or run in production with SYNERGYHUB_GCS_BUCKET and Google "
            "credentials (see docs/storage.md)."
        )
    return storage


async def _files(account_id: str) -> DocumentFiles:
    ctx = await context.enter_account(account_id)
    storage = require_storage()
    return DocumentFiles(storage=storage, repo=context.repository(Document, ctx), ctx=ctx,
                         audit=context.services().tenancy.audit, policy=DOCUMENTS)


def _signed(signed: SignedUrl) -> dict[str, Any]:
    return {"url": signed.url, "method": signed.method, "expires_at": signed.expires_at}


def make_blueprint() -> Blueprint:
    """A new blueprint per app (kernel blueprints keep their own url_prefix)."""
    blueprint = Blueprint(
        "storage", __name__, url_prefix="/api/v1/accounts/<account_id>/documents"
    )

    @blueprint.post("/<document_id>/upload-url")
    async def upload_url(
        account_id: str, document_id: str
    ) -> tuple[dict[str, Any], int, dict[str, str]]:
        """A signed PUT URL for the document's declared type and size (writers only)."""
        files = await _files(account_id)
        document, signed = await files.issue_upload_url(document_id)
        body = UploadUrlOut(document_id=document.id, headers=signed.headers,
                            max_bytes=files.policy.max_bytes, **_signed(signed))
        return body.model_dump(mode="json"), 200, NO_STORE

    @blueprint.post("/<document_id>/complete")
    async def complete(account_id: str, document_id: str) -> dict[str, Any]:
        """Confirm the uploaded file (exists, size, type sniffed from its bytes); the
        document becomes ``ready``. A mismatch answers 422 and discards the file."""
        files = await _files(account_id)
        return public(await files.complete_upload(document_id))

    @blueprint.get("/<document_id>/download-url")
    async def download_url(
        account_id: str, document_id: str
    ) -> tuple[dict[str, Any], int, dict[str, str]]:
        """A short-lived signed GET URL for a ready document (readers)."""
        files = await _files(account_id)
        document, signed = await files.issue_download_url(document_id)
        body = DownloadUrlOut(
            document_id=document.id,
            filename=download_filename(document.title, document.content_type),
            **_signed(signed),
        )
        return body.model_dump(mode="json"), 200, NO_STORE

    return blueprint
