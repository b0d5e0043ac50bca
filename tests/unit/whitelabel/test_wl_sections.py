"""Section schemas, the discriminated union and the plugin registry."""

from __future__ import annotations

from typing import Literal

import pytest
from pydantic import BaseModel, ConfigDict, TypeAdapter, ValidationError

from core.whitelabel.sanitize import MAX_RICH_TEXT_BYTES
from core.whitelabel.sections import (
    MAX_SECTIONS,
    CtaSection,
    FaqSection,
    FeaturesSection,
    HeroSection,
    ImageSection,
    LandingSection,
    RichTextSection,
    SectionBase,
    SectionRegistry,
    SectionType,
)

VALID = [
    {
        "type": "hero",
        "title": "Care, connected",
        "subtitle": "s",
        "cta_label": "Start",
        "cta_url": "https://example.com/start",
    },
    {"type": "features", "title": "Why", "items": [{"title": "Fast", "description": "d"}]},
    {"type": "rich_text", "html": "<p>Hello <strong>world</strong></p>"},
    {"type": "image", "url": "https://cdn.example.com/a.png", "alt": "A photo", "width": 800},
    {
        "type": "cta",
        "title": "Talk to us",
        "button_label": "Email",
        "button_url": "mailto:a@b.example",
    },
    {"type": "faq", "items": [{"question": "Q?", "answer": "A."}]},
]

ADAPTER: TypeAdapter[LandingSection] = TypeAdapter(LandingSection)

BAD_URLS = [
    "javascript:alert(1)",
    "JavaScript:alert(1)",
    "java\tscript:alert(1)",
    " https://x.example",
    "https://x.example/a b",
    "data:text/html,<script>alert(1)</script>",
    "vbscript:x",
    "//x.example/",
    "/relative",
    "relative",
    "http:/x.example",
    "http://",
    "https://user:pw@x.example/",
    "https:\\\\x.example",
    "ftp://x.example/",
    "https://x.example:99999/",
    "https://x.example/\x00",
    "",
    "https://x.example/" + "a" * 2100,
]


@pytest.mark.parametrize("data", VALID, ids=lambda d: d["type"])
def test_valid_sections_parse_through_the_union(data: dict) -> None:
    section = ADAPTER.validate_python(data)
    assert section.type == data["type"]
    assert SectionRegistry().validate(data) == section


@pytest.mark.parametrize("data", VALID, ids=lambda d: d["type"])
def test_extra_fields_are_forbidden(data: dict) -> None:
    with pytest.raises(ValidationError, match="extra"):
        ADAPTER.validate_python({**data, "onclick": "x"})


def test_nested_items_forbid_extra_fields_too() -> None:
    with pytest.raises(ValidationError):
        FeaturesSection.model_validate({"items": [{"title": "t", "icon": "x"}]})
    with pytest.raises(ValidationError):
        FaqSection.model_validate({"items": [{"question": "q", "answer": "a", "html": "x"}]})


def test_unknown_type_is_rejected() -> None:
    with pytest.raises(ValidationError):
        ADAPTER.validate_python({"type": "script", "title": "x"})
    with pytest.raises(ValidationError):
        SectionRegistry().validate({"type": "video", "url": "https://x.example"})


@pytest.mark.parametrize("url", BAD_URLS)
def test_bad_urls_are_rejected_everywhere(url: str) -> None:
    with pytest.raises(ValidationError):
        ImageSection(url=url, alt="a")
    with pytest.raises(ValidationError):
        CtaSection(title="t", button_label="b", button_url=url)
    with pytest.raises(ValidationError):
        HeroSection(title="t", cta_label="b", cta_url=url)


def test_scheme_allow_lists_differ_by_field() -> None:
    CtaSection(title="t", button_label="b", button_url="mailto:hi@x.example")
    CtaSection(title="t", button_label="b", button_url="http://x.example/")
    with pytest.raises(ValidationError, match="scheme"):
        ImageSection(url="mailto:hi@x.example", alt="a")
    with pytest.raises(ValidationError):
        CtaSection(title="t", button_label="b", button_url="mailto:")


@pytest.mark.parametrize(
    ("model", "data"),
    [
        (HeroSection, {"title": "x" * 201}),
        (HeroSection, {"title": ""}),
        (HeroSection, {"title": "t", "subtitle": "x" * 501}),
        (HeroSection, {"title": "t", "cta_label": "x" * 81, "cta_url": "https://x.example"}),
        (FeaturesSection, {"items": []}),
        (FeaturesSection, {"items": [{"title": "t"}] * 13}),
        (FeaturesSection, {"items": [{"title": "t", "description": "x" * 2001}]}),
        (FaqSection, {"items": [{"question": "q", "answer": "a"}] * 51}),
        (FaqSection, {"items": [{"question": "q" * 301, "answer": "a"}]}),
        (ImageSection, {"url": "https://x.example/a.png", "alt": "x" * 301}),
        (ImageSection, {"url": "https://x.example/a.png", "alt": "a", "width": 10_000}),
        (CtaSection, {"title": "t", "button_label": "", "button_url": "https://x.example"}),
        (RichTextSection, {"html": "<p>x</p>", "title": "x" * 201}),
        (HeroSection, {"title": "t", "anchor": "Has Spaces"}),
        (HeroSection, {"title": "t", "anchor": 'x" onclick="y'}),
    ],
)
def test_length_and_shape_limits(model: type[BaseModel], data: dict) -> None:
    with pytest.raises(ValidationError):
        model.model_validate(data)


def test_hero_cta_label_and_url_go_together() -> None:
    with pytest.raises(ValidationError, match="together"):
        HeroSection(title="t", cta_label="Go")
    with pytest.raises(ValidationError, match="together"):
        HeroSection(title="t", cta_url="https://x.example")
    HeroSection(title="t")


def test_rich_text_is_sanitized_by_its_validator() -> None:
    section = RichTextSection(
        html='<p onclick="x">hi<script>alert(1)</script><a href="javascript:x">l</a></p>'
    )
    assert section.html == '<p>hi<a rel="noopener noreferrer">l</a></p>'


def test_oversized_rich_text_is_a_validation_error() -> None:
    with pytest.raises(ValidationError, match="limit"):
        RichTextSection(html="a" * (MAX_RICH_TEXT_BYTES + 1))


def test_registry_revalidates_model_instances() -> None:
    # model_construct() skips validation; the registry must not trust it.
    forged = RichTextSection.model_construct(type="rich_text", html="<script>alert(1)</script>x")
    [clean] = SectionRegistry().validate_page([forged])
    assert isinstance(clean, RichTextSection) and clean.html == "x"


def test_page_size_is_bounded() -> None:
    registry = SectionRegistry()
    assert len(registry.validate_page([VALID[0]] * MAX_SECTIONS)) == MAX_SECTIONS
    with pytest.raises(ValidationError):
        registry.validate_page([VALID[0]] * (MAX_SECTIONS + 1))
    with pytest.raises(TypeError):
        registry.validate_page("hero")  # type: ignore[arg-type]


class PollSection(SectionBase):
    type: Literal["poll"] = "poll"
    question: str


def test_plugins_can_add_a_section_type() -> None:
    registry = SectionRegistry()
    spec = registry.register(
        SectionType("poll", PollSection, "sections/poll.html.j2"), plugin="polls"
    )
    assert spec.plugin == "polls" and "poll" in registry
    assert registry.types()[:6] == ["hero", "features", "rich_text", "image", "cta", "faq"]
    [hero, poll] = registry.validate_page([VALID[0], {"type": "poll", "question": "Why?"}])
    assert isinstance(poll, PollSection) and isinstance(hero, HeroSection)
    assert registry.get("poll").template_candidates() == [
        "sections/poll.html.j2",  # a theme may override
        "plugins/polls/sections/poll.html.j2",
    ]
    with pytest.raises(ValidationError):
        registry.validate({"type": "poll", "question": "q", "extra": 1})
    # other registries are unaffected
    with pytest.raises(ValidationError):
        SectionRegistry().validate({"type": "poll", "question": "q"})
    copy = registry.copy()
    assert "poll" in copy


def test_registry_rejects_bad_specs() -> None:
    registry = SectionRegistry()

    class NoLiteral(BaseModel):
        model_config = ConfigDict(extra="forbid")
        type: str = "x"

    class Permissive(BaseModel):
        type: Literal["loose"] = "loose"

    with pytest.raises(ValueError, match="already registered"):
        registry.register(SectionType("poll", PollSection, "a.j2"), plugin="p")
        registry.register(SectionType("poll", PollSection, "a.j2"), plugin="p")
    with pytest.raises(ValueError, match="cannot be replaced"):
        registry.register(
            SectionType("hero", HeroSection, "a.j2"), plugin="p", replace_existing=True
        )
    with pytest.raises(ValueError, match="Literal"):
        registry.register(SectionType("x", NoLiteral, "a.j2"))
    with pytest.raises(ValueError, match="Literal"):
        registry.register(SectionType("other", PollSection, "a.j2"))
    with pytest.raises(ValueError, match="forbid"):
        registry.register(SectionType("loose", Permissive, "a.j2"))
    with pytest.raises(TypeError):
        registry.register(SectionType("x", dict, "a.j2"))  # type: ignore[arg-type]
    for template in ("/etc/passwd.j2", "../x.j2", "a\\b.j2", "x.html", ""):
        with pytest.raises(ValueError, match="template"):
            registry.register(SectionType("poll", PollSection, template), replace_existing=True)
    with pytest.raises(ValueError, match="name"):
        registry.register(SectionType("Bad-Name", PollSection, "a.j2"))
    with pytest.raises(ValueError, match="plugin"):
        registry.register(
            SectionType("poll", PollSection, "a.j2"), plugin="../x", replace_existing=True
        )
    registry.register(SectionType("poll", PollSection, "b.j2"), plugin="p", replace_existing=True)
    assert registry.get("poll").template == "b.j2"
    with pytest.raises(KeyError):
        registry.get("nope")
