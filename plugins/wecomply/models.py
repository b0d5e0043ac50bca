"""WeComply's scoped records. Every one lives in a tenancy scope; the kernel's
repository stamps tenant fields and grant keys and filters every query by them.

* ``Source`` / ``Chunk`` inherit the scope (and group) of the kernel document they
  were extracted from, so a chunk is readable exactly by the document's readers.
* ``Policy`` / ``PolicyVersion`` / ``Attestation`` live in the policy's scope
  (account or group).
* ``Question`` (the Q&A history) is always private to the asker.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar, Literal

from pydantic import BaseModel, Field

from core.tenancy.models import ScopedResource

Index = tuple[tuple[tuple[str, int], ...], ...]


class Source(ScopedResource):
    """A kernel document registered as a source of truth, with what its indexing found."""

    collection: ClassVar[str] = "wecomply_sources"
    filterable: ClassVar[frozenset[str]] = frozenset({"document_id", "scope", "group_id"})
    sortable: ClassVar[frozenset[str]] = frozenset({"created_at", "title"})
    indexes: ClassVar[Index] = ((("document_id", 1),),)

    document_id: str = Field(max_length=64)
    title: str = Field(min_length=1, max_length=300)
    content_type: str = Field(max_length=100)
    extractor: Literal["text", "markdown", "pdf", "docx"]
    pages: int | None = None
    char_count: int = Field(ge=0)
    chunk_count: int = Field(ge=0)


class Chunk(ScopedResource):
    """One indexed piece of a source; ``terms`` are its distinct normalised terms."""

    collection: ClassVar[str] = "wecomply_chunks"
    filterable: ClassVar[frozenset[str]] = frozenset({"terms", "source_id", "document_id"})
    sortable: ClassVar[frozenset[str]] = frozenset({"created_at", "ordinal"})
    indexes: ClassVar[Index] = ((("terms", 1),), (("source_id", 1), ("ordinal", 1)))

    source_id: str = Field(max_length=64)
    document_id: str = Field(max_length=64)
    ordinal: int = Field(ge=0)
    heading: str = Field("", max_length=2000)
    text: str = Field(min_length=1, max_length=20_000)
    terms: list[str] = Field(default_factory=list, max_length=1024)
    length: int = Field(0, ge=0)


class Policy(ScopedResource):
    """A policy members must acknowledge; each edit of its text is a new version."""

    collection: ClassVar[str] = "wecomply_policies"
    filterable: ClassVar[frozenset[str]] = frozenset({"scope", "group_id", "status"})
    sortable: ClassVar[frozenset[str]] = frozenset({"created_at", "title", "updated_at"})

    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=2000)
    status: Literal["active", "retired"] = "active"
    current_version: int = Field(1, ge=1)
    # Copied from the current version, so status views need no second read per policy.
    current_due_at: datetime | None = None


class PolicyVersion(ScopedResource):
    """The immutable text of one version and when acknowledging it is due."""

    collection: ClassVar[str] = "wecomply_policy_versions"
    filterable: ClassVar[frozenset[str]] = frozenset({"policy_id", "version"})
    sortable: ClassVar[frozenset[str]] = frozenset({"created_at", "version"})
    indexes: ClassVar[Index] = ((("policy_id", 1), ("version", 1)),)

    policy_id: str = Field(max_length=64)
    version: int = Field(ge=1)
    body: str = Field(min_length=1, max_length=100_000)
    summary: str = Field("", max_length=500)
    due_at: datetime | None = None


class Attestation(ScopedResource):
    """Who (``user_id``) acknowledged which version of which policy, and when."""

    collection: ClassVar[str] = "wecomply_attestations"
    filterable: ClassVar[frozenset[str]] = frozenset({"policy_id", "version", "user_id"})
    sortable: ClassVar[frozenset[str]] = frozenset({"created_at", "acknowledged_at"})
    indexes: ClassVar[Index] = ((("policy_id", 1), ("version", 1)), (("user_id", 1),))

    policy_id: str = Field(max_length=64)
    version: int = Field(ge=1)
    user_id: str = Field(max_length=128)
    acknowledged_at: datetime


class Citation(BaseModel):
    """Where an answer's statement comes from: a document and one of its chunks."""

    n: int
    document_id: str
    source_id: str
    chunk_id: str
    chunk: int
    heading: str = ""
    title: str = ""
    excerpt: str = ""


class Question(ScopedResource):
    """One question and its answer (or refusal), private to the asker."""

    collection: ClassVar[str] = "wecomply_questions"
    filterable: ClassVar[frozenset[str]] = frozenset({"status"})
    sortable: ClassVar[frozenset[str]] = frozenset({"created_at"})

    question: str = Field(min_length=1, max_length=2000)
    status: Literal["answered", "refused"]
    answer: str = Field(max_length=20_000)
    refusal_reason: Literal["no-relevant-sources", "not-in-sources"] | None = None
    citations: list[Citation] = Field(default_factory=list, max_length=20)
    model: str | None = Field(None, max_length=100)
    prompt_tokens: int = 0
    completion_tokens: int = 0


MODELS: list[type[ScopedResource]] = [Source, Chunk, Policy, PolicyVersion, Attestation, Question]
