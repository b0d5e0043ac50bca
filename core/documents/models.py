"""The document entity."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field

from core.tenancy.models import ScopedResource


class Document(ScopedResource):
    collection: ClassVar[str] = "documents"
    filterable: ClassVar[frozenset[str]] = frozenset({"tags", "content_type", "scope", "group_id"})
    sortable: ClassVar[frozenset[str]] = frozenset({"created_at", "title", "size"})
    indexes: ClassVar[tuple[tuple[tuple[str, int], ...], ...]] = ()

    title: str = Field(min_length=1, max_length=300)
    content_type: str = Field(max_length=100)
    size: int = Field(ge=0, le=5 * 1024**3)
    tags: list[str] = Field(default_factory=list, max_length=50)
    status: str = "pending"
