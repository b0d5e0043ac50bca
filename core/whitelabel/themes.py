"""Theme packs: design tokens, templates and static assets, loaded from disk.

A theme pack is a directory::

    themes/<name>/
        theme.json                      # ThemeManifest: name, title, tokens
        templates/page.html.j2          # the landing page document
        templates/sections/<type>.html.j2   # one per built-in section type
        static/theme.css                # reads tokens only as var(--...)

Design tokens are validated and normalised here, so that every value that ends
up in a page's ``<style>`` block comes from a closed vocabulary: colours become
``#rrggbb``, fonts are keys of ``FONT_ALLOW_LIST`` (system fonts only, nothing
fetched from another origin), sizes are bounded numbers. A tenant's brand
colours go through the same model (``DesignTokens.with_color_overrides``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from core.whitelabel.contrast import check_theme_contrast, parse_css_color

__all__ = [
    "BUILTIN_SECTION_TEMPLATES",
    "DEFAULT_THEMES_ROOT",
    "FONT_ALLOW_LIST",
    "ColorTokens",
    "DesignTokens",
    "RadiusTokens",
    "SpacingTokens",
    "ThemeError",
    "ThemeManifest",
    "ThemePack",
    "TypographyTokens",
    "load_theme_pack",
    "load_theme_packs",
]

#: The repository's bundled theme packs.
DEFAULT_THEMES_ROOT = Path(__file__).resolve().parents[2] / "themes"

#: Font choices: key -> CSS font stack of locally installed fonts only. Names
#: are written unquoted (valid CSS identifiers), so the stacks contain nothing
#: that HTML escaping would alter inside a <style> block.
FONT_ALLOW_LIST: dict[str, str] = {
    "system-ui": (
        "system-ui, -apple-system, Segoe UI, Roboto, Helvetica Neue, Noto Sans, "
        "Liberation Sans, Arial, sans-serif"
    ),
    "humanist": (
        "Seravek, Gill Sans Nova, Ubuntu, Calibri, DejaVu Sans, source-sans-pro, sans-serif"
    ),
    "geometric": "Avenir, Montserrat, Corbel, URW Gothic, source-sans-pro, sans-serif",
    "neo-grotesque": ("Inter, Roboto, Helvetica Neue, Arial Nova, Nimbus Sans, Arial, sans-serif"),
    "transitional-serif": "Charter, Bitstream Charter, Sitka Text, Cambria, serif",
    "old-style-serif": "Iowan Old Style, Palatino Linotype, URW Palladio L, P052, serif",
    "monospace": (
        "ui-monospace, Cascadia Code, Source Code Pro, Menlo, Consolas, DejaVu Sans Mono, monospace"
    ),
}

BUILTIN_SECTION_TEMPLATES: tuple[str, ...] = tuple(
    f"sections/{name}.html.j2" for name in ("hero", "features", "rich_text", "image", "cta", "faq")
)

# Every value emitted into the <style> block must match this (defence in depth:
# the models already restrict values to this vocabulary).
_SAFE_CSS_VALUE = re.compile(r"[A-Za-z0-9 ,.#%-]{1,300}")
_THEME_NAME = re.compile(r"[a-z][a-z0-9_-]{0,39}")
_MAX_THEME_JSON_BYTES = 64 * 1024

FontKey = Annotated[str, Field(min_length=1, max_length=40)]


class _Tokens(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _normalise_color(value: Any) -> str:
    if not isinstance(value, str):
        raise ValueError("a colour must be a CSS colour string")
    return parse_css_color(value).to_hex()


class ColorTokens(_Tokens):
    """Colour roles; each value is normalised to lowercase ``#rrggbb``."""

    primary: str
    on_primary: str
    accent: str
    on_accent: str
    background: str
    surface: str
    text: str
    muted_text: str
    link: str
    border: str

    @field_validator("*", mode="before")
    @classmethod
    def _color(cls, value: Any) -> str:
        return _normalise_color(value)


class TypographyTokens(_Tokens):
    font_family: FontKey = "system-ui"
    heading_font_family: FontKey = "system-ui"
    base_size: int = Field(default=16, ge=12, le=24, description="body font size, px")
    scale: float = Field(default=1.25, ge=1.0, le=1.618, description="modular type scale")
    line_height: float = Field(default=1.5, ge=1.0, le=2.0)

    @field_validator("font_family", "heading_font_family")
    @classmethod
    def _font(cls, value: str) -> str:
        if value not in FONT_ALLOW_LIST:
            raise ValueError(
                f"font {value!r} is not allowed; choose one of {', '.join(FONT_ALLOW_LIST)}"
            )
        return value


class RadiusTokens(_Tokens):
    """Corner radii in px."""

    sm: int = Field(default=4, ge=0, le=48)
    md: int = Field(default=8, ge=0, le=48)
    lg: int = Field(default=16, ge=0, le=48)


class SpacingTokens(_Tokens):
    """Spacing steps in px."""

    xs: int = Field(default=4, ge=0, le=128)
    sm: int = Field(default=8, ge=0, le=128)
    md: int = Field(default=16, ge=0, le=128)
    lg: int = Field(default=32, ge=0, le=128)
    xl: int = Field(default=64, ge=0, le=128)


class DesignTokens(_Tokens):
    colors: ColorTokens
    typography: TypographyTokens = TypographyTokens()
    radius: RadiusTokens = RadiusTokens()
    spacing: SpacingTokens = SpacingTokens()

    def with_color_overrides(self, overrides: Mapping[str, str]) -> DesignTokens:
        """Return a copy with some colour roles replaced (e.g. tenant branding).

        Values are validated like the theme's own; unknown roles are refused.
        The result is *not* contrast-checked: call ``check_theme_contrast``.
        """
        colors = {**self.colors.model_dump(), **dict(overrides)}
        return self.model_copy(update={"colors": ColorTokens.model_validate(colors)})

    def css_custom_properties(self) -> list[tuple[str, str]]:
        """The tokens as ``(--name, value)`` pairs for a ``:root`` rule."""
        props: list[tuple[str, str]] = []
        for role, value in self.colors.model_dump().items():
            props.append((f"--color-{role.replace('_', '-')}", value))
        t = self.typography
        props += [
            ("--font-family", FONT_ALLOW_LIST[t.font_family]),
            ("--font-family-heading", FONT_ALLOW_LIST[t.heading_font_family]),
            ("--font-family-mono", FONT_ALLOW_LIST["monospace"]),
            ("--font-size-base", f"{t.base_size}px"),
            ("--font-size-sm", _px(max(12.0, t.base_size * 0.875))),
            ("--line-height", f"{t.line_height:g}"),
        ]
        for level, power in (("h4", 1), ("h3", 2), ("h2", 3), ("h1", 4)):
            props.append((f"--font-size-{level}", _px(t.base_size * t.scale**power)))
        for name, value in self.radius.model_dump().items():
            props.append((f"--radius-{name}", f"{value}px"))
        for name, value in self.spacing.model_dump().items():
            props.append((f"--space-{name}", f"{value}px"))
        for name, value in props:
            if not _SAFE_CSS_VALUE.fullmatch(value):  # pragma: no cover - models prevent it
                raise ValueError(f"unsafe CSS value for {name}")
        return props


def _px(value: float) -> str:
    return f"{round(value, 2):g}px"


class ThemeManifest(BaseModel):
    """The content of ``theme.json``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(min_length=1, max_length=40)
    title: str = Field(min_length=1, max_length=100)
    description: str = Field(default="", max_length=500)
    version: str = Field(default="1.0.0", max_length=20, pattern=r"^[0-9A-Za-z.+-]+$")
    tokens: DesignTokens


@dataclass(frozen=True)
class ThemePack:
    name: str
    title: str
    description: str
    tokens: DesignTokens
    template_dir: Path
    static_dir: Path

    @property
    def stylesheet(self) -> Path:
        return self.static_dir / "theme.css"


class ThemeError(ValueError):
    """A theme pack on disk is invalid (bad manifest, missing files, contrast)."""


_EXTERNAL_CSS = re.compile(r"@import|url\s*\(|//|https?:", re.IGNORECASE)


def load_theme_pack(directory: Path) -> ThemePack:
    """Load and fully validate one theme pack directory."""
    directory = Path(directory)
    manifest_path = directory / "theme.json"
    try:
        raw = manifest_path.read_bytes()
        if len(raw) > _MAX_THEME_JSON_BYTES:
            raise ThemeError(f"{manifest_path}: larger than {_MAX_THEME_JSON_BYTES} bytes")
        manifest = ThemeManifest.model_validate(json.loads(raw))
    except (OSError, json.JSONDecodeError, ValidationError) as exc:
        raise ThemeError(f"{manifest_path}: {exc}") from exc
    if manifest.name != directory.name or not _THEME_NAME.fullmatch(manifest.name):
        raise ThemeError(
            f"{manifest_path}: name {manifest.name!r} must equal the directory name and "
            "match [a-z][a-z0-9_-]*"
        )
    template_dir = directory / "templates"
    static_dir = directory / "static"
    required = ("page.html.j2", *BUILTIN_SECTION_TEMPLATES)
    missing = [name for name in required if not (template_dir / name).is_file()]
    if missing:
        raise ThemeError(f"theme {manifest.name!r} lacks templates: {', '.join(missing)}")
    stylesheet = static_dir / "theme.css"
    if not stylesheet.is_file():
        raise ThemeError(f"theme {manifest.name!r} lacks static/theme.css")
    # Comments may mention anything; strip them before looking for external loads.
    css = re.sub(r"/\*.*?\*/", "", stylesheet.read_text("utf-8"), flags=re.DOTALL)
    if _EXTERNAL_CSS.search(css):
        raise ThemeError(
            f"theme {manifest.name!r}: theme.css must not load anything (@import, url(), "
            "external URLs)"
        )
    failures = check_theme_contrast(manifest.tokens)
    if failures:
        raise ThemeError(
            f"theme {manifest.name!r} fails WCAG AA: " + "; ".join(f.message for f in failures)
        )
    return ThemePack(
        name=manifest.name,
        title=manifest.title,
        description=manifest.description,
        tokens=manifest.tokens,
        template_dir=template_dir.resolve(),
        static_dir=static_dir.resolve(),
    )


def load_theme_packs(root: Path = DEFAULT_THEMES_ROOT) -> dict[str, ThemePack]:
    """Load every theme pack under ``root`` (sub-directories with a theme.json).

    Raises ``ThemeError`` on the first invalid pack: a broken bundled theme is
    a bug to fix, not something to serve around.
    """
    root = Path(root)
    if not root.is_dir():
        raise ThemeError(f"theme root {root} is not a directory")
    packs: dict[str, ThemePack] = {}
    for directory in sorted(root.iterdir()):
        if directory.name.startswith((".", "_")) or not (directory / "theme.json").is_file():
            continue
        pack = load_theme_pack(directory)
        packs[pack.name] = pack
    return packs
