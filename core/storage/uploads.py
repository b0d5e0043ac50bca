"""Confirming an upload: the stored object must be exactly what was declared.

Shared by every use that takes files through signed URLs (documents, branding
images): the object exists, has the declared size and content type, and its
bytes sniff as that type. A refusal names why; the caller discards the object.
"""

from __future__ import annotations

from core.kernel.errors import Conflict
from core.storage.policy import UploadPolicy
from core.storage.port import StorageService, StoredObject
from core.storage.sniff import HEAD_BYTES, ZIP_TAIL_BYTES


class UploadRefused(Exception):
    """The stored object is not what was declared (answered 422 after discarding it)."""

    def __init__(self, slug: str, detail: str, sniffed: str | None = None) -> None:
        super().__init__(detail)
        self.slug = slug
        self.detail = detail
        self.sniffed = sniffed


async def confirm_upload(storage: StorageService, policy: UploadPolicy, name: str, *,
                         content_type: str, size: int) -> tuple[StoredObject, str | None]:
    """The stored object and the type its bytes sniffed as; raises UploadRefused,
    or Conflict (409) when nothing has arrived yet."""
    stored = await storage.stat(name)
    if stored is None:
        raise Conflict("The file has not arrived: PUT it to the upload URL, then complete.",
                       type_slug="upload-missing")
    if stored.size != size:
        raise UploadRefused("size-mismatch",
                            f"The stored file has {stored.size} bytes, but {size} were declared.")
    if stored.content_type != content_type:
        raise UploadRefused("content-type-mismatch",
                            f"The file was uploaded as {str(stored.content_type)[:100]!r}, "
                            f"but {content_type} was declared.")
    head = await storage.read(name, start=0, length=min(HEAD_BYTES, stored.size),
                              generation=stored.generation)
    tail = None
    if policy.needs_tail(content_type):
        length = min(ZIP_TAIL_BYTES, stored.size)
        tail = await storage.read(name, start=stored.size - length, length=length,
                                  generation=stored.generation)
    verdict = policy.verify(content_type, head, size=stored.size, tail=tail)
    if verdict.problem is not None:
        raise UploadRefused("content-mismatch", verdict.problem, verdict.sniffed)
    return stored, verdict.sniffed
