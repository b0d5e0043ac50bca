"""WeComply HTTP API, mounted by the kernel under ``/api/v1/accounts/<account_id>/wecomply/``.

Views validate input, resolve the request context through ``core.kernel.context``
and hand over to :class:`plugins.wecomply.service.WeComply`; they build no
database filters. Every error is a kernel ``Problem`` (problem+json).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from quart import Blueprint, Response
from quart_schema import validate_querystring, validate_request

from core.kernel import context
from core.kernel.errors import NotFound
from core.tenancy.models import Scope, ScopedResource
from plugins.wecomply.models import (
    Chunk,
    Policy,
    PolicyVersion,
    Question,
    Source,
)
from plugins.wecomply.service import MAX_QUESTION_CHARS, WeComply
from plugins.wecomply.settings import SolutionSettings

HIDDEN = {"read_keys", "write_keys"}
MAX_VERSION = 1_000_000
ObjectId = Field(min_length=1, max_length=64, pattern=r"^[0-9a-f]{24}$")


def public(resource: ScopedResource, *, exclude: set[str] | None = None) -> dict[str, Any]:
    return resource.model_dump(mode="json", exclude=HIDDEN | (exclude or set()))


def chunk_public(chunk: Chunk) -> dict[str, Any]:
    return public(chunk, exclude={"terms"})


def _utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


# -- request shapes --------------------------------------------------------------------------


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class SourceIn(Strict):
    document_id: str = ObjectId


class AskIn(Strict):
    question: str = Field(min_length=1, max_length=MAX_QUESTION_CHARS,
                          description=f"At most {MAX_QUESTION_CHARS} characters.")


class PolicyIn(Strict):
    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=2000)
    body: str = Field(min_length=1, max_length=100_000, description="The policy text (v1).")
    summary: str = Field("", max_length=500)
    scope: Literal["account", "group"] = "account"
    group_id: str | None = Field(None, max_length=64)
    due_at: datetime | None = Field(None, description="When acknowledging v1 is due (UTC).")

    @field_validator("due_at")
    @classmethod
    def _due_utc(cls, value: datetime | None) -> datetime | None:
        return _utc(value)


class PolicyPatch(Strict):
    title: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    status: Literal["active", "retired"] | None = None

    @field_validator("title", "description", "status", mode="before")
    @classmethod
    def _not_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("must not be null; omit the field to keep its value")
        return value


class VersionIn(Strict):
    body: str = Field(min_length=1, max_length=100_000)
    summary: str = Field("", max_length=500, description="What changed.")
    due_at: datetime | None = None

    @field_validator("due_at")
    @classmethod
    def _due_utc(cls, value: datetime | None) -> datetime | None:
        return _utc(value)


class AcknowledgeIn(Strict):
    version: int = Field(ge=1, le=MAX_VERSION,
                         description="The version read; must be the current one.")


class Page(BaseModel):
    limit: int = Field(50, ge=1, le=100)
    cursor: str | None = Field(None, max_length=500)


class SourceQuery(Page):
    scope: Scope | None = None
    group_id: str | None = Field(None, max_length=64)
    document_id: str | None = Field(None, max_length=64)


class QuestionQuery(Page):
    status: Literal["answered", "refused"] | None = None


class PolicyQuery(Page):
    scope: Literal["account", "group"] | None = None
    group_id: str | None = Field(None, max_length=64)
    status: Literal["active", "retired"] | None = None


class AttestationQuery(Page):
    version: int | None = Field(None, ge=1, le=MAX_VERSION)


# -- wiring --------------------------------------------------------------------------------


async def _settings(ctx: Any) -> SolutionSettings:
    """The resolved plugin settings (the kernel's cascade); bad values → defaults."""
    values = await context.plugin_settings(ctx, "wecomply")
    try:
        return SolutionSettings.model_validate(values)
    except ValueError:
        return SolutionSettings.model_validate({})


async def _service(account_id: str, *, with_settings: bool = False) -> WeComply:
    ctx = await context.enter_account(account_id)
    services = context.services()
    options: dict[str, Any] = {}
    if with_settings:
        settings = await _settings(ctx)
        options = {"model": settings.model, "top_k": settings.top_k}
    return WeComply(ctx=ctx, bind=context.repository, audit=services.tenancy.audit,
                    directory=services.tenancy.directory, storage=services.storage,
                    ai=services.ai, **options)


def _page(page: Any, render: Any = public) -> dict[str, Any]:
    return {"items": [render(item) for item in page.items], "next_cursor": page.next_cursor}


def make_blueprint() -> Blueprint:
    """A fresh blueprint per app (the kernel mounts it under the plugin prefix)."""
    bp = Blueprint("wecomply", __name__)

    @bp.get("/")
    async def overview(account_id: str) -> dict[str, Any]:
        """What the caller can see here: sources, policies and what they owe."""
        svc = await _service(account_id)
        owed = await svc.my_obligations()
        return {"plugin": "wecomply", "account_id": account_id, "status": "ready",
                "sources": await svc.repo(Source).count(),
                "policies": await svc.repo(Policy).count({"status": "active"}),
                "owed": sum(1 for o in owed if not o.acknowledged),
                "overdue": sum(1 for o in owed if o.overdue)}

    # -- sources of truth ---------------------------------------------------------------

    @bp.post("/sources")
    @validate_request(SourceIn)
    async def register_source(account_id: str, data: SourceIn) -> tuple[dict[str, Any], int]:
        """Make a ready document (TXT, MD, PDF, DOCX) a source of truth: its text is
        extracted, chunked and indexed in the document's scope. 415 for other types."""
        svc = await _service(account_id)
        return public(await svc.register_source(data.document_id)), 201

    @bp.post("/sources/sync")
    async def sync_sources(account_id: str) -> dict[str, Any]:
        """Register every ready document tagged ``wecomply`` that is not a source yet."""
        svc = await _service(account_id)
        result = await svc.sync_sources()
        return {"registered": [public(s) for s in result["registered"]],
                "skipped": result["skipped"]}

    @bp.get("/sources")
    @validate_querystring(SourceQuery)
    async def list_sources(account_id: str, query_args: SourceQuery) -> dict[str, Any]:
        svc = await _service(account_id)
        filters: dict[str, Any] = {}
        if query_args.scope:
            filters["scope"] = query_args.scope.value
        if query_args.group_id:
            filters["group_id"] = query_args.group_id
        if query_args.document_id:
            filters["document_id"] = query_args.document_id
        page = await svc.repo(Source).list(filters=filters, limit=query_args.limit,
                                           cursor=query_args.cursor)
        return _page(page)

    @bp.get("/sources/<source_id>")
    async def get_source(account_id: str, source_id: str) -> dict[str, Any]:
        svc = await _service(account_id)
        return public(await svc.repo(Source).get(source_id))

    @bp.get("/sources/<source_id>/chunks")
    @validate_querystring(Page)
    async def list_chunks(account_id: str, source_id: str, query_args: Page) -> dict[str, Any]:
        """The indexed chunks of a source, in document order."""
        svc = await _service(account_id)
        source = await svc.repo(Source).get(source_id)
        page = await svc.repo(Chunk).list(filters={"source_id": source.id}, sort="ordinal",
                                          limit=query_args.limit, cursor=query_args.cursor)
        return _page(page, chunk_public)

    @bp.delete("/sources/<source_id>")
    async def delete_source(account_id: str, source_id: str) -> Response:
        """Remove the source and its index (the kernel document stays)."""
        svc = await _service(account_id)
        await svc.delete_source(source_id)
        return Response(status=204)

    # -- questions ---------------------------------------------------------------------

    @bp.post("/ask")
    @validate_request(AskIn)
    async def ask(account_id: str, data: AskIn) -> tuple[dict[str, Any], int]:
        """Answered only from indexed chunks the caller may read, with citations; an
        explicit refusal (and no AI call) when none is relevant. Kept in the caller's
        private history."""
        svc = await _service(account_id, with_settings=True)
        return public(await svc.ask(data.question)), 201

    @bp.get("/questions")
    @validate_querystring(QuestionQuery)
    async def list_questions(account_id: str, query_args: QuestionQuery) -> dict[str, Any]:
        """The caller's own questions and answers (private to them), newest first."""
        svc = await _service(account_id)
        filters = {"status": query_args.status} if query_args.status else {}
        page = await svc.repo(Question).list(filters=filters, limit=query_args.limit,
                                             cursor=query_args.cursor)
        return _page(page)

    @bp.get("/questions/<question_id>")
    async def get_question(account_id: str, question_id: str) -> dict[str, Any]:
        svc = await _service(account_id)
        return public(await svc.repo(Question).get(question_id))

    # -- policies ----------------------------------------------------------------------

    @bp.post("/policies")
    @validate_request(PolicyIn)
    async def create_policy(account_id: str, data: PolicyIn) -> tuple[dict[str, Any], int]:
        """A policy (account or group scope) with its first version."""
        svc = await _service(account_id)
        policy, version = await svc.create_policy(
            title=data.title, description=data.description, body=data.body,
            summary=data.summary, scope=Scope(data.scope), group_id=data.group_id,
            due_at=data.due_at)
        return {**public(policy), "version": public(version)}, 201

    @bp.get("/policies")
    @validate_querystring(PolicyQuery)
    async def list_policies(account_id: str, query_args: PolicyQuery) -> dict[str, Any]:
        svc = await _service(account_id)
        filters: dict[str, Any] = {}
        for key in ("scope", "group_id", "status"):
            value = getattr(query_args, key)
            if value:
                filters[key] = value
        page = await svc.repo(Policy).list(filters=filters, limit=query_args.limit,
                                           cursor=query_args.cursor)
        return _page(page)

    @bp.get("/policies/<policy_id>")
    async def get_policy(account_id: str, policy_id: str) -> dict[str, Any]:
        """The policy with the text of its current version."""
        svc = await _service(account_id)
        policy = await svc.repo(Policy).get(policy_id)
        version = await svc.version(policy.id, policy.current_version)
        return {**public(policy), "version": public(version)}

    @bp.patch("/policies/<policy_id>")
    @validate_request(PolicyPatch)
    async def patch_policy(account_id: str, policy_id: str, data: PolicyPatch
                           ) -> dict[str, Any]:
        """Title, description, or retire/reactivate (the text changes only by a new version)."""
        svc = await _service(account_id)
        changes = data.model_dump(exclude_unset=True)
        if not changes:
            return public(await svc.repo(Policy).get(policy_id))
        return public(await svc.update_policy(policy_id, changes))

    @bp.post("/policies/<policy_id>/versions")
    @validate_request(VersionIn)
    async def publish_version(account_id: str, policy_id: str, data: VersionIn
                              ) -> tuple[dict[str, Any], int]:
        """A new version: every member of the audience owes an acknowledgement again."""
        svc = await _service(account_id)
        policy, version = await svc.publish_version(policy_id, body=data.body,
                                                    summary=data.summary, due_at=data.due_at)
        return {**public(policy), "version": public(version)}, 201

    @bp.get("/policies/<policy_id>/versions")
    @validate_querystring(Page)
    async def list_versions(account_id: str, policy_id: str, query_args: Page
                            ) -> dict[str, Any]:
        svc = await _service(account_id)
        policy = await svc.repo(Policy).get(policy_id)
        page = await svc.repo(PolicyVersion).list(filters={"policy_id": policy.id},
                                                  sort="-version", limit=query_args.limit,
                                                  cursor=query_args.cursor)
        return _page(page)

    # A plain <number> (not <int:...>): quart-schema's OpenAPI path regex mangles a
    # converter that follows other variables in the rule.
    @bp.get("/policies/<policy_id>/versions/<number>")
    async def get_version(account_id: str, policy_id: str, number: str) -> dict[str, Any]:
        svc = await _service(account_id)
        if not number.isascii() or not number.isdigit() or len(number) > 7:
            raise NotFound(f"No version {number[:20]!r}: versions are numbered 1, 2, 3, …")
        return public(await svc.version(policy_id, int(number)))

    @bp.post("/policies/<policy_id>/acknowledge")
    @validate_request(AcknowledgeIn)
    async def acknowledge(account_id: str, policy_id: str, data: AcknowledgeIn
                          ) -> tuple[dict[str, Any], int]:
        """Attest that the caller read the current version (201; 200 when already done)."""
        svc = await _service(account_id)
        attestation, created = await svc.acknowledge(policy_id, data.version)
        return public(attestation), 201 if created else 200

    @bp.get("/policies/<policy_id>/attestations")
    @validate_querystring(AttestationQuery)
    async def list_attestations(account_id: str, policy_id: str, query_args: AttestationQuery
                                ) -> dict[str, Any]:
        """Everyone's attestations for the policy's admins; the caller's own otherwise."""
        svc = await _service(account_id)
        _, page = await svc.attestations(policy_id, limit=query_args.limit,
                                         cursor=query_args.cursor, version=query_args.version)
        return _page(page)

    # -- status ------------------------------------------------------------------------

    @bp.get("/me/obligations")
    async def my_obligations(account_id: str) -> dict[str, Any]:
        """The policies the caller must acknowledge, done or not, with due dates."""
        svc = await _service(account_id)
        items = await svc.my_obligations()
        return {"items": [o.as_dict() for o in items], "next_cursor": None}

    @bp.get("/status")
    async def account_status(account_id: str) -> dict[str, Any]:
        """Share acknowledged and overdue counts for the account, per group and per
        policy (ACCOUNT_ADMIN and above)."""
        svc = await _service(account_id)
        return await svc.account_status()

    @bp.get("/groups/<group_id>/status")
    async def group_status(account_id: str, group_id: str) -> dict[str, Any]:
        """Share acknowledged, overdue count and the overdue list of one group
        (its GROUP_ADMINs and the account's admins)."""
        svc = await _service(account_id)
        return await svc.group_status(group_id)

    @bp.get("/groups/<group_id>/overdue")
    async def group_overdue(account_id: str, group_id: str) -> dict[str, Any]:
        """Who in the group is past the due date of a policy's current version."""
        svc = await _service(account_id)
        status = await svc.group_status(group_id)
        return {"items": status["overdue_items"], "next_cursor": None}

    return bp

