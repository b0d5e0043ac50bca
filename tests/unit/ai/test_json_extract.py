"""extract_json: many shapes of model output, plus property-based round trips."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.ai.errors import AIOutputError
from core.ai.json_extract import extract_json

OBJ = {"name": "Northside", "scores": [1, 2.5, -3], "ok": True, "none": None}
OBJ_TEXT = json.dumps(OBJ)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (OBJ_TEXT, OBJ),
        (f"  \n{OBJ_TEXT}\n\n", OBJ),
        ("[1, 2, 3]", [1, 2, 3]),
        ("42", 42),
        ('"just a string"', "just a string"),
        ("null", None),
        (f"```json\n{OBJ_TEXT}\n```", OBJ),
        (f"```JSON\n{OBJ_TEXT}\n```", OBJ),
        (f"```\n{OBJ_TEXT}\n```", OBJ),
        (f"```json {OBJ_TEXT}```", OBJ),
        (f"Sure! Here you go:\n\n```json\n{OBJ_TEXT}\n```\n\nLet me know.", OBJ),
        (f"Here is the result: {OBJ_TEXT}. Hope that helps!", OBJ),
        (f"Result:\n{OBJ_TEXT}", OBJ),
        ('Answer: [{"a": 1}, {"b": 2}] done', [{"a": 1}, {"b": 2}]),
        ('{"text": "braces } and ] inside"}', {"text": "braces } and ] inside"}),
        ('prose {"q": "say \\"hi\\" {now}"} prose', {"q": 'say "hi" {now}'}),
        ('{"path": "C:\\\\dir\\\\"}', {"path": "C:\\dir\\"}),
        ('{"a": 1,}', {"a": 1}),
        ('{"a": [1, 2, ], "b": {"c": 3,},}', {"a": [1, 2], "b": {"c": 3}}),
        ('{"s": "a, }"}', {"s": "a, }"}),
        ('{"multi": "line\nbreak"}', {"multi": "line\nbreak"}),
        ('Use {name} as a placeholder. JSON: {"ok": true}', {"ok": True}),
        ('{"unicode": "caf\\u00e9 ✓"}', {"unicode": "café ✓"}),
        ('```python\nx = {"no": 1}\n```\n```json\n{"yes": 2}\n```', {"yes": 2}),
        ('```json\n{"a": "```", "b": [1]}\n```', {"a": "```", "b": [1]}),
        ('First {"a": 1} then {"b": 2}', {"a": 1}),
        ('{"deep": {"er": {"est": [[[]]]}}}', {"deep": {"er": {"est": [[[]]]}}}),
    ],
)
def test_extracts(text: str, expected: Any) -> None:
    assert extract_json(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        '{"items": [{"id": 1}, {"id": 2',
        '{"a": "unterminated',
        '{"a": tr',
        '{"a": 12.',
        '{"a": -',
        '{"a": 1e',
        '{"a": "x\\u00',
        '{"a": "x\\',
        "[1, 2,",
        "{",
        'Here you go:\n```json\n{"a": [1, 2',
        'Sure: {"outer": {"inner": {"done": true}}, "more": [',
        'Format {like this}: {"a": {"b": 1}, "c": ',
    ],
)
def test_truncated_json_raises_with_a_clear_message(text: str) -> None:
    with pytest.raises(AIOutputError) as info:
        extract_json(text)
    assert info.value.truncated
    assert "ended before the JSON closed" in str(info.value)


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("", "empty"),
        ("   \n ", "empty"),
        ("I cannot do that.", "no JSON"),
        ("{not json at all}", "not valid JSON"),
        ("{'single': 'quotes'}", "not valid JSON"),
        ('{"a": NaN}', "NaN"),
        ("NaN", "no JSON"),
        ('{"a": 1} }', None),
    ],
)
def test_invalid_output(text: str, fragment: str | None) -> None:
    if fragment is None:  # trailing junk after a valid object is prose: still extracted
        assert extract_json(text) == {"a": 1}
        return
    with pytest.raises(AIOutputError) as info:
        extract_json(text)
    assert fragment in str(info.value)
    assert not info.value.truncated


def test_never_returns_a_fragment_of_a_broken_object() -> None:
    # The inner [1, 2] parses, but it belongs to the broken outer object.
    with pytest.raises(AIOutputError):
        extract_json('{"a": [1, 2], "b": \'x\'}')


def test_error_messages_do_not_repeat_the_output() -> None:
    secret_ish = "patient Jane Doe, DOB 1970-01-01"
    with pytest.raises(AIOutputError) as info:
        extract_json('{"note": "' + secret_ish + '", oops}')
    assert secret_ish not in str(info.value)


def test_expect_filters_shapes() -> None:
    text = 'As shown in [1], the answer is {"x": 2}'
    assert extract_json(text) == [1]  # first balanced value wins without expect
    assert extract_json(text, expect=dict) == {"x": 2}
    assert extract_json("[1] and [2]", expect=list) == [1]
    with pytest.raises(AIOutputError, match="expected a JSON object"):
        extract_json('[{"a": 1}]', expect=dict)
    with pytest.raises(AIOutputError, match="expected a JSON object"):
        extract_json('list: [{"a": 1}] end', expect=dict)
    with pytest.raises(AIOutputError, match="expected a JSON array"):
        extract_json('{"a": [1]}', expect=list)


def test_limits() -> None:
    with pytest.raises(AIOutputError, match="too long"):
        extract_json("x" * 11, max_chars=10)
    with pytest.raises(AIOutputError, match="nested too deeply"):
        extract_json("[" * 50_000 + "]" * 50_000)
    with pytest.raises(TypeError):
        extract_json(b"{}")  # type: ignore[arg-type]


def test_pathological_input_stays_fast() -> None:
    import time

    # Linear: ~0.4 s per megabyte here. A quadratic search would take minutes
    # (and the 64-candidate cap alone still ~12 s), so 6 s survives a busy CI box.
    for text in ("{" * 1_000_000, "x{" * 500_000, '"{' * 500_000, "[1 " * 330_000):
        started = time.perf_counter()
        with pytest.raises(AIOutputError):
            extract_json(text)
        assert time.perf_counter() - started < 6.0


# -- property-based -----------------------------------------------------------

scalars = (
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**53), max_value=2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(max_size=20)
)
json_values = st.recursive(
    scalars,
    lambda children: (
        st.lists(children, max_size=5) | st.dictionaries(st.text(max_size=8), children, max_size=5)
    ),
    max_leaves=25,
)
containers = st.one_of(
    st.lists(json_values, max_size=5), st.dictionaries(st.text(max_size=8), json_values, max_size=5)
)
# Prose without brackets, quotes or backticks, so it cannot itself look like JSON.
prose = st.text(
    alphabet=st.characters(
        codec="utf-8",
        exclude_characters='{}[]"`\\',
        exclude_categories=["Cs"],
    ),
    max_size=60,
)


def _wrap(body: str, style: int, before: str, after: str) -> str:
    if style == 0:
        return body
    if style == 1:
        return f"```json\n{body}\n```"
    if style == 2:
        return f"{before}\n```\n{body}\n```\n{after}"
    if style == 3:
        return f"{before} {body} {after}"
    return f"{before}\n```json\n{body}\n```{after}"


@settings(max_examples=200, deadline=None, database=None)
@given(
    value=containers,
    style=st.integers(0, 4),
    before=prose,
    after=prose,
    indent=st.sampled_from([None, 2]),
)
def test_round_trip_containers(
    value: Any, style: int, before: str, after: str, indent: int | None
) -> None:
    text = _wrap(json.dumps(value, indent=indent, ensure_ascii=False), style, before, after)
    assert extract_json(text) == value


@settings(max_examples=200, deadline=None, database=None)
@given(value=json_values)
def test_round_trip_any_value_alone(value: Any) -> None:
    assert extract_json(json.dumps(value)) == value


@settings(max_examples=200, deadline=None, database=None)
@given(value=containers, data=st.data())
def test_every_strict_prefix_is_refused(value: Any, data: st.DataObject) -> None:
    text = json.dumps(value)
    cut = data.draw(st.integers(min_value=1, max_value=len(text) - 1))
    with pytest.raises(AIOutputError) as info:
        extract_json(text[:cut])
    assert info.value.truncated, text[:cut]
