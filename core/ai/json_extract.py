"""Find the JSON a model meant to return, wherever it put it.

Models wrap JSON in Markdown fences, prepend "Sure! Here it is:", stop halfway
when they hit their token limit, or leave a trailing comma. This module turns
all of that into either the value or an :class:`AIOutputError` that says what
went wrong. It never evaluates anything: only :func:`json.loads` parses.

Two rules keep it from returning *part* of an answer, which would be worse
than failing:

* when a candidate starting at ``{``/``[`` runs to the end of the text as a
  valid JSON prefix, the output was truncated and we raise, instead of falling
  back to a smaller object nested inside it;
* when a candidate parses partway and then fails (or parses to the wrong
  type), the brackets inside the part that parsed belong to it and are not
  tried on their own.
"""

from __future__ import annotations

import json
import re
from typing import Any, Final

from core.ai.errors import AIOutputError

__all__ = ["extract_json"]

#: Output longer than this is refused instead of searched (bounds CPU per call).
DEFAULT_MAX_CHARS: Final = 2_000_000
#: At most this many ``{``/``[`` starting points are tried in prose.
MAX_CANDIDATES: Final = 64

_FENCE_RE: Final = re.compile(r"```[ \t]*([A-Za-z0-9_.+-]*)[^\n`]*\n?(.*?)```", re.DOTALL)
_OPEN_RE: Final = re.compile(r"[{\[]")
_STRUCT_RE: Final = re.compile(r'["{}\[\]]')
_IN_STRING_RE: Final = re.compile(r'["\\]')
_TRAILING_COMMA_RE: Final = re.compile(r'("(?:[^"\\]|\\.)*")|,(\s*[}\]])', re.DOTALL)
_PARTIAL_NUMBER_TAIL: Final = re.compile(r"-|\.|[eE][+-]?")
_LITERALS: Final = ("true", "false", "null")

_MISMATCH: Final = -1


class _NonStandardConstant(ValueError):
    """NaN/Infinity: Python accepts them, JSON (and the browser) does not."""


def _reject_constant(name: str) -> Any:
    raise _NonStandardConstant(f"non-standard JSON constant {name}")


def _loads(doc: str) -> Any:
    """Strict about values (no NaN), lenient about raw newlines inside strings."""
    return json.loads(doc, strict=False, parse_constant=_reject_constant)


def _strip_trailing_commas(doc: str) -> str:
    """Remove ``,`` before ``}``/``]`` outside strings: the commonest model slip."""
    return _TRAILING_COMMA_RE.sub(lambda m: m.group(1) or m.group(2), doc)


def _type_ok(value: Any, expect: type[dict[Any, Any]] | type[list[Any]] | None) -> bool:
    return expect is None or isinstance(value, expect)


def _type_name(expect: type[Any]) -> str:
    return "a JSON object" if expect is dict else "a JSON array"


def _scan_to_close(text: str, start: int, known: dict[int, int | None]) -> int | None:
    """Index just past the bracket matching ``text[start]``.

    ``None`` if the text ends first, ``_MISMATCH`` if a closing bracket of the
    wrong kind appears. Strings (with escapes) are skipped, so ``"}"`` inside a
    value does not count. Every bracket this scan sees open and close (or stay
    open to the end) is recorded in ``known``: string state agrees from any
    bracket outside a string, so later candidates reuse the answer and the
    whole search stays linear even on ``{{{{...``.
    """
    if start in known:
        return known[start]
    stack = [(text[start], start)]
    pos = start + 1
    while True:
        m = _STRUCT_RE.search(text, pos)
        if m is None:
            for _, opened in stack:
                known[opened] = None
            return None
        ch = m.group()
        pos = m.end()
        if ch == '"':
            while True:
                s = _IN_STRING_RE.search(text, pos)
                if s is None:
                    for _, opened in stack:
                        known[opened] = None
                    return None
                if s.group() == "\\":
                    pos = s.end() + 1
                    continue
                pos = s.end()
                break
        elif ch in "{[":
            stack.append((ch, m.start()))
        else:
            top, opened = stack[-1]
            if top != ("{" if ch == "}" else "["):
                return _MISMATCH
            stack.pop()
            known[opened] = pos
            if not stack:
                return pos


def _ran_out(doc: str, err: json.JSONDecodeError) -> bool:
    """Did decoding fail only because ``doc`` stopped (a valid JSON prefix)?"""
    if err.msg.startswith("Unterminated string"):
        return True
    tail = doc[err.pos :]
    if err.msg.startswith("Invalid \\uXXXX escape"):
        return len(tail) < 6
    if not tail.strip():
        return True
    if any(lit.startswith(tail) for lit in _LITERALS):
        return True
    return _PARTIAL_NUMBER_TAIL.fullmatch(tail) is not None


class _Found(Exception):
    """Carries a found value out of the nested search (keeps the loop flat)."""

    def __init__(self, value: Any) -> None:
        super().__init__()
        self.value = value


def _try_whole(doc: str) -> tuple[bool, Any]:
    try:
        return True, _loads(doc)
    except ValueError:
        pass
    try:
        return True, _loads(_strip_trailing_commas(doc))
    except ValueError:
        return False, None


def _search(
    text: str,
    expect: type[dict[Any, Any]] | type[list[Any]] | None,
    *,
    report_truncation: bool,
) -> tuple[bool, Any, str | None]:
    """Try each ``{``/``[`` in order; return (found, value, first problem)."""
    problem: str | None = None
    skip_until = 0
    tried = 0
    known: dict[int, int | None] = {}
    for m in _OPEN_RE.finditer(text):
        start = m.start()
        if start < skip_until:
            continue
        tried += 1
        if tried > MAX_CANDIDATES:
            problem = problem or "too many bracket characters before any valid JSON"
            break
        end = _scan_to_close(text, start, known)
        if end is not None and end != _MISMATCH:
            candidate = text[start:end]
            ok, value = _try_whole(candidate)
            if ok:
                if _type_ok(value, expect):
                    return True, value, None
                assert expect is not None
                problem = problem or (
                    f"expected {_type_name(expect)}, the model returned {_describe(value)}"
                )
                skip_until = end
                continue
            try:
                _loads(candidate)
            except json.JSONDecodeError as err:
                problem = problem or _describe_error(err)
                skip_until = start + max(err.pos, 1)
            except ValueError as err:  # NaN and friends: the whole span is bad
                problem = problem or str(err)
                skip_until = end
            continue
        rest = text[start:].rstrip()
        try:
            _loads(rest)
        except json.JSONDecodeError as err:
            if end is None and _ran_out(rest, err):
                if report_truncation:
                    raise AIOutputError(
                        "model output ended before the JSON closed "
                        "(it was probably cut off at the token limit)",
                        truncated=True,
                    ) from None
                return False, None, "a fenced block ended before its JSON closed"
            problem = problem or _describe_error(err)
            skip_until = start + max(err.pos, 1)
        except ValueError as err:
            problem = problem or str(err)
            skip_until = start + 1
    return False, None, problem


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list):
        return "an array"
    return f"a {type(value).__name__} value"


def _describe_error(err: json.JSONDecodeError) -> str:
    """Position and reason only: the text itself may hold user data."""
    return f"JSON-like text is not valid JSON: {err.msg} (line {err.lineno} column {err.colno})"


def _fenced_bodies(text: str) -> list[str]:
    """Bodies of closed ``` fences labelled json (or unlabelled), in order."""
    bodies: list[str] = []
    for m in _FENCE_RE.finditer(text):
        label = m.group(1).lower()
        if label == "" or "json" in label:
            bodies.append(m.group(2))
    return bodies


def extract_json(
    text: str,
    *,
    expect: type[dict[Any, Any]] | type[list[Any]] | None = None,
    max_chars: int = DEFAULT_MAX_CHARS,
) -> Any:
    """Return the first JSON value in ``text`` (see module docstring for the rules).

    Order: the whole text; then closed fences labelled ``json`` or unlabelled;
    then the first balanced ``{...}``/``[...]`` in the prose. ``expect=dict``
    (or ``list``) refuses other shapes: use it when you asked for an object,
    so a citation like ``[1]`` in the preamble cannot be taken for the answer.

    Raises :class:`AIOutputError` (``truncated=True`` when the output stopped
    before the JSON closed).
    """
    if not isinstance(text, str):
        raise TypeError(f"extract_json() needs str, got {type(text).__name__}")
    if len(text) > max_chars:
        raise AIOutputError(
            f"model output is too long to search for JSON ({len(text)} characters, "
            f"limit {max_chars})"
        )
    stripped = text.strip()
    if not stripped:
        raise AIOutputError("model output was empty; expected JSON")
    try:
        return _extract(stripped, expect)
    except RecursionError:
        raise AIOutputError("model output JSON is nested too deeply to parse") from None


def _extract(text: str, expect: type[dict[Any, Any]] | type[list[Any]] | None) -> Any:
    ok, value = _try_whole(text)
    if ok:
        if _type_ok(value, expect):
            return value
        assert expect is not None
        raise AIOutputError(f"expected {_type_name(expect)}, the model returned {_describe(value)}")
    first_problem: str | None = None
    for body in _fenced_bodies(text):
        body = body.strip()
        ok, value = _try_whole(body)
        if ok and _type_ok(value, expect):
            return value
        found, value, problem = _search(body, expect, report_truncation=False)
        if found:
            return value
        first_problem = first_problem or problem
    found, value, problem = _search(text, expect, report_truncation=True)
    if found:
        return value
    problem = problem or first_problem
    if problem is None:
        what = _type_name(expect) if expect is not None else "a JSON object or array"
        raise AIOutputError(f"model output contains no JSON: expected {what}")
    raise AIOutputError(f"model output has no usable JSON: {problem}")
