"""Expected properties of a test case, and how an output is judged against them.

Pure functions over strings (plus one bounded subprocess for regular
expressions). Two kinds of client input are code in disguise and are bounded
here: JSON schemas (a documented subset, checked when a test case is saved)
and regular expressions (length and feature limits when saved; evaluated in a
child process with a time limit, because Python's ``re`` cannot be
interrupted).
"""

from __future__ import annotations

import asyncio
import importlib
import json
import math
import re
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

MAX_PATTERN_CHARS: Final = 200
MAX_SCHEMA_BYTES: Final = 16 * 1024
MAX_SCHEMA_DEPTH: Final = 10
#: Output longer than this is cut before a regular expression sees it.
MAX_REGEX_SUBJECT: Final = 100_000
REGEX_SECONDS: Final = 2.0

SCHEMA_KEYWORDS: Final = frozenset({
    "type", "properties", "required", "additionalProperties", "items", "enum", "const",
    "minLength", "maxLength", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "minItems", "maxItems", "uniqueItems", "anyOf", "allOf",
    # annotations, ignored
    "title", "description", "$schema", "$id", "$comment", "examples", "default",
})
SCHEMA_TYPES: Final = frozenset(
    {"string", "number", "integer", "boolean", "object", "array", "null"}
)

_sre: Any = importlib.import_module("re._parser")
_sre_constants: Any = importlib.import_module("re._constants")


class CheckDefinitionError(ValueError):
    """A test case's expectation that cannot be evaluated safely (answered as 422)."""


# -- regular expressions ----------------------------------------------------------


def _walk(items: Any, *, inside_repeat: bool) -> None:
    c = _sre_constants
    for op, arg in items:
        if op in (c.GROUPREF, c.GROUPREF_EXISTS):
            raise CheckDefinitionError("backreferences are not supported in patterns")
        if op in (c.ASSERT, c.ASSERT_NOT):
            raise CheckDefinitionError("lookahead and lookbehind are not supported in patterns; "
                                       "use a not_contains check instead")
        if op in (c.MAX_REPEAT, c.MIN_REPEAT, getattr(c, "POSSESSIVE_REPEAT", None)):
            _low, high, body = arg
            if inside_repeat and high > 1:
                raise CheckDefinitionError(
                    "nested quantifiers such as (a+)+ are not supported: they can take "
                    "exponential time")
            _walk(body, inside_repeat=inside_repeat or high > 1)
        elif op == c.BRANCH:
            if inside_repeat:
                raise CheckDefinitionError(
                    "alternation inside a repeated group such as (a|b)* is not supported: "
                    "use a character class like [ab]* instead")
            for branch in arg[1]:
                _walk(branch, inside_repeat=inside_repeat)
        elif op in (c.SUBPATTERN,):
            _walk(arg[-1], inside_repeat=inside_repeat)
        elif op == getattr(c, "ATOMIC_GROUP", None):
            _walk(arg, inside_repeat=inside_repeat)


def check_pattern(pattern: str) -> str:
    """A pattern that compiles and avoids the constructs behind catastrophic backtracking."""
    if len(pattern) > MAX_PATTERN_CHARS:
        raise CheckDefinitionError(f"patterns are limited to {MAX_PATTERN_CHARS} characters")
    try:
        re.compile(pattern)
        parsed = _sre.parse(pattern)
    except (re.error, RecursionError, OverflowError) as exc:
        raise CheckDefinitionError(f"not a valid regular expression: {exc}") from None
    _walk(parsed, inside_repeat=False)
    return pattern


_REGEX_CHILD: Final = r"""
import json, re, sys
jobs = json.load(sys.stdin)
out = [bool(re.search(p, s, re.IGNORECASE if i else 0)) for p, i, s in jobs]
json.dump(out, sys.stdout)
"""


async def regex_search(jobs: Sequence[tuple[str, bool, str]]) -> list[bool] | None:
    """``re.search`` for each (pattern, ignore_case, text) in a child process.

    ``None`` when the child does not finish within :data:`REGEX_SECONDS`
    (it is killed). Patterns were checked by :func:`check_pattern` already.
    """
    if not jobs:
        return []
    payload = json.dumps([[p, i, t[:MAX_REGEX_SUBJECT]] for p, i, t in jobs]).encode()
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-I", "-S", "-c", _REGEX_CHILD,
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.DEVNULL,
    )
    try:
        stdout, _ = await asyncio.wait_for(proc.communicate(payload), REGEX_SECONDS)
    except TimeoutError:
        proc.kill()
        await proc.wait()
        return None
    try:
        result = json.loads(stdout)
    except ValueError:
        return None
    return [bool(x) for x in result] if isinstance(result, list) else None


# -- JSON schema (subset) ----------------------------------------------------------


def check_schema(schema: Any, *, depth: int = 0) -> None:
    """Refuse schemas outside the supported subset, with the offending keyword."""
    if depth == 0 and len(json.dumps(schema)) > MAX_SCHEMA_BYTES:
        raise CheckDefinitionError(f"schemas are limited to {MAX_SCHEMA_BYTES} bytes")
    if depth > MAX_SCHEMA_DEPTH:
        raise CheckDefinitionError(f"schemas may nest at most {MAX_SCHEMA_DEPTH} levels")
    if not isinstance(schema, dict):
        raise CheckDefinitionError("a schema must be a JSON object")
    unknown = sorted(set(schema) - SCHEMA_KEYWORDS)
    if unknown:
        raise CheckDefinitionError(
            f"schema keyword {unknown[0]!r} is not supported; supported: "
            f"{', '.join(sorted(k for k in SCHEMA_KEYWORDS if not k.startswith('$')))}")
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not kinds or any(k not in SCHEMA_TYPES for k in kinds):
            raise CheckDefinitionError(f"unknown schema type {kind!r}")
    for key in ("properties",):
        if key in schema:
            if not isinstance(schema[key], dict):
                raise CheckDefinitionError("properties must be an object")
            for sub in schema[key].values():
                check_schema(sub, depth=depth + 1)
    for key in ("items",):
        if key in schema:
            check_schema(schema[key], depth=depth + 1)
    if isinstance(schema.get("additionalProperties"), dict):
        check_schema(schema["additionalProperties"], depth=depth + 1)
    elif "additionalProperties" in schema and not isinstance(schema["additionalProperties"], bool):
        raise CheckDefinitionError("additionalProperties must be a boolean or a schema")
    for key in ("anyOf", "allOf"):
        if key in schema:
            if not isinstance(schema[key], list) or not schema[key]:
                raise CheckDefinitionError(f"{key} must be a non-empty list of schemas")
            for sub in schema[key]:
                check_schema(sub, depth=depth + 1)
    if "required" in schema and not (
        isinstance(schema["required"], list) and all(isinstance(r, str) for r in schema["required"])
    ):
        raise CheckDefinitionError("required must be a list of property names")
    if "enum" in schema and not isinstance(schema["enum"], list):
        raise CheckDefinitionError("enum must be a list")
    for key in ("minLength", "maxLength", "minItems", "maxItems"):
        if key in schema and not (isinstance(schema[key], int) and schema[key] >= 0):
            raise CheckDefinitionError(f"{key} must be a non-negative integer")
    for key in ("minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum"):
        if key in schema and (isinstance(schema[key], bool)
                              or not isinstance(schema[key], int | float)):
            raise CheckDefinitionError(f"{key} must be a number")


def _type_ok(value: Any, kind: str) -> bool:
    match kind:
        case "string":
            return isinstance(value, str)
        case "integer":
            return (isinstance(value, int) and not isinstance(value, bool)) or (
                isinstance(value, float) and value.is_integer())
        case "number":
            return isinstance(value, int | float) and not isinstance(value, bool) and (
                not isinstance(value, float) or math.isfinite(value))
        case "boolean":
            return isinstance(value, bool)
        case "object":
            return isinstance(value, dict)
        case "array":
            return isinstance(value, list)
        case "null":
            return value is None
    return False


def _same(a: Any, b: Any) -> bool:
    """JSON equality (``1 == True`` is not equal in JSON)."""
    return json.dumps(a, sort_keys=True) == json.dumps(b, sort_keys=True)


def schema_errors(value: Any, schema: Mapping[str, Any], path: str = "$") -> list[str]:
    """Where ``value`` breaks ``schema`` (first few reasons, JSONPath-like locations)."""
    errors: list[str] = []
    kind = schema.get("type")
    if kind is not None:
        kinds = kind if isinstance(kind, list) else [kind]
        if not any(_type_ok(value, k) for k in kinds):
            return [f"{path}: expected {' or '.join(kinds)}, got {_json_type(value)}"]
    if "const" in schema and not _same(value, schema["const"]):
        errors.append(f"{path}: must equal {json.dumps(schema['const'])[:80]}")
    if "enum" in schema and not any(_same(value, item) for item in schema["enum"]):
        errors.append(f"{path}: must be one of {json.dumps(schema['enum'])[:120]}")
    if isinstance(value, str):
        if len(value) < schema.get("minLength", 0):
            errors.append(f"{path}: shorter than {schema['minLength']} characters")
        if "maxLength" in schema and len(value) > schema["maxLength"]:
            errors.append(f"{path}: longer than {schema['maxLength']} characters")
    if isinstance(value, int | float) and not isinstance(value, bool):
        if "minimum" in schema and value < schema["minimum"]:
            errors.append(f"{path}: less than {schema['minimum']}")
        if "maximum" in schema and value > schema["maximum"]:
            errors.append(f"{path}: greater than {schema['maximum']}")
        if "exclusiveMinimum" in schema and value <= schema["exclusiveMinimum"]:
            errors.append(f"{path}: not greater than {schema['exclusiveMinimum']}")
        if "exclusiveMaximum" in schema and value >= schema["exclusiveMaximum"]:
            errors.append(f"{path}: not less than {schema['exclusiveMaximum']}")
    if isinstance(value, dict):
        for name in schema.get("required", []):
            if name not in value:
                errors.append(f"{path}: missing required property {name!r}")
        properties = schema.get("properties", {})
        extra = schema.get("additionalProperties", True)
        for name, item in value.items():
            where = f"{path}.{name}"
            if name in properties:
                errors.extend(schema_errors(item, properties[name], where))
            elif extra is False:
                errors.append(f"{path}: unexpected property {name!r}")
            elif isinstance(extra, dict):
                errors.extend(schema_errors(item, extra, where))
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0):
            errors.append(f"{path}: fewer than {schema['minItems']} items")
        if "maxItems" in schema and len(value) > schema["maxItems"]:
            errors.append(f"{path}: more than {schema['maxItems']} items")
        if schema.get("uniqueItems") and len({json.dumps(v, sort_keys=True) for v in value}) \
                != len(value):
            errors.append(f"{path}: items are not unique")
        if isinstance(schema.get("items"), dict):
            for n, item in enumerate(value):
                errors.extend(schema_errors(item, schema["items"], f"{path}[{n}]"))
    for sub in schema.get("allOf", []):
        errors.extend(schema_errors(value, sub, path))
    if "anyOf" in schema and not any(not schema_errors(value, s, path) for s in schema["anyOf"]):
        errors.append(f"{path}: matches none of the anyOf schemas")
    return errors[:10]


def _json_type(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int | float):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


_FENCE: Final = re.compile(r"^```[a-zA-Z0-9_-]*[ \t]*\n(.*)\n```$", re.DOTALL)


def parse_json_output(text: str) -> tuple[Any, str | None]:
    """The JSON value of an output that is JSON (optionally one fenced block), or an error."""
    stripped = text.strip()
    fenced = _FENCE.match(stripped)
    if fenced:
        stripped = fenced.group(1).strip()
    try:
        return json.loads(stripped), None
    except ValueError as exc:
        return None, f"the output is not valid JSON: {exc}"


# -- judging an output --------------------------------------------------------------


@dataclass(frozen=True)
class CheckResult:
    kind: str
    passed: bool
    detail: str

    def as_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "passed": self.passed, "detail": self.detail}


def judge(expectation: Mapping[str, Any], output: str, regex_hit: bool | None) -> CheckResult:
    """One expectation against one output; ``regex_hit`` from :func:`regex_search`."""
    kind = str(expectation["kind"])
    if kind in ("contains", "not_contains"):
        needle = str(expectation["value"])
        case = bool(expectation.get("case_sensitive", False))
        found = (needle in output) if case else (needle.casefold() in output.casefold())
        passed = found if kind == "contains" else not found
        verb = "contains" if found else "does not contain"
        return CheckResult(kind, passed, f"the output {verb} {needle[:80]!r}")
    if kind == "max_length":
        limit = int(expectation["value"])
        return CheckResult(kind, len(output) <= limit,
                           f"the output has {len(output)} characters (limit {limit})")
    if kind == "min_length":
        limit = int(expectation["value"])
        return CheckResult(kind, len(output) >= limit,
                           f"the output has {len(output)} characters (minimum {limit})")
    if kind == "json":
        value, error = parse_json_output(output)
        if error is not None:
            return CheckResult(kind, False, error)
        schema = expectation.get("schema")
        if schema:
            problems = schema_errors(value, schema)
            if problems:
                return CheckResult(kind, False, "the JSON does not match the schema: "
                                   + "; ".join(problems))
            return CheckResult(kind, True, "valid JSON matching the schema")
        return CheckResult(kind, True, "valid JSON")
    if kind == "regex":
        pattern = str(expectation["pattern"])
        if regex_hit is None:
            return CheckResult(kind, False, f"evaluating /{pattern}/ took longer than "
                               f"{REGEX_SECONDS:g} s; simplify the pattern")
        return CheckResult(kind, regex_hit,
                           f"/{pattern}/ {'matches' if regex_hit else 'does not match'} the output")
    return CheckResult(kind, False, f"unknown check {kind!r}")


async def judge_all(
    cases: Sequence[tuple[Sequence[Mapping[str, Any]], str]],
) -> list[list[CheckResult]]:
    """Judge every (expectations, output) pair; all regexes share one child process."""
    jobs: list[tuple[str, bool, str]] = []
    for expectations, output in cases:
        for e in expectations:
            if e["kind"] == "regex":
                jobs.append((str(e["pattern"]), bool(e.get("ignore_case", False)), output))
    hits = await regex_search(jobs)
    position = 0
    results: list[list[CheckResult]] = []
    for expectations, output in cases:
        row = []
        for e in expectations:
            hit = None
            if e["kind"] == "regex":
                hit = hits[position] if hits is not None else None
                position += 1
            row.append(judge(e, output, hit))
        results.append(row)
    return results
