"""The document entity."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from core.tenancy.models import ScopedResource


class Document(ScopedResource):
    collection: ClassVar[str] = "documents"
    filterable: ClassVar[frozenset[str]] = frozenset(
        {"tags", "content_type", "scope", "group_id", "status"}
    )
    sortable: ClassVar[frozenset[str]] = frozenset({"created_at", "title", "size"})
    indexes: ClassVar[tuple[tuple[tuple[str, int], ...], ...]] = ()

    title: str = Field(min_length=1, max_length=300)
    content_type: str = Field(max_length=100)
    size: int = Field(ge=0, le=5 * 1024**3)
    tags: list[str] = Field(default_factory=list, max_length=50)
    # "pending" until POST .../complete confirms the stored file (core/storage).
    status: Literal["pending", "ready"] = "pending"
    # Server-generated storage object name; never sent to clients.
    object_name: str | None = Field(None, max_length=400)
    # The object generation that was verified; downloads serve only that one.
    object_generation: int | None = None
    # The type sniffed from the file's first bytes when it was confirmed.
    sniffed_type: str | None = Field(None, max_length=100)
