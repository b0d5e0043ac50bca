"""WCAG 2.x colour contrast for theme and brand colours.

Accepted colour syntax (``parse_css_color``), case-insensitive, surrounding
whitespace ignored:

* ``#rgb`` and ``#rrggbb``;
* ``#rgba`` and ``#rrggbbaa`` **only when fully opaque** (alpha ``f``/``ff``);
* ``rgb(r, g, b)`` / ``rgba(r, g, b, a)`` with comma or space syntax
  (``rgb(r g b / a)``), channels as integers 0-255 or percentages, alpha as a
  number 0-1 or a percentage, again **only when fully opaque**;
* the named colours in ``NAMED_COLORS`` (a small, common subset of CSS).

Translucent colours are refused on purpose: their contrast depends on whatever
is painted underneath, so a checker cannot vouch for them. ``transparent``,
``currentColor``, ``hsl()``, ``var()`` and every other CSS form are refused with
a ``ValueError`` that says what is accepted.

Maths: WCAG 2.x relative luminance (sRGB linearisation with the 0.04045
threshold; for 8-bit channels it gives the same values as the 0.03928 of older
WCAG texts) and contrast ratio ``(L1 + 0.05) / (L2 + 0.05)``. Ratios are
compared against thresholds unrounded, as WCAG requires.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

__all__ = [
    "AA_LARGE_TEXT",
    "AA_NORMAL_TEXT",
    "NAMED_COLORS",
    "RGB",
    "TEXT_PAIRS",
    "ContrastFailure",
    "check_theme_contrast",
    "contrast_ratio",
    "parse_css_color",
    "relative_luminance",
]

AA_NORMAL_TEXT = 4.5
AA_LARGE_TEXT = 3.0


class RGB(NamedTuple):
    """An opaque sRGB colour with 8-bit channels."""

    r: int
    g: int
    b: int

    def to_hex(self) -> str:
        return f"#{self.r:02x}{self.g:02x}{self.b:02x}"


NAMED_COLORS: dict[str, RGB] = {
    "black": RGB(0, 0, 0),
    "white": RGB(255, 255, 255),
    "gray": RGB(128, 128, 128),
    "grey": RGB(128, 128, 128),
    "silver": RGB(192, 192, 192),
    "red": RGB(255, 0, 0),
    "maroon": RGB(128, 0, 0),
    "orange": RGB(255, 165, 0),
    "yellow": RGB(255, 255, 0),
    "olive": RGB(128, 128, 0),
    "lime": RGB(0, 255, 0),
    "green": RGB(0, 128, 0),
    "aqua": RGB(0, 255, 255),
    "cyan": RGB(0, 255, 255),
    "teal": RGB(0, 128, 128),
    "blue": RGB(0, 0, 255),
    "navy": RGB(0, 0, 128),
    "fuchsia": RGB(255, 0, 255),
    "magenta": RGB(255, 0, 255),
    "purple": RGB(128, 0, 128),
    "darkslategray": RGB(47, 79, 79),
    "darkslategrey": RGB(47, 79, 79),
    "rebeccapurple": RGB(102, 51, 153),
}

_ACCEPTED = (
    "use #rgb, #rrggbb, an opaque #rgba/#rrggbbaa, rgb()/rgba() with opaque alpha, "
    "or a named colour (" + ", ".join(sorted(NAMED_COLORS)) + ")"
)
_HEX_RE = re.compile(r"#([0-9a-f]{3,4}|[0-9a-f]{6}|[0-9a-f]{8})")
_FUNC_RE = re.compile(r"(rgba?)\((.*)\)", re.DOTALL)
_NUMBER_RE = re.compile(r"[+-]?(?:\d+\.?\d*|\.\d+)(?:e[+-]?\d+)?%?")
_MAX_COLOR_LEN = 64


def _bad(value: str, reason: str) -> ValueError:
    shown = value if len(value) <= _MAX_COLOR_LEN else value[:_MAX_COLOR_LEN] + "..."
    return ValueError(f"invalid CSS colour {shown!r}: {reason}; {_ACCEPTED}")


def _channel(token: str, value: str) -> int:
    if not _NUMBER_RE.fullmatch(token):
        raise _bad(value, f"{token!r} is not a number or percentage")
    if token.endswith("%"):
        number = float(token[:-1]) * 255 / 100
    else:
        number = float(token)
    if not math.isfinite(number) or number < 0 or number > 255:
        raise _bad(value, f"channel {token!r} is out of range 0-255 / 0%-100%")
    return round(number)


def _alpha(token: str, value: str) -> float:
    if not _NUMBER_RE.fullmatch(token):
        raise _bad(value, f"alpha {token!r} is not a number or percentage")
    alpha = float(token[:-1]) / 100 if token.endswith("%") else float(token)
    if not math.isfinite(alpha) or alpha < 0 or alpha > 1:
        raise _bad(value, f"alpha {token!r} is out of range 0-1")
    return alpha


def _translucent(value: str) -> ValueError:
    return _bad(value, "translucent colours cannot be checked for contrast")


def parse_css_color(value: str) -> RGB:
    """Parse a CSS colour (see the module docstring for the accepted forms)."""
    if not isinstance(value, str):
        raise TypeError(f"a CSS colour must be a str, not {type(value).__name__}")
    text = value.strip().lower()
    if not text or len(text) > _MAX_COLOR_LEN:
        raise _bad(value, "empty or too long")
    if text.startswith("#"):
        match = _HEX_RE.fullmatch(text)
        if not match:
            raise _bad(value, "a hex colour needs 3, 4, 6 or 8 hex digits")
        digits = match.group(1)
        if len(digits) in (3, 4):
            digits = "".join(c * 2 for c in digits)
        if len(digits) == 8:
            if digits[6:] != "ff":
                raise _translucent(value)
            digits = digits[:6]
        return RGB(int(digits[0:2], 16), int(digits[2:4], 16), int(digits[4:6], 16))
    func = _FUNC_RE.fullmatch(text)
    if func:
        return _parse_rgb_function(func.group(2), value)
    if text in NAMED_COLORS:
        return NAMED_COLORS[text]
    raise _bad(value, "unsupported colour syntax")


def _parse_rgb_function(args: str, value: str) -> RGB:
    args = args.strip()
    alpha_token: str | None = None
    if "," in args:
        parts = [p.strip() for p in args.split(",")]
        if len(parts) == 4:
            alpha_token = parts.pop()
    else:
        if "/" in args:
            channels, _, alpha_part = args.partition("/")
            alpha_token = alpha_part.strip()
            args = channels
        parts = args.split()
    if len(parts) != 3:
        raise _bad(value, "rgb() needs exactly three channels")
    if len({p.endswith("%") for p in parts}) != 1:
        raise _bad(value, "rgb() channels must be all numbers or all percentages")
    rgb = RGB(*(_channel(p, value) for p in parts))
    if alpha_token is not None and _alpha(alpha_token, value) < 1:
        raise _translucent(value)
    return rgb


def _linear(channel: int) -> float:
    c = channel / 255
    return c / 12.92 if c <= 0.04045 else ((c + 0.055) / 1.055) ** 2.4


def _as_rgb(color: RGB | str) -> RGB:
    return color if isinstance(color, RGB) else parse_css_color(color)


def relative_luminance(color: RGB | str) -> float:
    """WCAG 2.x relative luminance, 0.0 (black) to 1.0 (white)."""
    r, g, b = _as_rgb(color)
    return 0.2126 * _linear(r) + 0.7152 * _linear(g) + 0.0722 * _linear(b)


def contrast_ratio(foreground: RGB | str, background: RGB | str) -> float:
    """WCAG 2.x contrast ratio, 1.0 to 21.0 (symmetric; unrounded)."""
    la = relative_luminance(foreground)
    lb = relative_luminance(background)
    lighter, darker = max(la, lb), min(la, lb)
    return (lighter + 0.05) / (darker + 0.05)


#: The (text, background) token pairs the bundled themes use for text, and
#: where. Every theme must meet AA (4.5:1) for all of them.
TEXT_PAIRS: tuple[tuple[str, str], ...] = (
    ("text", "background"),  # body copy, headings
    ("text", "surface"),  # header, cards, FAQ answers
    ("muted_text", "background"),  # subtitles, captions
    ("muted_text", "surface"),  # card descriptions, footer
    ("link", "background"),  # links in rich text
    ("link", "surface"),  # links in the footer and cards
    ("on_primary", "primary"),  # hero band and primary buttons (also inverted)
    ("on_accent", "accent"),  # call-to-action band and its button (also inverted)
)


@dataclass(frozen=True)
class ContrastFailure:
    """A text/background token pair below the required contrast."""

    foreground: str
    background: str
    ratio: float  # rounded to 2 decimals, never up to the threshold
    required: float = AA_NORMAL_TEXT

    @property
    def pair(self) -> str:
        return f"{self.foreground} on {self.background}"

    @property
    def message(self) -> str:
        return (
            f"{self.pair}: contrast {self.ratio:.2f}:1 is below the required "
            f"{self.required:g}:1 (WCAG AA)"
        )

    def __str__(self) -> str:
        return self.message


def _shown_ratio(ratio: float, threshold: float) -> float:
    shown = round(ratio, 2)
    if shown >= threshold:  # e.g. 4.497 must not be reported as a failing "4.5"
        shown = math.floor(ratio * 100) / 100
    return shown


def _colors_of(tokens: Any) -> Mapping[str, Any]:
    colors = getattr(tokens, "colors", tokens)
    if isinstance(colors, Mapping):
        return colors
    dump = getattr(colors, "model_dump", None)
    if callable(dump):
        result = dump()
        if isinstance(result, Mapping):
            return result
    raise TypeError("tokens must be DesignTokens, ColorTokens or a mapping of colour tokens")


def check_theme_contrast(
    tokens: Any,
    *,
    threshold: float = AA_NORMAL_TEXT,
    pairs: Iterable[tuple[str, str]] = TEXT_PAIRS,
) -> list[ContrastFailure]:
    """Return every pair in ``pairs`` whose contrast is below ``threshold``.

    ``tokens`` is a ``DesignTokens``, its ``colors``, or a plain mapping of
    token name to CSS colour (a mapping may also have a ``"colors"`` key).
    A token named by a pair but missing from ``tokens`` is a ``ValueError``
    (never silently skipped), as is an unparsable colour.
    """
    colors = _colors_of(tokens)
    if "colors" in colors and isinstance(colors["colors"], Mapping):
        colors = colors["colors"]
    failures: list[ContrastFailure] = []
    for fg_name, bg_name in pairs:
        missing = [n for n in (fg_name, bg_name) if colors.get(n) is None]
        if missing:
            raise ValueError(f"colour token(s) {', '.join(missing)} missing for contrast check")
        ratio = contrast_ratio(
            _as_color(colors[fg_name], fg_name), _as_color(colors[bg_name], bg_name)
        )
        if ratio < threshold:
            failures.append(
                ContrastFailure(fg_name, bg_name, _shown_ratio(ratio, threshold), threshold)
            )
    return failures


def _as_color(value: Any, name: str) -> RGB:
    if isinstance(value, RGB):
        return value
    if not isinstance(value, str):
        raise ValueError(f"colour token {name!r} must be a CSS colour string")
    try:
        return parse_css_color(value)
    except ValueError as exc:
        raise ValueError(f"colour token {name!r}: {exc}") from None
