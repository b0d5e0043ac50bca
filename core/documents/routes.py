"""Documents API: every operation goes through the scoped repository."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from quart import Blueprint, Response
from quart_schema import validate_querystring, validate_request

from core.documents.models import Document
from core.kernel import context
from core.tenancy.models import Scope

blueprint = Blueprint("documents", __name__, url_prefix="/api/v1/accounts/<account_id>/documents")

Tag = Annotated[str, Field(min_length=1, max_length=50, pattern=r"^[\w .:-]+$")]


class DocumentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str = Field(min_length=1, max_length=300)
    content_type: str = Field(min_length=3, max_length=100, pattern=r"^[\w.+-]+/[\w.+-]+$")
    size: int = Field(ge=0, le=5 * 1024**3)
    tags: list[Tag] = Field(default_factory=list, max_length=50)
    scope: Scope = Scope.PRIVATE
    group_id: str | None = Field(None, max_length=64)


class DocumentPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    title: str | None = Field(None, min_length=1, max_length=300)
    tags: list[Tag] | None = Field(None, max_length=50)

    @field_validator("title", "tags", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        """Omit a field to keep it; an explicit null would erase a required value."""
        if value is None:
            raise ValueError("must not be null; omit the field to keep its value")
        return value


class DocumentQuery(BaseModel):
    limit: int = Field(50, ge=1, le=100)
    cursor: str | None = Field(None, max_length=500)
    sort: str = Field("-_id", pattern=r"^-?[a-z_]{1,40}$")
    tag: Tag | None = None
    scope: Scope | None = None
    group_id: str | None = Field(None, max_length=64)
    # "ready": only documents whose file was confirmed (core/storage, docs/storage.md).
    status: Literal["pending", "ready"] | None = None


def public(document: Document) -> dict[str, Any]:
    return document.model_dump(
        mode="json", exclude={"read_keys", "write_keys", "object_name", "object_generation"}
    )


async def _repo(account_id: str) -> Any:
    ctx = await context.enter_account(account_id)
    return context.repository(Document, ctx)


@blueprint.post("")
@validate_request(DocumentIn)
async def create(account_id: str, data: DocumentIn) -> tuple[dict[str, Any], int]:
    repo = await _repo(account_id)
    fields = data.model_dump(exclude={"scope", "group_id"})
    document = await repo.insert(fields, scope=data.scope, group_id=data.group_id)
    return public(document), 201


@blueprint.get("")
@validate_querystring(DocumentQuery)
async def list_documents(account_id: str, query_args: DocumentQuery) -> dict[str, Any]:
    repo = await _repo(account_id)
    filters: dict[str, Any] = {}
    if query_args.tag:
        filters["tags"] = query_args.tag
    if query_args.scope:
        filters["scope"] = query_args.scope.value
    if query_args.group_id:
        filters["group_id"] = query_args.group_id
    if query_args.status:
        filters["status"] = query_args.status
    page = await repo.list(filters=filters, sort=query_args.sort, limit=query_args.limit,
                           cursor=query_args.cursor)
    return {"items": [public(d) for d in page.items], "next_cursor": page.next_cursor}


@blueprint.get("/<document_id>")
async def get(account_id: str, document_id: str) -> dict[str, Any]:
    repo = await _repo(account_id)
    return public(await repo.get(document_id))


@blueprint.patch("/<document_id>")
@validate_request(DocumentPatch)
async def patch(account_id: str, document_id: str, data: DocumentPatch) -> dict[str, Any]:
    repo = await _repo(account_id)
    return public(await repo.update(document_id, data.model_dump(exclude_unset=True)))


@blueprint.delete("/<document_id>")
async def delete(account_id: str, document_id: str) -> Response:
    from core.storage.documents import discard_files

    repo = await _repo(account_id)
    document = await repo.get(document_id)  # its stored file goes too
    await repo.delete(document_id)
    await discard_files(context.services().storage, document)
    return Response(status=204)
