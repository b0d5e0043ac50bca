"""Render public landing pages from a theme pack, tokens, branding and sections.

Templates come only from theme packs we ship and from installed plugins;
tenants never upload templates. They still run in an
``ImmutableSandboxedEnvironment`` with autoescaping on, so a template cannot
reach Python internals or mutate what it is given, and every value is escaped
unless a template says ``|safe`` (which the bundled templates do only for
``RichTextSection.html``, sanitized by its validator; the renderer validates
every section again before rendering, so that holds even for sections built
without validation).

The renderer adds no Content-Security-Policy itself: the HTTP layer sends the
header with the same nonce it passes here (``csp_nonce`` goes on the one
``<style>`` block that carries the tokens).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Annotated, Any

from jinja2 import (
    BaseLoader,
    ChoiceLoader,
    FileSystemLoader,
    PrefixLoader,
    StrictUndefined,
)
from jinja2.sandbox import ImmutableSandboxedEnvironment
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from core.whitelabel.sections import SectionRegistry, check_url
from core.whitelabel.themes import DesignTokens, ThemePack

__all__ = ["Branding", "LandingRenderer", "UnknownTheme"]

_NONCE = re.compile(r"[A-Za-z0-9+/_-]{16,256}={0,2}")
_STATIC_PREFIX = re.compile(r"/(?!/)[A-Za-z0-9._~/-]{0,500}")
_PLUGIN_NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")
_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f-\x9f\s\\]")


def _image_url(value: str) -> str:
    """An absolute http(s) URL or a site-absolute path such as ``/media/logo.png``."""
    if value.startswith("/") and not value.startswith("//"):
        if _CONTROL_OR_SPACE.search(value) or len(value) > 2048:
            raise ValueError("invalid path: no whitespace, control characters or backslashes")
        return value
    return check_url(value, ("http", "https"))


class Branding(BaseModel):
    """What a tenant's page header, title and footer show."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    product_name: Annotated[str, StringConstraints(min_length=1, max_length=120)]
    logo_url: Annotated[str, AfterValidator(_image_url)] | None = None
    logo_alt: Annotated[str, StringConstraints(max_length=200)] = Field(
        default="", description="empty when the logo only repeats the product name shown next to it"
    )
    favicon_url: Annotated[str, AfterValidator(_image_url)] | None = None
    tagline: Annotated[str, StringConstraints(max_length=200)] | None = None
    description: Annotated[str, StringConstraints(max_length=300)] | None = None
    footer_text: Annotated[str, StringConstraints(max_length=300)] | None = None
    lang: Annotated[str, StringConstraints(pattern=r"^[A-Za-z]{2,3}(-[A-Za-z0-9]{2,8}){0,3}$")] = (
        "en"
    )


class UnknownTheme(KeyError):
    """``render_page`` was asked for a theme that is not loaded."""


class LandingRenderer:
    """Renders landing pages; build one at start-up and reuse it.

    ``plugin_template_dirs`` maps a plugin name to its templates directory
    (from ``register_theme_assets()``); its files load as
    ``plugins/<plugin>/<path>``. Directories carried by ``SectionType``
    entries in the registry are added too.
    """

    def __init__(
        self,
        themes: Mapping[str, ThemePack],
        registry: SectionRegistry | None = None,
        *,
        plugin_template_dirs: Mapping[str, Path] | None = None,
    ) -> None:
        self._themes = dict(themes)
        self._registry = registry if registry is not None else SectionRegistry()
        self._plugin_dirs = {name: Path(d) for name, d in (plugin_template_dirs or {}).items()}
        for name in self._plugin_dirs:
            if not _PLUGIN_NAME.fullmatch(name):
                raise ValueError(f"invalid plugin name {name!r}")
        self._envs: dict[
            tuple[str, tuple[tuple[str, str], ...]], ImmutableSandboxedEnvironment
        ] = {}

    @property
    def registry(self) -> SectionRegistry:
        return self._registry

    @property
    def themes(self) -> dict[str, ThemePack]:
        return dict(self._themes)

    def _all_plugin_dirs(self) -> dict[str, Path]:
        return {**self._registry.template_dirs(), **self._plugin_dirs}

    def environment(self, theme: str) -> ImmutableSandboxedEnvironment:
        pack = self._pack(theme)
        plugin_dirs = self._all_plugin_dirs()
        key = (pack.name, tuple(sorted((n, str(d)) for n, d in plugin_dirs.items())))
        env = self._envs.get(key)
        if env is None:
            loaders: list[BaseLoader] = [FileSystemLoader(pack.template_dir)]
            if plugin_dirs:
                per_plugin: dict[str, BaseLoader] = {
                    name: FileSystemLoader(d) for name, d in plugin_dirs.items()
                }
                loaders.append(PrefixLoader({"plugins": PrefixLoader(per_plugin)}))
            env = ImmutableSandboxedEnvironment(
                loader=ChoiceLoader(loaders),
                autoescape=True,
                undefined=StrictUndefined,
                trim_blocks=True,
                lstrip_blocks=True,
                auto_reload=False,
            )
            self._envs[key] = env
        return env

    def _pack(self, theme: str) -> ThemePack:
        try:
            return self._themes[theme]
        except KeyError:
            raise UnknownTheme(f"unknown theme {theme!r}") from None

    def render_page(
        self,
        theme: str,
        *,
        tokens: DesignTokens | Mapping[str, Any] | None = None,
        branding: Branding | Mapping[str, Any],
        sections: Sequence[BaseModel | Mapping[str, Any]],
        csp_nonce: str,
        static_url_prefix: str,
    ) -> str:
        """Render a complete HTML document.

        ``tokens`` defaults to the theme's own (pass tenant-adjusted tokens,
        e.g. ``pack.tokens.with_color_overrides(...)``; contrast is the
        caller's policy, see ``check_theme_contrast``). ``sections`` are
        validated against the registry (pydantic ``ValidationError`` on bad
        input). ``static_url_prefix`` is the site-absolute URL path where the
        theme's ``static/`` directory is served, e.g. ``/static/themes/clinical``.
        """
        pack = self._pack(theme)
        if tokens is None:
            design = pack.tokens
        elif isinstance(tokens, DesignTokens):
            design = tokens
        else:
            design = DesignTokens.model_validate(tokens)
        brand = branding if isinstance(branding, Branding) else Branding.model_validate(branding)
        if not isinstance(csp_nonce, str) or not _NONCE.fullmatch(csp_nonce):
            raise ValueError("csp_nonce must be 16-256 base64/base64url characters")
        if (
            not isinstance(static_url_prefix, str)
            or not _STATIC_PREFIX.fullmatch(static_url_prefix)
            or ".." in static_url_prefix.split("/")
        ):
            raise ValueError("static_url_prefix must be a site-absolute path like /static/x")
        validated = self._registry.validate_page(sections)
        section_templates = {
            name: self._registry.get(name).template_candidates()
            for name in {getattr(s, "type") for s in validated}  # noqa: B009
        }
        template = self.environment(theme).get_template("page.html.j2")
        return template.render(
            theme={"name": pack.name, "title": pack.title},
            css_properties=design.css_custom_properties(),
            branding=brand.model_dump(),
            sections=[s.model_dump(mode="json") for s in validated],
            section_templates=section_templates,
            csp_nonce=csp_nonce,
            static_url=static_url_prefix.rstrip("/"),
        )
