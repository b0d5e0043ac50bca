"""Studio entities: prompts, their immutable versions, test cases and runs.

All four are scoped resources (the kernel's repository enforces who reads and
writes them). Versions and test cases are stored with their prompt's scope and
group, so they carry exactly the prompt's grant keys; runs are private to the
runner until saved into the prompt's scope.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.tenancy.models import ScopedResource
from plugins.studio import checks

NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]{0,63}$"
MODEL_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,99}$"
MAX_STRING_INPUT = 10_000
Tag = Annotated[str, Field(min_length=1, max_length=50, pattern=r"^[\w .:-]+$")]
InputValue = str | int | float | bool

# Jinja keywords, globals and Python keywords cannot name a variable.
RESERVED = frozenset({
    "true", "false", "none", "True", "False", "None", "loop", "self", "caller", "varargs",
    "kwargs", "range", "dict", "namespace", "cycler", "joiner", "super", "and", "or", "not",
    "in", "is", "if", "else", "elif", "for", "endfor", "set", "block", "extends", "import",
    "include", "macro", "call", "filter", "with", "without", "context", "as", "from",
    "recursive", "scoped", "required", "ignore", "missing", "pluralize", "trans",
})


class VariableSpec(BaseModel):
    """A declared, typed template variable."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=NAME_PATTERN)
    type: Literal["string", "number", "boolean", "enum"] = "string"
    required: bool = True
    default: InputValue | None = None
    values: list[Annotated[str, Field(min_length=1, max_length=200)]] | None = Field(
        None, min_length=1, max_length=50, description="allowed values (enum only)")
    max_length: int | None = Field(None, ge=1, le=MAX_STRING_INPUT,
                                   description="longest string input (string only)")
    description: str = Field("", max_length=500)

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in RESERVED:
            raise ValueError(f"{value!r} is reserved in templates; choose another name")
        return value

    @model_validator(mode="after")
    def _consistent(self) -> VariableSpec:
        if self.type == "enum" and not self.values:
            raise ValueError(f"enum variable {self.name!r} needs values")
        if self.type != "enum" and self.values is not None:
            raise ValueError(f"only enum variables take values ({self.name!r} is {self.type})")
        if self.type != "string" and self.max_length is not None:
            raise ValueError(f"only string variables take max_length ({self.name!r})")
        if self.default is not None:
            coerce_input(self, self.default)
        return self


def coerce_input(spec: VariableSpec, value: Any) -> InputValue:
    """One input checked against its declaration; ValueError says why not."""
    match spec.type:
        case "string":
            if not isinstance(value, str):
                raise ValueError(f"{spec.name!r} must be a string")
            limit = spec.max_length or MAX_STRING_INPUT
            if len(value) > limit:
                raise ValueError(f"{spec.name!r} is longer than {limit} characters")
            return value
        case "number":
            if isinstance(value, bool) or not isinstance(value, int | float):
                raise ValueError(f"{spec.name!r} must be a number")
            if (isinstance(value, float) and value != value) or abs(value) > 1e15:
                raise ValueError(f"{spec.name!r} must be a finite number below 1e15")
            return value
        case "boolean":
            if not isinstance(value, bool):
                raise ValueError(f"{spec.name!r} must be true or false")
            return value
        case "enum":
            if not isinstance(value, str) or value not in (spec.values or []):
                raise ValueError(f"{spec.name!r} must be one of {spec.values}")
            return value
    raise ValueError(f"unknown type of {spec.name!r}")


def resolve_inputs(specs: list[VariableSpec], inputs: dict[str, Any]) -> dict[str, InputValue]:
    """Inputs after declaration checks and defaults; optional ones without value stay unset."""
    by_name = {s.name: s for s in specs}
    unknown = sorted(set(inputs) - set(by_name))
    if unknown:
        raise ValueError(f"{unknown[0]!r} is not a declared variable "
                         f"(declared: {', '.join(sorted(by_name)) or 'none'})")
    values: dict[str, InputValue] = {}
    for spec in specs:
        if spec.name in inputs and inputs[spec.name] is not None:
            values[spec.name] = coerce_input(spec, inputs[spec.name])
        elif spec.default is not None:
            values[spec.name] = spec.default
        elif spec.required:
            raise ValueError(f"{spec.name!r} is required")
    return values


# -- test-case expectations ------------------------------------------------------------


class Contains(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["contains", "not_contains"]
    value: str = Field(min_length=1, max_length=2000)
    case_sensitive: bool = False


class Length(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["max_length", "min_length"]
    value: int = Field(ge=0, le=1_000_000)


class JsonCheck(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["json"]
    schema_: dict[str, Any] | None = Field(None, alias="schema")

    @field_validator("schema_")
    @classmethod
    def _supported(cls, value: dict[str, Any] | None) -> dict[str, Any] | None:
        if value is not None:
            checks.check_schema(value)
        return value

    def model_dump(self, **kwargs: Any) -> dict[str, Any]:
        return super().model_dump(**{"by_alias": True, **kwargs})


class RegexCheck(BaseModel):
    model_config = ConfigDict(extra="forbid")
    kind: Literal["regex"]
    pattern: str = Field(min_length=1, max_length=checks.MAX_PATTERN_CHARS)
    ignore_case: bool = False

    @field_validator("pattern")
    @classmethod
    def _safe(cls, value: str) -> str:
        return checks.check_pattern(value)


Expectation = Annotated[Contains | Length | JsonCheck | RegexCheck, Field(discriminator="kind")]


# -- search terms ------------------------------------------------------------------------

_WORD = re.compile(r"\w{2,40}")
MAX_TERMS = 400


def tokenize(text: str) -> list[str]:
    """Lower-cased, accent-folded words of 2–40 characters, in order, without repeats."""
    folded = unicodedata.normalize("NFKD", text.casefold())
    folded = "".join(ch for ch in folded if not unicodedata.combining(ch))
    seen: dict[str, None] = {}
    for word in _WORD.findall(folded):
        seen.setdefault(word, None)
    return list(seen)


def search_terms(*, title: str, description: str, tags: list[str], bodies: list[str]) -> list[str]:
    """The words a prompt is found by: whole words everywhere, and prefixes of title words
    (so "invo" finds "Invoice triage"). Stored at write time; queries are equality on it."""
    terms: dict[str, None] = {}
    for word in tokenize(title):
        for end in range(3, len(word)):
            terms.setdefault(word[:end], None)
        terms.setdefault(word, None)
    for text in (description, " ".join(tags), *bodies):
        for word in tokenize(text):
            terms.setdefault(word, None)
            if len(terms) >= MAX_TERMS:
                return list(terms)
    return list(terms)[:MAX_TERMS]


# -- stored records ----------------------------------------------------------------------


class Prompt(ScopedResource):
    collection: ClassVar[str] = "studio_prompts"
    filterable: ClassVar[frozenset[str]] = frozenset(
        {"tags", "scope", "group_id", "owner_id", "search_terms"})
    sortable: ClassVar[frozenset[str]] = frozenset({"created_at", "updated_at", "title"})

    title: str = Field(min_length=1, max_length=200)
    description: str = Field("", max_length=2000)
    tags: list[str] = Field(default_factory=list, max_length=20)
    latest_version: int = Field(1, ge=1)
    search_terms: list[str] = Field(default_factory=list, max_length=MAX_TERMS)


class PromptVersion(ScopedResource):
    """Immutable: the API never updates a version; an edit or a restore adds one."""

    collection: ClassVar[str] = "studio_prompt_versions"
    filterable: ClassVar[frozenset[str]] = frozenset({"prompt_id", "number"})
    sortable: ClassVar[frozenset[str]] = frozenset({"number", "created_at"})

    prompt_id: str
    number: int = Field(ge=1)
    template: str
    system: str | None = None
    variables: list[VariableSpec] = Field(default_factory=list, max_length=50)
    model: str | None = Field(None, max_length=100)
    temperature: float | None = Field(None, ge=0, le=2)
    max_tokens: int | None = Field(None, ge=1, le=32_768)
    json_mode: bool = False
    note: str = Field("", max_length=500)
    restored_from: int | None = None


class TestCase(ScopedResource):
    __test__ = False  # not a pytest class

    collection: ClassVar[str] = "studio_test_cases"
    filterable: ClassVar[frozenset[str]] = frozenset({"prompt_id"})
    sortable: ClassVar[frozenset[str]] = frozenset({"created_at", "name"})

    prompt_id: str
    name: str = Field(min_length=1, max_length=200)
    inputs: dict[str, InputValue] = Field(default_factory=dict)
    expectations: list[dict[str, Any]] = Field(default_factory=list, max_length=20)


def empty_usage() -> dict[str, int]:
    return {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}


class Run(ScopedResource):
    collection: ClassVar[str] = "studio_runs"
    filterable: ClassVar[frozenset[str]] = frozenset(
        {"prompt_id", "status", "scope", "test_case_id", "suite_id"})
    sortable: ClassVar[frozenset[str]] = frozenset({"created_at"})

    prompt_id: str
    version: int
    version_id: str
    inputs: dict[str, InputValue] = Field(default_factory=dict)
    messages: list[dict[str, str]] = Field(default_factory=list)
    status: Literal["running", "completed", "failed"] = "running"
    output: str = ""
    error: str | None = None
    model: str | None = None
    finish_reason: str | None = None
    # A plain dict: the repository stores validated changes as they are, and a nested
    # model would not encode (see docs/studio.md).
    usage: dict[str, int] = Field(default_factory=empty_usage)
    duration_ms: int | None = None
    test_case_id: str | None = None
    suite_id: str | None = None
    checks: list[dict[str, Any]] | None = None
    passed: bool | None = None
    saved_run_id: str | None = None
    source_run_id: str | None = None
