"""Branding per account: the ``branding`` namespace of the settings cascade.

The schema is what a Solution or Account may set (the cascade adds locks and
provenance); :func:`resolve_appearance` turns resolved values plus a theme pack
into what a page or the React frontend uses: a validated ``Branding``, the
theme's design tokens with the brand colours and fonts applied, and the
frame-ancestors policy. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any
from urllib.parse import urlsplit

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from core.whitelabel.contrast import ContrastFailure, check_theme_contrast, parse_css_color
from core.whitelabel.render import Branding
from core.whitelabel.sections import check_url
from core.whitelabel.themes import FONT_ALLOW_LIST, DesignTokens, ThemePack

__all__ = [
    "COLOR_KEYS",
    "PLATFORM_MEDIA_PREFIXES",
    "Appearance",
    "BrandingSettings",
    "failure_as_dict",
    "resolve_appearance",
]

#: Site-absolute paths that are the platform's own storage (served by this app):
#: theme and plugin assets under /static, tenant uploads under /media.
PLATFORM_MEDIA_PREFIXES: tuple[str, ...] = ("/static/", "/media/")

#: Branding key -> colour role of the theme's design tokens.
COLOR_KEYS: dict[str, str] = {
    "primary_color": "primary",
    "on_primary_color": "on_primary",
    "accent_color": "accent",
    "on_accent_color": "on_accent",
    "background_color": "background",
    "surface_color": "surface",
    "text_color": "text",
    "muted_text_color": "muted_text",
    "link_color": "link",
    "border_color": "border",
}

_PATH = re.compile(r"/[A-Za-z0-9._~/-]{1,500}")
_ORIGIN_HOST = re.compile(r"^[a-z0-9.-]{1,253}$")


def _media_url(value: str) -> str:
    """An https URL, or a path under the platform's own storage prefixes.

    Plain http is refused (mixed content on an https page), as are data:,
    javascript:, protocol-relative ``//host`` and paths outside the prefixes.
    """
    if value.startswith("/"):
        if (
            not _PATH.fullmatch(value)
            or "//" in value
            or ".." in value.split("/")
            or not value.startswith(PLATFORM_MEDIA_PREFIXES)
        ):
            raise ValueError(
                "a site path must start with one of "
                + ", ".join(PLATFORM_MEDIA_PREFIXES)
                + " and contain only letters, digits and . _ ~ / -"
            )
        return value
    return check_url(value, ("https",))


def _color(value: str) -> str:
    return parse_css_color(value).to_hex()


def _font(value: str) -> str:
    if value not in FONT_ALLOW_LIST:
        allowed = ", ".join(FONT_ALLOW_LIST)
        raise ValueError(f"font {value!r} is not allowed; choose one of {allowed}")
    return value


def _frame_ancestor(value: str) -> str:
    """``'self'`` or an https origin (scheme, host and optional port; nothing else)."""
    if value in ("self", "'self'"):
        return "'self'"
    check_url(value, ("https",))
    parts = urlsplit(value)
    host = parts.hostname or ""
    if (
        parts.path not in ("", "/")
        or parts.query
        or parts.fragment
        or not _ORIGIN_HOST.match(host)
        or "*" in value
    ):
        raise ValueError("a frame ancestor is 'self' or an https origin such as https://host:port")
    return f"https://{host}" + (f":{parts.port}" if parts.port else "")


Color = Annotated[str, AfterValidator(_color)]
MediaUrl = Annotated[str, AfterValidator(_media_url)]
FontKey = Annotated[str, AfterValidator(_font)]
FrameAncestor = Annotated[str, StringConstraints(max_length=300), AfterValidator(_frame_ancestor)]


class BrandingSettings(BaseModel):
    """Branding keys in the settings cascade (Platform > Solution > Account).

    Every key is optional: unset keys fall back to the level above, and at the
    platform to the Solution theme's own tokens (and the account's name for
    ``product_name``). Colours are validated and stored as ``#rrggbb``.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    product_name: Annotated[str, StringConstraints(min_length=1, max_length=120)] | None = None
    logo_url: MediaUrl | None = None
    logo_alt: Annotated[str, StringConstraints(max_length=200)] | None = None
    favicon_url: MediaUrl | None = None
    tagline: Annotated[str, StringConstraints(max_length=200)] | None = None
    description: Annotated[str, StringConstraints(max_length=300)] | None = None
    footer_text: Annotated[str, StringConstraints(max_length=300)] | None = None
    lang: (
        Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$")]
        | None
    ) = None
    font: FontKey | None = Field(None, description="body font, a key of the font allow-list")
    heading_font: FontKey | None = Field(None, description="heading font (defaults to font)")
    primary_color: Color | None = None
    on_primary_color: Color | None = None
    accent_color: Color | None = None
    on_accent_color: Color | None = None
    background_color: Color | None = None
    surface_color: Color | None = None
    text_color: Color | None = None
    muted_text_color: Color | None = None
    link_color: Color | None = None
    border_color: Color | None = None
    frame_ancestors: list[FrameAncestor] = Field(
        default_factory=list,
        max_length=10,
        description="who may embed the public page: 'self' or https origins; empty = nobody",
    )


@dataclass(frozen=True)
class Appearance:
    """What one account looks like: theme, tokens after overrides, branding."""

    theme: ThemePack
    tokens: DesignTokens
    branding: Branding
    frame_ancestors: tuple[str, ...]
    contrast_failures: tuple[ContrastFailure, ...]

    @property
    def frame_ancestors_csp(self) -> str:
        return " ".join(self.frame_ancestors) if self.frame_ancestors else "'none'"


def resolve_appearance(
    theme: ThemePack, values: Mapping[str, Any], *, account_name: str
) -> Appearance:
    """Apply resolved branding values to a theme pack (contrast is reported, not enforced)."""
    overrides = {
        role: values[key] for key, role in COLOR_KEYS.items() if values.get(key) is not None
    }
    tokens = theme.tokens.with_color_overrides(overrides) if overrides else theme.tokens
    font = values.get("font")
    heading = values.get("heading_font") or font
    typography: dict[str, Any] = {}
    if font:
        typography["font_family"] = font
    if heading:
        typography["heading_font_family"] = heading
    if typography:  # validated again: values come from the database
        tokens = DesignTokens.model_validate(
            {**tokens.model_dump(), "typography": {**tokens.typography.model_dump(), **typography}}
        )
    branding = Branding(
        product_name=values.get("product_name") or account_name[:120] or "Home",
        logo_url=values.get("logo_url"),
        logo_alt=values.get("logo_alt") or "",
        favicon_url=values.get("favicon_url"),
        tagline=values.get("tagline"),
        description=values.get("description"),
        footer_text=values.get("footer_text"),
        lang=values.get("lang") or "en",
    )
    return Appearance(
        theme=theme,
        tokens=tokens,
        branding=branding,
        frame_ancestors=tuple(values.get("frame_ancestors") or ()),
        contrast_failures=tuple(check_theme_contrast(tokens)),
    )


def failure_as_dict(failure: ContrastFailure, tokens: DesignTokens) -> dict[str, Any]:
    colors = tokens.colors.model_dump()
    return {
        "pair": failure.pair,
        "foreground": failure.foreground,
        "background": failure.background,
        "foreground_color": colors[failure.foreground],
        "background_color": colors[failure.background],
        "ratio": failure.ratio,
        "required": failure.required,
    }
