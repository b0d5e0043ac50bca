"""Studio use cases: prompts, versions, test cases and runs for one account context.

The service receives kernel services and an account context (from an HTTP
request or a Socket.IO event alike) and reaches data only through scoped
repositories; it never sees a request. Every write is audited.
"""

from __future__ import annotations

import asyncio
import difflib
import json
import logging
import time
from collections.abc import Mapping, Sequence
from datetime import timedelta
from typing import TYPE_CHECKING, Any, Final

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.ai.errors import AIError, AIOutputError, AIUnavailable, AIUpstreamError
from core.kernel.context import resolve_plugin_settings
from core.kernel.errors import (
    Conflict,
    Forbidden,
    NotFound,
    Problem,
    ServiceUnavailable,
    Unprocessable,
)
from core.tenancy.models import AccountContext, Scope, ScopedResource, new_id, utcnow
from core.tenancy.rules import principal_write_keys, resource_write_keys
from plugins.studio import checks
from plugins.studio.models import (
    Expectation,
    InputValue,
    Prompt,
    PromptVersion,
    Run,
    TestCase,
    VariableSpec,
    resolve_inputs,
    search_terms,
)
from plugins.studio.render import Rendered, TemplateProblem, compile_check, render

if TYPE_CHECKING:
    from core.tenancy.repository import ScopedRepository

log = logging.getLogger("synergyhub.studio")

NAMESPACE: Final = "studio"
MAX_TEST_CASES: Final = 50
SUITE_CONCURRENCY: Final = 4
MAX_STORED_OUTPUT: Final = 200_000
# A version older than this is not a concurrent writer's any more.
SETTLED: Final = timedelta(seconds=10)


class VersionContent(BaseModel):
    """What a version holds: everything that changes the prompt sent to the model."""

    model_config = ConfigDict(extra="forbid")

    template: str = Field(min_length=1, max_length=40_000)
    system: str | None = Field(None, max_length=40_000)
    variables: list[VariableSpec] = Field(default_factory=list, max_length=50)
    model: str | None = Field(None, pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$")
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1, le=32_768)
    json_mode: bool = False


CONTENT_FIELDS: Final = tuple(VersionContent.model_fields)


class TemplateRejected(Unprocessable):
    """A template that does not compile or render, with the part and line (422)."""

    type_slug = "template-error"


def template_problem(exc: TemplateProblem) -> TemplateRejected:
    return TemplateRejected(exc.message, type_slug=exc.slug, part=exc.part, line=exc.line)


def ai_problem(exc: AIError) -> Problem:
    """AI failures as problems, so HTTP and Socket.IO answer them the same way."""
    if isinstance(exc, AIUnavailable):
        return ServiceUnavailable(str(exc), type_slug="ai-not-configured")
    if isinstance(exc, AIOutputError):
        return Problem(str(exc), status=502, type_slug="ai-output-error")
    retryable = isinstance(exc, AIUpstreamError) and exc.retryable
    return Problem(str(exc), status=502, type_slug="ai-upstream-error", retryable=retryable)


def public(resource: ScopedResource) -> dict[str, Any]:
    return resource.model_dump(mode="json", exclude={"read_keys", "write_keys", "search_terms"})


def _diff(label: str, old: str, new: str, a: int, b: int) -> str:
    return "".join(difflib.unified_diff(
        old.splitlines(keepends=True), new.splitlines(keepends=True),
        fromfile=f"v{a}/{label}", tofile=f"v{b}/{label}", n=3,
    ))


def _settings_text(version: PromptVersion) -> str:
    data = version.model_dump(mode="json", include={"variables", "model", "temperature",
                                                    "max_tokens", "json_mode"})
    return json.dumps(data, indent=2, sort_keys=True) + "\n"


class StudioService:
    """Studio for one principal in one account (built per request or per socket event)."""

    def __init__(self, services: Any, ctx: AccountContext) -> None:
        bind = services.tenancy.repositories.bind
        self.services = services
        self.ctx = ctx
        self.prompts: ScopedRepository[Prompt] = bind(Prompt, ctx)
        self.versions: ScopedRepository[PromptVersion] = bind(PromptVersion, ctx)
        self.tests: ScopedRepository[TestCase] = bind(TestCase, ctx)
        self.runs: ScopedRepository[Run] = bind(Run, ctx)
        self._write_keys = set(principal_write_keys(
            ctx.principal, solution_id=ctx.solution.id, account_id=ctx.account.id))
        own = resource_write_keys(Scope.PRIVATE, solution_id=ctx.solution.id,
                                  account_id=ctx.account.id, group_id=None,
                                  owner_id=ctx.principal.uid)
        # Runs are private records: whoever may not write their own private items
        # (a VIEWER, read-only impersonation) cannot run prompts.
        self._may_run = bool(self._write_keys.intersection(own))

    # -- helpers -------------------------------------------------------------------

    async def _audit(self, action: str, target: str, **details: Any) -> None:
        await self.services.tenancy.audit.record(
            f"studio.{action}", actor=self.ctx.principal, account_id=self.ctx.account.id,
            solution_id=self.ctx.solution.id, target=target, details=details or None)

    def _may_write(self, prompt: Prompt) -> bool:
        return bool(self._write_keys.intersection(prompt.write_keys))

    def _require_write(self, prompt: Prompt, what: str) -> None:
        """For actions below a prompt the caller can see (a new version, a test case)."""
        if not self._may_write(prompt):
            raise Forbidden(f"You may read this prompt but not {what}: that needs write access "
                            f"to its {prompt.scope.value} scope.")

    def _require_update(self, prompt: Prompt) -> None:
        """Updates and deletes outside the write filter answer 404 (docs/decisions.md)."""
        if not self._may_write(prompt):
            raise NotFound("No such resource.")  # the same answer as a missing id

    @staticmethod
    def _check_content(content: VersionContent) -> None:
        try:
            compile_check(content.template, "template", content.variables)
            if content.system:
                compile_check(content.system, "system", content.variables)
        except TemplateProblem as exc:
            raise template_problem(exc) from None
        names = [v.name for v in content.variables]
        if len(set(names)) != len(names):
            raise Unprocessable("Variable names must be unique.", type_slug="duplicate-variable")

    @staticmethod
    def _terms(title: str, description: str, tags: list[str], content: Mapping[str, Any]
               ) -> list[str]:
        bodies = [str(content.get("template") or ""), str(content.get("system") or "")]
        return search_terms(title=title, description=description, tags=tags, bodies=bodies)

    # -- prompts -------------------------------------------------------------------

    async def create_prompt(self, *, title: str, description: str, tags: list[str],
                            scope: Scope, group_id: str | None, content: VersionContent,
                            note: str) -> tuple[Prompt, PromptVersion]:
        self._check_content(content)
        data = content.model_dump()
        prompt = await self.prompts.insert(
            {"title": title, "description": description, "tags": tags, "latest_version": 1,
             "search_terms": self._terms(title, description, tags, data)},
            scope=scope, group_id=group_id)
        try:
            version = await self.versions.insert(
                {**data, "prompt_id": prompt.id, "number": 1, "note": note},
                scope=prompt.scope, group_id=prompt.group_id)
        except BaseException:
            await self.prompts.delete(prompt.id)
            raise
        await self._audit("prompt.created", prompt.id, scope=prompt.scope.value, version=1)
        return prompt, version

    async def get_prompt(self, prompt_id: str) -> Prompt:
        return await self.prompts.get(prompt_id)

    async def list_prompts(self, *, filters: dict[str, Any], query: str | None, sort: str,
                           limit: int, cursor: str | None) -> tuple[list[Prompt], str | None]:
        """Text search is equality on stored ``search_terms``: the longest query word goes
        to the database, the others are checked here, page by page."""
        words = search_terms(title="", description=query or "", tags=[], bodies=[])[:8]
        if query and not words:
            raise Unprocessable("Search words need at least 2 letters or digits.",
                                type_slug="invalid-query")
        if not words:
            page = await self.prompts.list(filters=filters, sort=sort, limit=limit, cursor=cursor)
            return page.items, page.next_cursor
        words.sort(key=len, reverse=True)
        lead, rest = words[0], words[1:]
        found: list[Prompt] = []
        next_cursor = cursor
        for _ in range(5):  # bounded work per request; the cursor carries on
            page = await self.prompts.list(filters={**filters, "search_terms": lead}, sort=sort,
                                           limit=limit - len(found), cursor=next_cursor)
            found.extend(p for p in page.items if all(w in p.search_terms for w in rest))
            next_cursor = page.next_cursor
            if next_cursor is None or len(found) >= limit:
                break
        return found, next_cursor

    async def update_prompt(self, prompt_id: str, changes: dict[str, Any]) -> Prompt:
        prompt = await self.prompts.get(prompt_id)
        self._require_update(prompt)
        if changes:
            latest = await self.version(prompt, None)
            merged = {**prompt.model_dump(include={"title", "description", "tags"}), **changes}
            changes["search_terms"] = self._terms(merged["title"], merged["description"],
                                                  merged["tags"], latest.model_dump())
            prompt = await self.prompts.update(prompt_id, changes)
            await self._audit("prompt.updated", prompt.id,
                              fields=sorted(k for k in changes if k != "search_terms"))
        return prompt

    async def delete_prompt(self, prompt_id: str) -> None:
        """The prompt, its versions and test cases; runs stay with their owners as history."""
        prompt = await self.prompts.get(prompt_id)
        self._require_update(prompt)
        await self.prompts.delete(prompt_id)
        for repo in (self.versions, self.tests):
            for _ in range(100):
                page = await repo.list(filters={"prompt_id": prompt_id}, limit=100)
                if not page.items:
                    break
                for item in page.items:
                    try:
                        await repo.delete(item.id)
                    except NotFound:
                        pass
        await self._audit("prompt.deleted", prompt_id, title=prompt.title)

    # -- versions ------------------------------------------------------------------

    async def version(self, prompt: Prompt, number: int | None) -> PromptVersion:
        wanted = prompt.latest_version if number is None else number
        page = await self.versions.list(filters={"prompt_id": prompt.id, "number": wanted},
                                        sort="_id", limit=1)
        if not page.items:
            raise NotFound(f"Prompt {prompt.id} has no version {wanted}.")
        return page.items[0]

    async def list_versions(self, prompt_id: str, *, limit: int, cursor: str | None
                            ) -> tuple[list[PromptVersion], str | None]:
        await self.prompts.get(prompt_id)
        page = await self.versions.list(filters={"prompt_id": prompt_id}, sort="-number",
                                        limit=limit, cursor=cursor)
        return page.items, page.next_cursor

    async def add_version(self, prompt_id: str, content: VersionContent, *, note: str,
                          base_version: int | None = None,
                          restored_from: int | None = None) -> PromptVersion:
        """A new immutable version; concurrent edits of the same base answer 409."""
        prompt = await self.prompts.get(prompt_id)
        self._require_write(prompt, "edit it")
        if base_version is not None and base_version != prompt.latest_version:
            raise Conflict(f"The prompt is at version {prompt.latest_version}, not "
                           f"{base_version}; reload it and apply your edit again.",
                           type_slug="version-conflict", latest_version=prompt.latest_version)
        self._check_content(content)
        number = prompt.latest_version + 1
        # A settled version above latest_version means the prompt's update was lost after
        # an insert: count it, so the prompt heals instead of refusing every edit. (Fresh
        # ones may be concurrent writers about to withdraw; counting those leaves gaps.)
        top = await self.versions.list(filters={"prompt_id": prompt.id}, sort="-number",
                                       limit=1)
        if top.items and top.items[0].number >= number and \
                utcnow() - top.items[0].created_at > SETTLED:
            number = top.items[0].number + 1
        version = await self.versions.insert(
            {**content.model_dump(), "prompt_id": prompt.id, "number": number, "note": note,
             "restored_from": restored_from},
            scope=prompt.scope, group_id=prompt.group_id)
        # Numbers are claimed optimistically: a writer that finds another record with its
        # number withdraws. At most one survives (whoever checked while alone); when
        # writers collide both may withdraw, and each answers 409 to retry.
        same = await self.versions.list(filters={"prompt_id": prompt.id, "number": number},
                                        sort="_id", limit=2)
        if any(item.id != version.id for item in same.items):
            await self.versions.delete(version.id)
            raise Conflict("Someone else saved a version at the same moment; reload the prompt "
                           "and apply your edit again.", type_slug="version-conflict")
        await self.prompts.update(prompt.id, {
            "latest_version": number,
            "search_terms": self._terms(prompt.title, prompt.description, prompt.tags,
                                        content.model_dump())})
        action = "version.restored" if restored_from is not None else "version.created"
        await self._audit(action, prompt.id, version=number, restored_from=restored_from)
        return version

    async def restore(self, prompt_id: str, number: int, note: str) -> PromptVersion:
        prompt = await self.prompts.get(prompt_id)
        old = await self.version(prompt, number)
        content = VersionContent.model_validate(old.model_dump(include=set(CONTENT_FIELDS)))
        return await self.add_version(prompt_id, content,
                                      note=note or f"Restored from version {number}",
                                      restored_from=number)

    async def diff(self, prompt_id: str, a: int, b: int) -> dict[str, Any]:
        prompt = await self.prompts.get(prompt_id)
        old, new = await self.version(prompt, a), await self.version(prompt, b)
        parts = {
            "template": _diff("template", old.template, new.template, a, b),
            "system": _diff("system", old.system or "", new.system or "", a, b),
            "settings": _diff("settings", _settings_text(old), _settings_text(new), a, b),
        }
        changed = {k: v for k, v in parts.items() if v}
        return {"prompt_id": prompt.id, "from": a, "to": b, "changed": sorted(changed),
                "diff": "".join(changed.values()), "parts": changed}

    # -- rendering -----------------------------------------------------------------

    @staticmethod
    def resolve(version: PromptVersion, inputs: dict[str, Any]) -> dict[str, InputValue]:
        try:
            return resolve_inputs(version.variables, inputs)
        except ValueError as exc:
            raise Unprocessable(f"Inputs do not match version {version.number}'s variables: "
                                f"{exc}", type_slug="invalid-inputs") from None

    @staticmethod
    async def render(version: PromptVersion, values: Mapping[str, Any]) -> Rendered:
        try:
            return await render(version.template, version.system, values)
        except TemplateProblem as exc:
            raise template_problem(exc) from None

    async def preview(self, prompt_id: str, number: int | None, inputs: dict[str, Any]
                      ) -> dict[str, Any]:
        prompt = await self.prompts.get(prompt_id)
        version = await self.version(prompt, number)
        rendered = await self.render(version, self.resolve(version, inputs))
        return {"prompt_id": prompt.id, "version": version.number, "system": rendered.system,
                "user": rendered.user, "messages": rendered.messages()}

    # -- test cases ----------------------------------------------------------------

    @staticmethod
    def _expectations(raw: Sequence[Any]) -> list[dict[str, Any]]:
        from pydantic import TypeAdapter

        adapter: TypeAdapter[Any] = TypeAdapter(Expectation)
        out = []
        for n, item in enumerate(raw):
            try:
                parsed = adapter.validate_python(item)
            except ValidationError as exc:
                first = exc.errors(include_url=False, include_input=False)[0]
                where = ".".join(str(p) for p in first.get("loc", ()))
                raise Unprocessable(f"expectations[{n}] {where}: {first['msg']}",
                                    type_slug="invalid-expectation") from None
            out.append(parsed.model_dump(by_alias=True))
        return out

    async def create_test_case(self, prompt_id: str, name: str, inputs: dict[str, Any],
                               expectations: list[Any]) -> TestCase:
        prompt = await self.prompts.get(prompt_id)
        self._require_write(prompt, "add test cases to it")
        if await self.tests.count({"prompt_id": prompt.id}) >= MAX_TEST_CASES:
            raise Conflict(f"A prompt has at most {MAX_TEST_CASES} test cases.",
                           type_slug="too-many-test-cases")
        self.resolve(await self.version(prompt, None), inputs)
        case = await self.tests.insert(
            {"prompt_id": prompt.id, "name": name, "inputs": inputs,
             "expectations": self._expectations(expectations)},
            scope=prompt.scope, group_id=prompt.group_id)
        await self._audit("test_case.created", case.id, prompt_id=prompt.id)
        return case

    async def get_test_case(self, prompt_id: str, case_id: str) -> TestCase:
        case = await self.tests.get(case_id)
        if case.prompt_id != prompt_id:
            raise NotFound("No such test case for this prompt.")
        return case

    async def list_test_cases(self, prompt_id: str, *, limit: int, cursor: str | None
                              ) -> tuple[list[TestCase], str | None]:
        await self.prompts.get(prompt_id)
        page = await self.tests.list(filters={"prompt_id": prompt_id}, sort="_id", limit=limit,
                                     cursor=cursor)
        return page.items, page.next_cursor

    async def update_test_case(self, prompt_id: str, case_id: str, changes: dict[str, Any]
                               ) -> TestCase:
        await self.get_test_case(prompt_id, case_id)
        if "expectations" in changes:
            changes["expectations"] = self._expectations(changes["expectations"])
        if "inputs" in changes:
            prompt = await self.prompts.get(prompt_id)
            self.resolve(await self.version(prompt, None), changes["inputs"])
        case = await self.tests.update(case_id, changes)
        await self._audit("test_case.updated", case.id, prompt_id=prompt_id,
                          fields=sorted(changes))
        return case

    async def delete_test_case(self, prompt_id: str, case_id: str) -> None:
        await self.get_test_case(prompt_id, case_id)
        await self.tests.delete(case_id)
        await self._audit("test_case.deleted", case_id, prompt_id=prompt_id)

    # -- runs ----------------------------------------------------------------------

    def _ai(self) -> Any:
        """The gateway, or 503 before anything is stored when no provider is configured."""
        gateway = self.services.ai
        if gateway is None:
            raise ServiceUnavailable("The AI gateway is not running; /readyz shows why.",
                                     type_slug="ai-not-configured")
        try:
            gateway.resolve_config(None)
        except AIUnavailable as exc:
            raise ai_problem(exc) from None
        return gateway

    async def _call_options(self, version: PromptVersion) -> dict[str, Any]:
        """The version's model, else the studio ``model`` setting as the cascade resolves
        it for this account, else the AI provider's default."""
        settings = await resolve_plugin_settings(self.services, self.ctx, NAMESPACE)
        model = version.model or settings.get("model")
        return {
            "account_id": self.ctx.account.id,
            "model": model,
            "temperature": version.temperature,
            "max_tokens": version.max_tokens,
            "response_format": {"type": "json_object"} if version.json_mode else None,
        }

    async def _emit(self, event: str, data: Any) -> None:
        realtime = self.services.realtime
        if realtime is None:
            return
        try:
            await realtime.emit_to_user(NAMESPACE, self.ctx.principal.uid, event, data)
        except Exception:  # a lost stream event must not fail the run
            log.warning("studio stream event not delivered", exc_info=True)

    def _require_run(self) -> None:
        if not self._may_run:
            raise Forbidden("Running a prompt stores a run record, and your role here is "
                            "read-only.", type_slug="read-only")

    async def _new_run(self, prompt: Prompt, version: PromptVersion,
                       values: Mapping[str, Any], rendered: Rendered, **extra: Any) -> Run:
        self._require_run()
        return await self.runs.insert(
            {"prompt_id": prompt.id, "version": version.number, "version_id": version.id,
             "inputs": dict(values), "messages": rendered.messages(), **extra},
            scope=Scope.PRIVATE)

    async def _finish(self, run: Run, started: float, *, output: str = "",
                      error: str | None = None, result: Any = None) -> Run:
        changes: dict[str, Any] = {
            "status": "failed" if error else "completed",
            "output": output[:MAX_STORED_OUTPUT],
            "error": error,
            "duration_ms": int((time.monotonic() - started) * 1000),
        }
        if result is not None:
            changes.update(model=result.model, finish_reason=result.finish_reason,
                           usage={k: int(v) for k, v in result.usage.model_dump().items()})
        return await self.runs.update(run.id, changes)

    async def run(self, prompt_id: str, number: int | None, inputs: dict[str, Any]) -> Run:
        """Render, store a private run, stream the answer to the caller's user room."""
        prompt = await self.prompts.get(prompt_id)
        self._require_run()
        version = await self.version(prompt, number)
        values = self.resolve(version, inputs)
        rendered = await self.render(version, values)
        gateway = self._ai()
        run = await self._new_run(prompt, version, values, rendered)
        await self._audit("run.created", run.id, prompt_id=prompt.id, version=version.number)
        started = time.monotonic()
        await self._emit("run.started", {"run_id": run.id, "prompt_id": prompt.id,
                                         "version": version.number})
        parts: list[str] = []
        try:
            async with await gateway.stream_chat(messages=rendered.messages(),
                                                 **await self._call_options(version)) as stream:
                realtime = self.services.realtime
                deltas = stream if realtime is None else realtime.relay(
                    NAMESPACE, ("user", self.ctx.principal.uid), "run.delta", stream,
                    key={"run_id": run.id})
                async for delta in deltas:
                    parts.append(delta)
                result = stream.result
        except asyncio.CancelledError:
            # The caller went away: the gateway closed the stream and metered it.
            await asyncio.shield(self._finish(run, started, output="".join(parts),
                                              error="The run was interrupted."))
            raise
        except AIError as exc:
            problem = ai_problem(exc)
            run = await self._finish(run, started, output="".join(parts), error=problem.detail,
                                     result=None)
            await self._emit("run.failed", {"run_id": run.id, "status": problem.status,
                                            "detail": problem.detail})
            raise problem from None
        run = await self._finish(run, started, output="".join(parts), result=result)
        await self._emit("run.completed", public(run))
        return run

    async def get_run(self, run_id: str) -> Run:
        return await self.runs.get(run_id)

    async def list_runs(self, *, filters: dict[str, Any], limit: int, cursor: str | None
                        ) -> tuple[list[Run], str | None]:
        page = await self.runs.list(filters=filters, limit=limit, cursor=cursor)
        return page.items, page.next_cursor

    async def save_run(self, run_id: str) -> Run:
        """Copy a private run into its prompt's scope, where the prompt's readers see it."""
        run = await self.runs.get(run_id)
        if run.scope is not Scope.PRIVATE or run.owner_id != self.ctx.principal.uid:
            raise Conflict("Only your own private runs can be saved.", type_slug="not-private")
        if run.saved_run_id:
            raise Conflict(f"This run is already saved as {run.saved_run_id}.",
                           type_slug="already-saved", saved_run_id=run.saved_run_id)
        if run.status == "running":
            raise Conflict("The run has not finished yet.", type_slug="run-in-progress")
        prompt = await self.prompts.get(run.prompt_id)
        if prompt.scope is Scope.PRIVATE:
            raise Conflict("The prompt is private: its runs are already in its scope.",
                           type_slug="prompt-private")
        data = run.model_dump(exclude={
            "id", "solution_id", "account_id", "group_id", "owner_id", "scope", "read_keys",
            "write_keys", "created_at", "updated_at", "saved_run_id", "source_run_id"})
        saved = await self.runs.insert({**data, "source_run_id": run.id},
                                       scope=prompt.scope, group_id=prompt.group_id)
        await self.runs.update(run.id, {"saved_run_id": saved.id})
        await self._audit("run.saved", saved.id, source_run_id=run.id, prompt_id=prompt.id,
                          scope=prompt.scope.value)
        return saved

    # -- test suites ---------------------------------------------------------------

    async def run_tests(self, prompt_id: str, number: int | None) -> dict[str, Any]:
        """Run every test case of the prompt against one version; pass/fail per case."""
        prompt = await self.prompts.get(prompt_id)
        self._require_run()
        version = await self.version(prompt, number)
        page = await self.tests.list(filters={"prompt_id": prompt.id}, sort="_id",
                                     limit=MAX_TEST_CASES)
        cases = page.items
        if not cases:
            raise Unprocessable("This prompt has no test cases yet.", type_slug="no-test-cases")
        gateway = self._ai()
        options = await self._call_options(version)  # once for the suite, not per case
        suite_id = new_id()
        limiter = asyncio.Semaphore(SUITE_CONCURRENCY)

        async def one(case: TestCase) -> tuple[TestCase, Run | None, str, str | None]:
            """(case, run, output, error before judging)."""
            try:
                values = self.resolve(version, dict(case.inputs))
                rendered = await self.render(version, values)
            except Problem as exc:
                return case, None, "", exc.detail
            run = await self._new_run(prompt, version, values, rendered,
                                      test_case_id=case.id, suite_id=suite_id)
            started = time.monotonic()
            async with limiter:
                try:
                    result = await gateway.chat(messages=rendered.messages(), **options)
                except AIUnavailable:
                    await self._finish(run, started, error="No AI provider is configured.")
                    raise
                except AIError as exc:
                    detail = ai_problem(exc).detail
                    run = await self._finish(run, started, error=detail)
                    return case, run, "", f"the AI provider failed: {detail}"
            run = await self._finish(run, started, output=result.text, result=result)
            return case, run, result.text, None

        try:
            outcomes = await asyncio.gather(*(one(c) for c in cases))
        except AIUnavailable as exc:
            raise ai_problem(exc) from None
        judged = await checks.judge_all(
            [(case.expectations if error is None else [], output)
             for case, _, output, error in outcomes])
        results = []
        for (case, run, output, error), case_checks in zip(outcomes, judged, strict=True):
            passed = error is None and all(c.passed for c in case_checks)
            rows = [c.as_dict() for c in case_checks]
            if run is not None:
                await self.runs.update(run.id, {"checks": rows, "passed": passed})
            results.append({
                "test_case_id": case.id, "name": case.name, "passed": passed,
                "run_id": run.id if run else None, "error": error, "checks": rows,
                "output": output[:2000],
            })
        passed_count = sum(1 for r in results if r["passed"])
        await self._audit("tests.run", prompt.id, suite_id=suite_id, version=version.number,
                          total=len(results), passed=passed_count)
        return {"suite_id": suite_id, "prompt_id": prompt.id, "version": version.number,
                "total": len(results), "passed": passed_count,
                "failed": len(results) - passed_count, "results": results}
