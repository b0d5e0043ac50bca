"""Document files: signed upload, confirmation by sniffing, signed download.

Use cases over the storage port and the documents repository; they never see
the Quart request. The flow: a document record declares title, content type
and size (``POST .../documents``); ``issue_upload_url`` hands out a signed PUT
for a server-made object name; the browser uploads; ``complete_upload``
checks the stored object (exists, exact size, exact content type, bytes sniff
as the declared type) and only then marks the document ``ready``;
``issue_download_url`` signs a GET for ready documents only.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, NoReturn

from core.documents.models import Document
from core.kernel.errors import Conflict, NotFound, Unprocessable
from core.storage import policy as policies
from core.storage.policy import DOCUMENTS, UploadPolicy
from core.storage.port import SignedUrl, StorageService, StorageUnavailable
from core.storage.uploads import UploadRefused, confirm_upload
from core.tenancy.audit import AuditLog
from core.tenancy.models import AccountContext
from core.tenancy.repository import ScopedRepository
from core.tenancy.rules import can_write

USE = "documents"
log = logging.getLogger("synergyhub.storage")


@dataclass(frozen=True)
class DocumentFiles:
    """The document-file use cases bound to one request's context."""

    storage: StorageService
    repo: ScopedRepository[Document]
    ctx: AccountContext
    audit: AuditLog
    policy: UploadPolicy = DOCUMENTS

    async def _writable(self, document_id: str) -> Document:
        """The document if the caller may write it; 404 exactly like a missing id."""
        document = await self.repo.get(document_id)
        if not can_write(self.ctx.principal, document):
            raise NotFound("No such resource.")
        return document

    async def issue_upload_url(self, document_id: str) -> tuple[Document, SignedUrl]:
        document = await self._writable(document_id)
        if document.status == "ready":
            raise Conflict("This document already has its file; create a new document to "
                           "upload another one.", type_slug="document-already-uploaded")
        refused = self.policy.refusal(document.content_type, document.size)
        if refused is not None:
            slug, detail = refused
            raise Unprocessable(detail, type_slug=slug)
        name = policies.object_name(
            solution_id=document.solution_id, account_id=document.account_id,
            use=USE, resource_id=document.id,
        )
        changes: dict[str, Any] = {"object_name": name, "object_generation": None}
        title = policies.sanitize_display_name(document.title)
        if title != document.title:
            changes["title"] = title
        # Recorded before the URL leaves, so completion checks the name we signed.
        updated = await self.repo.update(document_id, changes)
        if document.object_name and document.object_name != name:
            await self.storage.delete(document.object_name)  # an abandoned earlier upload
        signed = await self.storage.signed_upload(
            name, content_type=document.content_type, size=document.size,
            ttl=self.policy.upload_ttl,
        )
        return updated, signed

    async def complete_upload(self, document_id: str) -> Document:
        document = await self._writable(document_id)
        if document.status == "ready":
            return document  # completing twice is harmless
        name = document.object_name
        if not name:
            raise Conflict("No upload was started for this document: ask for an upload URL "
                           "first.", type_slug="upload-not-started")
        declared = document.content_type
        try:
            stored, sniffed = await confirm_upload(self.storage, self.policy, name,
                                                   content_type=declared, size=document.size)
        except UploadRefused as refused:
            await self._refuse(document, refused.slug, refused.detail, sniffed=refused.sniffed)
        ready = await self.repo.update(document_id, {
            "status": "ready", "sniffed_type": sniffed, "object_generation": stored.generation,
        })
        await self.audit.record(
            "document.file_uploaded", actor=self.ctx.principal,
            account_id=self.ctx.account.id, solution_id=self.ctx.solution.id,
            target=f"documents:{document.id}",
            details={"content_type": declared, "size": stored.size,
                     "sniffed_type": sniffed},
        )
        return ready

    async def _refuse(self, document: Document, slug: str, detail: str,
                      sniffed: str | None = None) -> NoReturn:
        """Delete the unverified object, forget its name, audit, answer 422."""
        if document.object_name:
            await self.storage.delete(document.object_name)
        await self.repo.update(document.id, {"object_name": None, "object_generation": None})
        await self.audit.record(
            "document.file_refused", actor=self.ctx.principal,
            account_id=self.ctx.account.id, solution_id=self.ctx.solution.id,
            target=f"documents:{document.id}",
            details={"reason": slug, "content_type": document.content_type,
                     "size": document.size, "sniffed_type": sniffed},
        )
        raise Unprocessable(f"{detail} The upload was discarded; ask for a new upload URL.",
                            type_slug=slug)

    async def issue_download_url(self, document_id: str) -> tuple[Document, SignedUrl]:
        document = await self.repo.get(document_id)  # readers of the document
        if document.status != "ready" or not document.object_name:
            raise Conflict("This document has no confirmed file yet.",
                           type_slug="document-not-ready")
        filename = policies.download_filename(document.title, document.content_type)
        signed = await self.storage.signed_download(
            document.object_name, ttl=self.policy.download_ttl,
            disposition=policies.content_disposition(filename),
            content_type=document.content_type, generation=document.object_generation,
        )
        return document, signed


def file_prefix(document: Document) -> str:
    """Where every upload of ``document`` lives (see :func:`policy.object_name`)."""
    return f"{document.solution_id}/{document.account_id}/{USE}/{document.id}/"


async def discard_files(storage: StorageService | None, document: Document) -> None:
    """After a document is deleted: remove its stored file and any abandoned upload.

    Best effort: the record is already gone, so a storage outage is logged, not
    raised (a bucket lifecycle rule can sweep what remains)."""
    if storage is None:
        return
    try:
        await storage.delete_prefix(file_prefix(document))
    except StorageUnavailable:
        log.warning("document files not deleted", extra={"document_id": document.id})
