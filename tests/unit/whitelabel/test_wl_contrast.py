"""WCAG contrast maths, colour parsing and named failures."""

from __future__ import annotations

import pytest

from core.whitelabel.contrast import (
    RGB,
    TEXT_PAIRS,
    ContrastFailure,
    check_theme_contrast,
    contrast_ratio,
    parse_css_color,
    relative_luminance,
)

PASSING = {
    "primary": "#0b5d7a", "on_primary": "#ffffff", "accent": "#0f766e", "on_accent": "#ffffff",
    "background": "#ffffff", "surface": "#f1f6f9", "text": "#16262e", "muted_text": "#4a5d66",
    "link": "#0a5673", "border": "#c5d3da",
}  # fmt: skip


def test_black_on_white_is_21() -> None:
    assert contrast_ratio("#000", "#fff") == pytest.approx(21.0)
    assert round(contrast_ratio(RGB(0, 0, 0), RGB(255, 255, 255)), 2) == 21.0


def test_same_colour_is_1_and_order_does_not_matter() -> None:
    assert contrast_ratio("#123456", "#123456") == pytest.approx(1.0)
    assert contrast_ratio("#777", "#fff") == contrast_ratio("#fff", "#777")


@pytest.mark.parametrize(
    ("fg", "bg", "expected"),
    [
        ("#777777", "#ffffff", 4.48),  # the classic "just fails AA" grey
        ("#767676", "#ffffff", 4.54),  # the lightest grey that passes on white
        ("#595959", "#ffffff", 7.0),
        ("#ff0000", "#ffffff", 4.0),
        ("#0000ff", "#ffffff", 8.59),
        ("#008000", "#ffffff", 5.14),
        ("#ffff00", "#000000", 19.56),
    ],
)
def test_known_ratios(fg: str, bg: str, expected: float) -> None:
    assert round(contrast_ratio(fg, bg), 2) == expected


def test_relative_luminance_endpoints_and_midgrey() -> None:
    assert relative_luminance("#000000") == 0.0
    assert relative_luminance("#ffffff") == pytest.approx(1.0)
    assert relative_luminance("#808080") == pytest.approx(0.2158605, abs=1e-6)


@pytest.mark.parametrize(
    ("value", "rgb"),
    [
        ("#fff", RGB(255, 255, 255)),
        ("#FFFFFF", RGB(255, 255, 255)),
        ("  #0b5d7a  ", RGB(11, 93, 122)),
        ("#abcf", RGB(0xAA, 0xBB, 0xCC)),
        ("#0b5d7aff", RGB(11, 93, 122)),
        ("rgb(11, 93, 122)", RGB(11, 93, 122)),
        ("RGB(11,93,122)", RGB(11, 93, 122)),
        ("rgb(11 93 122)", RGB(11, 93, 122)),
        ("rgb(11 93 122 / 1)", RGB(11, 93, 122)),
        ("rgb(11 93 122 / 100%)", RGB(11, 93, 122)),
        ("rgba(11, 93, 122, 1)", RGB(11, 93, 122)),
        ("rgba(11, 93, 122, 1.0)", RGB(11, 93, 122)),
        ("rgb(100%, 0%, 50%)", RGB(255, 0, 128)),
        ("rgb(10.4, 20.6, 30)", RGB(10, 21, 30)),
        ("White", RGB(255, 255, 255)),
        ("navy", RGB(0, 0, 128)),
        ("grey", RGB(128, 128, 128)),
    ],
)
def test_parse_accepted_forms(value: str, rgb: RGB) -> None:
    assert parse_css_color(value) == rgb


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        ("", "empty"),
        ("#ggg", "hex digits"),
        ("#12345", "hex digits"),
        ("#1234567", "hex digits"),
        ("#ffffff80", "translucent"),
        ("#fff8", "translucent"),
        ("rgba(0, 0, 0, 0.5)", "translucent"),
        ("rgb(0 0 0 / 50%)", "translucent"),
        ("rgb(256, 0, 0)", "out of range"),
        ("rgb(-1, 0, 0)", "out of range"),
        ("rgb(0, 0)", "three channels"),
        ("rgb(0, 0, 0, 1, 1)", "three channels"),
        ("rgb(100%, 0, 0)", "all numbers or all percentages"),
        ("rgb(a, b, c)", "not a number"),
        ("rgba(0,0,0,2)", "out of range"),
        ("transparent", "unsupported"),
        ("currentColor", "unsupported"),
        ("hsl(0, 0%, 0%)", "unsupported"),
        ("var(--x)", "unsupported"),
        ("red; background: url(x)", "unsupported"),
        ("#fff;}", "hex digits"),
        ("x" * 100, "too long"),
    ],
)
def test_parse_rejects_with_clear_message(value: str, reason: str) -> None:
    with pytest.raises(ValueError) as info:
        parse_css_color(value)
    message = str(info.value)
    assert reason in message
    assert "#rrggbb" in message  # says what is accepted


def test_parse_rejects_non_strings() -> None:
    with pytest.raises(TypeError):
        parse_css_color(0xFFFFFF)  # type: ignore[arg-type]


def test_rgb_to_hex() -> None:
    assert RGB(11, 93, 122).to_hex() == "#0b5d7a"


def test_passing_palette_has_no_failures() -> None:
    assert check_theme_contrast(PASSING) == []
    assert check_theme_contrast({"colors": PASSING}) == []


def test_failures_name_the_pair_and_round_the_ratio() -> None:
    failures = check_theme_contrast({**PASSING, "text": "#777777", "on_accent": "#7fbfbf"})
    by_pair = {f.pair: f for f in failures}
    assert set(by_pair) == {"text on background", "text on surface", "on_accent on accent"}
    text = by_pair["text on background"]
    assert text == ContrastFailure("text", "background", 4.48, 4.5)
    assert "text on background" in text.message and "4.48" in text.message and "4.5" in text.message
    assert str(text) == text.message
    assert all(f.ratio == round(f.ratio, 2) for f in failures)


def test_failure_ratio_is_never_shown_as_the_threshold() -> None:
    # #3f8181 on white is 4.4983: rounding would print a failing "4.5".
    assert 4.495 <= contrast_ratio("#3f8181", "#ffffff") < 4.5
    [failure] = check_theme_contrast(
        {"text": "#3f8181", "background": "#ffffff"}, pairs=[("text", "background")]
    )
    assert failure.ratio == 4.49


def test_threshold_and_pairs_are_configurable() -> None:
    tokens = {**PASSING, "text": "#777777"}
    assert check_theme_contrast(tokens, threshold=3.0) == []
    assert check_theme_contrast(tokens, pairs=[("link", "background")]) == []
    [f] = check_theme_contrast(tokens, threshold=7.0, pairs=[("text", "background")])
    assert f.required == 7.0


def test_missing_or_bad_tokens_are_errors_not_skips() -> None:
    partial = {k: v for k, v in PASSING.items() if k != "muted_text"}
    with pytest.raises(ValueError, match="muted_text"):
        check_theme_contrast(partial)
    with pytest.raises(ValueError, match="'text'"):
        check_theme_contrast({**PASSING, "text": "rgba(0,0,0,.5)"})
    with pytest.raises(TypeError):
        check_theme_contrast(42)


def test_text_pairs_cover_every_text_role() -> None:
    roles = {name for pair in TEXT_PAIRS for name in pair}
    assert roles == set(PASSING) - {"border"}
