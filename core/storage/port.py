"""The storage port: what the kernel and plugins may ask of object storage.

Browsers move the bytes (signed URLs); the server only signs, inspects and
deletes. Adapters (``core.storage.gcs``) implement it; plugins receive it as
``services.storage`` and never import a cloud SDK.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from datetime import datetime, timedelta

from core.kernel.errors import NotFound, ServiceUnavailable


class StorageUnavailable(ServiceUnavailable):
    """Object storage could not be reached or is not configured (503)."""

    type_slug = "storage-unavailable"


class ObjectMissing(NotFound):
    """The object (or the generation asked for) is not in the bucket (404)."""


@dataclass(frozen=True)
class SignedUrl:
    """A URL the browser uses directly, with the headers it must send unchanged."""

    url: str
    method: str
    headers: dict[str, str]
    expires_at: datetime


@dataclass(frozen=True)
class StoredObject:
    name: str
    size: int
    content_type: str | None
    generation: int


class StorageService(ABC):
    """Port over one bucket. Every method is async; adapters keep blocking I/O off the loop."""

    bucket: str

    @abstractmethod
    async def signed_upload(
        self, name: str, *, content_type: str, size: int, ttl: timedelta
    ) -> SignedUrl:
        """A PUT URL for exactly ``content_type`` and ``size`` bytes (where the
        backend enforces signed headers; always re-checked on completion)."""

    @abstractmethod
    async def signed_download(
        self,
        name: str,
        *,
        ttl: timedelta,
        disposition: str,
        content_type: str,
        generation: int | None = None,
    ) -> SignedUrl:
        """A GET URL whose response carries ``disposition`` and ``content_type``;
        with ``generation`` it serves that version only (never a later overwrite)."""

    @abstractmethod
    async def stat(self, name: str) -> StoredObject | None:
        """Size and stored content type, or None when there is no such object."""

    @abstractmethod
    async def read(
        self, name: str, *, start: int, length: int, generation: int | None = None
    ) -> bytes:
        """Up to ``length`` bytes from offset ``start`` (of ``generation`` if given);
        :class:`ObjectMissing` when there is no such object or generation."""

    @abstractmethod
    async def delete(self, name: str) -> None:
        """Remove the object; a missing object is not an error."""

    @abstractmethod
    async def delete_prefix(self, prefix: str) -> int:
        """Remove every object whose name starts with ``prefix`` (which must end
        in ``/``); returns how many were removed."""

    @abstractmethod
    async def close(self) -> None:
        """Release connections."""
