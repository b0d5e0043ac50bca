"""LandingRenderer: escaping, nonce, tokens, plugins, sandbox."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Literal

import pytest
from jinja2.exceptions import SecurityError
from pydantic import ValidationError

from core.whitelabel.render import LandingRenderer, UnknownTheme
from core.whitelabel.sections import (
    HeroSection,
    RichTextSection,
    SectionBase,
    SectionRegistry,
    SectionType,
)
from core.whitelabel.themes import load_theme_packs

NONCE = "rAnd0mN0nce-Value_123"
BRANDING = {
    "product_name": "Northside <Care>",
    "logo_url": "https://cdn.example.com/logo.png",
    "logo_alt": "Northside",
    "tagline": "Health & you",
    "footer_text": '© 2025 "Northside"',
}
ALL_SECTIONS = [
    {
        "type": "hero",
        "title": "<script>alert(1)</script>",
        "subtitle": 'a "quoted" <b>sub</b>',
        "cta_label": "Go <now>",
        "cta_url": 'https://example.com/?a=1&b="x"',
    },
    {"type": "features", "title": "F", "items": [{"title": "<i>t</i>", "description": "d & e"}]},
    {
        "type": "rich_text",
        "anchor": "about",
        "html": '<p>Hi <a href="https://x.example">x</a><img src=x onerror=alert(1)></p>',
    },
    {
        "type": "image",
        "url": 'https://cdn.example.com/p.png?x="y',
        "alt": '"><script>',
        "caption": "c",
    },
    {
        "type": "cta",
        "title": "T",
        "text": "<svg onload=alert(1)>",
        "button_label": "Mail",
        "button_url": "mailto:hi@example.com",
    },
    {"type": "faq", "title": "FAQ", "items": [{"question": "<q>?", "answer": "a\nb"}]},
]


@pytest.fixture(scope="module")
def renderer() -> LandingRenderer:
    return LandingRenderer(load_theme_packs())


def render(renderer: LandingRenderer, theme: str = "clinical", **kw: object) -> str:
    args: dict[str, object] = {
        "branding": BRANDING,
        "sections": ALL_SECTIONS,
        "csp_nonce": NONCE,
        "static_url_prefix": f"/static/themes/{theme}",
    }
    args.update(kw)
    return renderer.render_page(theme, **args)  # type: ignore[arg-type]


@pytest.mark.parametrize("theme", ["clinical", "corporate"])
def test_every_field_is_escaped(renderer: LandingRenderer, theme: str) -> None:
    html = render(renderer, theme)
    assert html.startswith("<!doctype html>")
    assert "<script" not in html.lower()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "Northside &lt;Care&gt;" in html
    assert "a &#34;quoted&#34; &lt;b&gt;sub&lt;/b&gt;" in html
    assert 'href="https://example.com/?a=1&amp;b=&#34;x&#34;"' in html
    assert "&lt;svg onload=alert(1)&gt;" in html
    assert 'alt="&#34;&gt;&lt;script&gt;"' in html
    assert "onerror" not in html and not re.search(r"<[^>]*\son\w+=", html)
    # rich text is inserted as (sanitized) markup, not escaped
    assert '<a href="https://x.example" rel="noopener noreferrer">x</a>' in html
    assert 'id="about"' in html


@pytest.mark.parametrize("theme", ["clinical", "corporate"])
def test_nonce_tokens_and_stylesheet(renderer: LandingRenderer, theme: str) -> None:
    html = render(renderer, theme)
    assert f'<style nonce="{NONCE}">' in html
    assert html.count("<style") == 1
    assert f'<link rel="stylesheet" href="/static/themes/{theme}/theme.css">' in html
    pack = renderer.themes[theme]
    for name, value in pack.tokens.css_custom_properties():
        assert f"{name}: {value};" in html
    assert f"--color-primary: {pack.tokens.colors.primary};" in html


def test_sections_render_in_order(renderer: LandingRenderer) -> None:
    html = render(renderer)
    classes = re.findall(r'<section class="section ([a-z-]+)', html)
    assert classes == ["hero", "features", "rich-text", "image", "cta", "faq"]


def test_tenant_tokens_override_theme(renderer: LandingRenderer) -> None:
    tokens = renderer.themes["clinical"].tokens.with_color_overrides({"primary": "#123456"})
    assert "--color-primary: #123456;" in render(renderer, tokens=tokens)
    as_dict = tokens.model_dump()
    assert "--color-primary: #123456;" in render(renderer, tokens=as_dict)
    as_dict["colors"]["primary"] = "red;}</style><script>alert(1)</script>"
    with pytest.raises(ValidationError):
        render(renderer, tokens=as_dict)


def test_sections_may_be_models(renderer: LandingRenderer) -> None:
    html = render(renderer, sections=[HeroSection(title="Model <hero>")])
    assert "Model &lt;hero&gt;" in html


def test_unvalidated_rich_text_is_sanitized_at_render(renderer: LandingRenderer) -> None:
    forged = RichTextSection.model_construct(
        type="rich_text", html="<script>alert(1)</script><p>ok</p>", title=None, anchor=None
    )
    html = render(renderer, sections=[forged])
    assert "<script" not in html and "<p>ok</p>" in html


@pytest.mark.parametrize(
    "kw",
    [
        {"csp_nonce": "short"},
        {"csp_nonce": 'abcdefghijklmnop" onload="x'},
        {"static_url_prefix": "https://cdn.example.com/x"},
        {"static_url_prefix": "//cdn.example.com/x"},
        {"static_url_prefix": "/static/../x"},
        {"static_url_prefix": '/x"><script>'},
    ],
)
def test_bad_nonce_or_prefix(renderer: LandingRenderer, kw: dict) -> None:
    with pytest.raises(ValueError):
        render(renderer, **kw)


@pytest.mark.parametrize(
    "branding",
    [
        {"product_name": ""},
        {"product_name": "x", "logo_url": "javascript:alert(1)"},
        {"product_name": "x", "logo_url": "//evil.example/logo.png"},
        {"product_name": "x", "logo_url": "data:image/svg+xml,<svg onload=alert(1)>"},
        {"product_name": "x", "colour": "#fff"},
        {"product_name": "x", "lang": 'en"><script>'},
    ],
)
def test_branding_is_validated(renderer: LandingRenderer, branding: dict) -> None:
    with pytest.raises(ValidationError):
        render(renderer, branding=branding)


def test_site_relative_logo_and_minimal_branding(renderer: LandingRenderer) -> None:
    html = render(
        renderer, branding={"product_name": "P", "logo_url": "/media/a/logo.png"}, sections=[]
    )
    assert 'src="/media/a/logo.png" alt=""' in html
    assert '<main id="main">' in html


def test_unknown_theme(renderer: LandingRenderer) -> None:
    with pytest.raises(UnknownTheme):
        render(renderer, "nope")


def test_invalid_sections_are_rejected(renderer: LandingRenderer) -> None:
    with pytest.raises(ValidationError):
        render(renderer, sections=[{"type": "hero", "title": "t", "style": "x"}])
    with pytest.raises(ValidationError):
        render(renderer, sections=[{"type": "image", "url": "javascript:alert(1)", "alt": ""}])


class PollSection(SectionBase):
    type: Literal["poll"] = "poll"
    question: str


def _plugin_renderer(tmp_path: Path, template: str) -> LandingRenderer:
    templates = tmp_path / "polls" / "templates"
    (templates / "sections").mkdir(parents=True)
    (templates / "sections" / "poll.html.j2").write_text(template)
    registry = SectionRegistry()
    registry.register(SectionType("poll", PollSection, "sections/poll.html.j2"), plugin="polls")
    return LandingRenderer(load_theme_packs(), registry, plugin_template_dirs={"polls": templates})


def test_plugin_section_renders_escaped(tmp_path: Path) -> None:
    renderer = _plugin_renderer(
        tmp_path, '<section class="poll"><p>{{ section.question }}</p></section>'
    )
    html = render(
        renderer, sections=[{"type": "hero", "title": "H"}, {"type": "poll", "question": "<b>?"}]
    )
    assert '<section class="poll"><p>&lt;b&gt;?</p></section>' in html


def test_plugin_template_dirs_can_come_from_the_registry(tmp_path: Path) -> None:
    templates = tmp_path / "t"
    (templates / "sections").mkdir(parents=True)
    (templates / "sections" / "poll.html.j2").write_text("<p>{{ section.question }}</p>")
    registry = SectionRegistry()
    registry.register(
        SectionType("poll", PollSection, "sections/poll.html.j2", template_dir=templates),
        plugin="polls",
    )
    renderer = LandingRenderer(load_theme_packs(), registry)
    assert "<p>Q</p>" in render(renderer, sections=[{"type": "poll", "question": "Q"}])


@pytest.mark.parametrize(
    "template",
    [
        "{{ section.__class__.__mro__ }}",
        "{{ ''.__class__.__subclasses__() }}",
        "{{ section.update({'question': 'x'}) }}",
        "{{ sections.append(1) }}",
    ],
)
def test_templates_run_sandboxed(tmp_path: Path, template: str) -> None:
    renderer = _plugin_renderer(tmp_path, template)
    with pytest.raises(SecurityError):
        render(renderer, sections=[{"type": "poll", "question": "q"}])


def test_plugin_cannot_shadow_theme_templates(tmp_path: Path) -> None:
    renderer = _plugin_renderer(tmp_path, "<p>{{ section.question }}</p>")
    (tmp_path / "polls" / "templates" / "page.html.j2").write_text("HIJACKED")
    assert "HIJACKED" not in render(renderer)
    with pytest.raises(ValueError):
        LandingRenderer(load_theme_packs(), plugin_template_dirs={"../x": tmp_path})
