"""Studio HTTP API, mounted under ``/api/v1/accounts/<account_id>/studio/``.

Routes validate input, build a :class:`StudioService` for the request's
account context and shape responses; they never build database filters.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator
from quart import Blueprint, Response
from quart_schema import validate_querystring, validate_request

from core.kernel import context
from core.kernel.errors import NotFound
from core.tenancy.models import Scope
from plugins.studio.models import MAX_STRING_INPUT, InputValue, Tag
from plugins.studio.service import StudioService, VersionContent, public

MAX_INPUTS = 50
Inputs = dict[str, InputValue | None]


def _not_null(value: Any) -> Any:
    if value is None:
        raise ValueError("must not be null; omit the field to keep its value")
    return value


def bounded_inputs(value: dict[str, Any]) -> dict[str, Any]:
    if len(value) > MAX_INPUTS:
        raise ValueError(f"at most {MAX_INPUTS} inputs")
    for key, item in value.items():
        if len(key) > 64:
            raise ValueError("input names are at most 64 characters")
        if isinstance(item, str) and len(item) > MAX_STRING_INPUT:
            raise ValueError(f"input {key[:64]!r} is longer than {MAX_STRING_INPUT} characters")
    return value


class PromptIn(VersionContent):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=False)

    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=2000)
    tags: list[Tag] = Field(default_factory=list, max_length=20)
    scope: Scope = Scope.PRIVATE
    group_id: str | None = Field(None, max_length=64)
    note: str = Field("", max_length=500)


class PromptPatch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: str | None = Field(None, min_length=1, max_length=200)
    description: str | None = Field(None, max_length=2000)
    tags: list[Tag] | None = Field(None, max_length=20)

    @field_validator("title", "description", "tags", mode="before")
    @classmethod
    def _no_null(cls, value: Any) -> Any:
        return _not_null(value)


class VersionIn(VersionContent):
    note: str = Field("", max_length=500)
    base_version: int | None = Field(None, ge=1, description="409 unless this is the latest")


class RestoreIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    note: str = Field("", max_length=500)


class InputsIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(None, ge=1, description="default: the latest version")
    inputs: Inputs = Field(default_factory=dict)

    @field_validator("inputs")
    @classmethod
    def _bounded(cls, value: Any) -> Any:
        return bounded_inputs(value) if value is not None else value


class SuiteIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int | None = Field(None, ge=1)


class TestCaseIn(BaseModel):
    __test__ = False
    model_config = ConfigDict(extra="forbid")

    name: str = Field(min_length=1, max_length=200)
    inputs: Inputs = Field(default_factory=dict)
    expectations: list[dict[str, Any]] = Field(default_factory=list, max_length=20)

    @field_validator("inputs")
    @classmethod
    def _bounded(cls, value: Any) -> Any:
        return bounded_inputs(value) if value is not None else value


class TestCasePatch(BaseModel):
    __test__ = False
    model_config = ConfigDict(extra="forbid")

    name: str | None = Field(None, min_length=1, max_length=200)
    inputs: Inputs | None = None
    expectations: list[dict[str, Any]] | None = Field(None, max_length=20)

    @field_validator("name", "inputs", "expectations", mode="before")
    @classmethod
    def _no_null(cls, value: Any) -> Any:
        return _not_null(value)

    @field_validator("inputs")
    @classmethod
    def _bounded(cls, value: Any) -> Any:
        return bounded_inputs(value) if value is not None else value


class Page(BaseModel):
    limit: int = Field(50, ge=1, le=100)
    cursor: str | None = Field(None, max_length=500)


class PromptQuery(Page):
    sort: Literal["-_id", "_id", "created_at", "-created_at", "updated_at", "-updated_at",
                  "title", "-title"] = "-_id"
    tag: Tag | None = None
    scope: Scope | None = None
    group_id: str | None = Field(None, max_length=64)
    q: str | None = Field(None, max_length=200, description="words that must all match")
    mine: bool = False


class RunQuery(Page):
    prompt_id: str | None = Field(None, max_length=64)
    status: Literal["running", "completed", "failed"] | None = None
    scope: Literal["private", "global", "solution", "account", "group"] | None = None
    suite_id: str | None = Field(None, max_length=64)


class DiffQuery(BaseModel):
    from_: int = Field(alias="from", ge=1)
    to: int = Field(ge=1)


async def _service(account_id: str) -> StudioService:
    ctx = await context.enter_account(account_id)
    return StudioService(context.services(), ctx)


def _number(value: str) -> int:
    """A version number from the path; anything else is a version that does not exist."""
    if not value.isascii() or not value.isdigit() or len(value) > 9 or int(value) < 1:
        raise NotFound("No such version.")
    return int(value)


def _prompt_body(prompt: Any, version: Any | None = None) -> dict[str, Any]:
    body = public(prompt)
    if version is not None:
        body["latest"] = public(version)
    return body


def _page(items: list[Any], cursor: str | None) -> dict[str, Any]:
    return {"items": [public(i) for i in items], "next_cursor": cursor}


def build_blueprint() -> Blueprint:
    """A fresh blueprint per app (the kernel attaches its gate to the object)."""
    bp = Blueprint("studio", __name__)

    @bp.get("/")
    async def overview(account_id: str) -> dict[str, str]:
        """Reachable only when the account's Solution enables the plugin."""
        await context.enter_account(account_id)
        return {"plugin": "studio", "account_id": account_id, "status": "ready"}

    # -- prompts ------------------------------------------------------------------

    @bp.post("/prompts")
    @validate_request(PromptIn)
    async def create_prompt(account_id: str, data: PromptIn) -> tuple[dict[str, Any], int]:
        svc = await _service(account_id)
        content = VersionContent.model_validate(data.model_dump(include=set(
            VersionContent.model_fields)))
        prompt, version = await svc.create_prompt(
            title=data.title, description=data.description, tags=data.tags, scope=data.scope,
            group_id=data.group_id, content=content, note=data.note)
        return _prompt_body(prompt, version), 201

    @bp.get("/prompts")
    @validate_querystring(PromptQuery)
    async def list_prompts(account_id: str, query_args: PromptQuery) -> dict[str, Any]:
        svc = await _service(account_id)
        filters: dict[str, Any] = {}
        if query_args.tag:
            filters["tags"] = query_args.tag
        if query_args.scope:
            filters["scope"] = query_args.scope.value
        if query_args.group_id:
            filters["group_id"] = query_args.group_id
        if query_args.mine:
            filters["owner_id"] = svc.ctx.principal.uid
        items, cursor = await svc.list_prompts(filters=filters, query=query_args.q,
                                               sort=query_args.sort, limit=query_args.limit,
                                               cursor=query_args.cursor)
        return _page(items, cursor)

    @bp.get("/prompts/<prompt_id>")
    async def get_prompt(account_id: str, prompt_id: str) -> dict[str, Any]:
        svc = await _service(account_id)
        prompt = await svc.get_prompt(prompt_id)
        return _prompt_body(prompt, await svc.version(prompt, None))

    @bp.patch("/prompts/<prompt_id>")
    @validate_request(PromptPatch)
    async def patch_prompt(account_id: str, prompt_id: str, data: PromptPatch
                           ) -> dict[str, Any]:
        svc = await _service(account_id)
        return public(await svc.update_prompt(prompt_id, data.model_dump(exclude_unset=True)))

    @bp.delete("/prompts/<prompt_id>")
    async def delete_prompt(account_id: str, prompt_id: str) -> Response:
        svc = await _service(account_id)
        await svc.delete_prompt(prompt_id)
        return Response(status=204)

    # -- versions -----------------------------------------------------------------

    @bp.get("/prompts/<prompt_id>/versions")
    @validate_querystring(Page)
    async def list_versions(account_id: str, prompt_id: str, query_args: Page
                            ) -> dict[str, Any]:
        svc = await _service(account_id)
        items, cursor = await svc.list_versions(prompt_id, limit=query_args.limit,
                                                cursor=query_args.cursor)
        return _page(items, cursor)

    @bp.post("/prompts/<prompt_id>/versions")
    @validate_request(VersionIn)
    async def add_version(account_id: str, prompt_id: str, data: VersionIn
                          ) -> tuple[dict[str, Any], int]:
        svc = await _service(account_id)
        content = VersionContent.model_validate(data.model_dump(include=set(
            VersionContent.model_fields)))
        version = await svc.add_version(prompt_id, content, note=data.note,
                                        base_version=data.base_version)
        return public(version), 201

    # ``<number>`` is parsed here: quart-schema's OpenAPI path conversion mangles a
    # typed converter (``<int:...>``) that follows another variable in the rule.
    @bp.get("/prompts/<prompt_id>/versions/<number>")
    async def get_version(account_id: str, prompt_id: str, number: str) -> dict[str, Any]:
        svc = await _service(account_id)
        prompt = await svc.get_prompt(prompt_id)
        return public(await svc.version(prompt, _number(number)))

    @bp.post("/prompts/<prompt_id>/versions/<number>/restore")
    @validate_request(RestoreIn)
    async def restore(account_id: str, prompt_id: str, number: str, data: RestoreIn
                      ) -> tuple[dict[str, Any], int]:
        svc = await _service(account_id)
        return public(await svc.restore(prompt_id, _number(number), data.note)), 201

    @bp.get("/prompts/<prompt_id>/diff")
    @validate_querystring(DiffQuery)
    async def diff(account_id: str, prompt_id: str, query_args: DiffQuery) -> dict[str, Any]:
        svc = await _service(account_id)
        return await svc.diff(prompt_id, query_args.from_, query_args.to)

    @bp.post("/prompts/<prompt_id>/render")
    @validate_request(InputsIn)
    async def render_preview(account_id: str, prompt_id: str, data: InputsIn
                             ) -> dict[str, Any]:
        """The rendered messages (sandboxed), without calling the model."""
        svc = await _service(account_id)
        return await svc.preview(prompt_id, data.version, data.inputs)

    # -- test cases ---------------------------------------------------------------

    @bp.get("/prompts/<prompt_id>/tests")
    @validate_querystring(Page)
    async def list_tests(account_id: str, prompt_id: str, query_args: Page) -> dict[str, Any]:
        svc = await _service(account_id)
        items, cursor = await svc.list_test_cases(prompt_id, limit=query_args.limit,
                                                  cursor=query_args.cursor)
        return _page(items, cursor)

    @bp.post("/prompts/<prompt_id>/tests")
    @validate_request(TestCaseIn)
    async def create_test(account_id: str, prompt_id: str, data: TestCaseIn
                          ) -> tuple[dict[str, Any], int]:
        svc = await _service(account_id)
        case = await svc.create_test_case(prompt_id, data.name, data.inputs, data.expectations)
        return public(case), 201

    @bp.get("/prompts/<prompt_id>/tests/<case_id>")
    async def get_test(account_id: str, prompt_id: str, case_id: str) -> dict[str, Any]:
        svc = await _service(account_id)
        return public(await svc.get_test_case(prompt_id, case_id))

    @bp.patch("/prompts/<prompt_id>/tests/<case_id>")
    @validate_request(TestCasePatch)
    async def patch_test(account_id: str, prompt_id: str, case_id: str, data: TestCasePatch
                         ) -> dict[str, Any]:
        svc = await _service(account_id)
        return public(await svc.update_test_case(prompt_id, case_id,
                                                 data.model_dump(exclude_unset=True)))

    @bp.delete("/prompts/<prompt_id>/tests/<case_id>")
    async def delete_test(account_id: str, prompt_id: str, case_id: str) -> Response:
        svc = await _service(account_id)
        await svc.delete_test_case(prompt_id, case_id)
        return Response(status=204)

    @bp.post("/prompts/<prompt_id>/run-tests")
    @validate_request(SuiteIn)
    async def run_tests(account_id: str, prompt_id: str, data: SuiteIn) -> dict[str, Any]:
        svc = await _service(account_id)
        return await svc.run_tests(prompt_id, data.version)

    # -- runs -----------------------------------------------------------------------

    @bp.post("/prompts/<prompt_id>/runs")
    @validate_request(InputsIn)
    async def create_run(account_id: str, prompt_id: str, data: InputsIn
                         ) -> tuple[dict[str, Any], int]:
        """Runs the version; output streams to the caller's ``user`` room in ``/studio``."""
        svc = await _service(account_id)
        return public(await svc.run(prompt_id, data.version, data.inputs)), 201

    @bp.get("/prompts/<prompt_id>/runs")
    @validate_querystring(RunQuery)
    async def list_prompt_runs(account_id: str, prompt_id: str, query_args: RunQuery
                               ) -> dict[str, Any]:
        svc = await _service(account_id)
        await svc.get_prompt(prompt_id)  # an unreadable prompt answers 404, like a missing one
        query_args.prompt_id = prompt_id
        return await _list_runs(account_id, query_args)

    @bp.get("/runs")
    @validate_querystring(RunQuery)
    async def list_runs(account_id: str, query_args: RunQuery) -> dict[str, Any]:
        return await _list_runs(account_id, query_args)

    @bp.get("/runs/<run_id>")
    async def get_run(account_id: str, run_id: str) -> dict[str, Any]:
        svc = await _service(account_id)
        return public(await svc.get_run(run_id))

    @bp.post("/runs/<run_id>/save")
    async def save_run(account_id: str, run_id: str) -> tuple[dict[str, Any], int]:
        svc = await _service(account_id)
        return public(await svc.save_run(run_id)), 201

    return bp


async def _list_runs(account_id: str, query_args: RunQuery) -> dict[str, Any]:
    svc = await _service(account_id)
    filters = {key: value for key, value in (
        ("prompt_id", query_args.prompt_id), ("status", query_args.status),
        ("scope", query_args.scope), ("suite_id", query_args.suite_id)) if value}
    items, cursor = await svc.list_runs(filters=filters, limit=query_args.limit,
                                        cursor=query_args.cursor)
    return _page(items, cursor)
