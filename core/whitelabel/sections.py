"""Landing-page section schemas and the registry of section types.

Every section is a pydantic model with ``extra="forbid"``, a ``type`` literal
(the discriminator) and bounded fields. Text fields are plain text, escaped
when rendered; the one HTML field, ``RichTextSection.html``, is sanitized by
its validator, so anything that passes validation may be rendered with
``|safe``. URLs are checked against explicit scheme allow-lists.

Plugins add section types through ``register_landing_sections()``, returning
``SectionType`` items; the kernel registers them in a ``SectionRegistry``
(``registry.register(spec, plugin=<plugin name>)``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Annotated, Any, Literal, Union, get_args, get_origin
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
    field_validator,
    model_validator,
)

from core.whitelabel.sanitize import sanitize_rich_text

__all__ = [
    "MAX_SECTIONS",
    "MAX_URL_LENGTH",
    "Anchor",
    "CtaSection",
    "FaqItem",
    "FaqSection",
    "FeatureItem",
    "FeaturesSection",
    "HeroSection",
    "ImageSection",
    "LandingSection",
    "LinkUrl",
    "RichTextSection",
    "SectionBase",
    "SectionRegistry",
    "SectionType",
    "WebUrl",
    "check_url",
]

MAX_SECTIONS = 40
MAX_URL_LENGTH = 2048

_CONTROL_OR_SPACE = re.compile(r"[\x00-\x20\x7f-\x9f\s]")
_SECTION_TYPE_NAME = re.compile(r"[a-z][a-z0-9_]{0,39}")
_PLUGIN_NAME = re.compile(r"[a-z][a-z0-9_-]{0,63}")


def check_url(value: str, schemes: Iterable[str]) -> str:
    """Return ``value`` if it is an absolute URL with one of ``schemes``.

    No whitespace or control characters anywhere (browsers silently strip some
    of them, which is how ``java\\tscript:`` tricks work), no backslashes,
    http(s) URLs need a host and no credentials.
    """
    allowed = {s.lower() for s in schemes}
    if not value or len(value) > MAX_URL_LENGTH:
        raise ValueError(f"a URL must be 1-{MAX_URL_LENGTH} characters")
    if _CONTROL_OR_SPACE.search(value) or "\\" in value:
        raise ValueError("a URL must not contain whitespace, control characters or backslashes")
    try:
        parts = urlsplit(value)
    except ValueError as exc:
        raise ValueError(f"not a valid URL: {exc}") from None
    scheme = parts.scheme.lower()
    if scheme not in allowed:
        raise ValueError(f"URL scheme must be one of {', '.join(sorted(allowed))}")
    if scheme in ("http", "https"):
        if not parts.hostname or not value.lower().startswith(f"{scheme}://"):
            raise ValueError("an http(s) URL needs a host")
        if parts.username is not None or parts.password is not None:
            raise ValueError("a URL must not contain credentials")
        try:
            parts.port  # noqa: B018 - raises on a malformed port
        except ValueError:
            raise ValueError("invalid port in URL") from None
    elif scheme == "mailto" and not parts.path:
        raise ValueError("a mailto: URL needs an address")
    return value


def _url_validator(*schemes: str) -> Callable[[str], str]:
    def validate(value: str) -> str:
        return check_url(value, schemes)

    return validate


#: An absolute http(s) URL (images).
WebUrl = Annotated[str, AfterValidator(_url_validator("http", "https"))]
#: An absolute http(s) or mailto: URL (links and buttons).
LinkUrl = Annotated[str, AfterValidator(_url_validator("http", "https", "mailto"))]
#: An optional in-page anchor id, usable as ``#anchor`` in links.
Anchor = Annotated[str, StringConstraints(pattern=r"^[a-z][a-z0-9-]{0,63}$")]

Title = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Label = Annotated[str, StringConstraints(min_length=1, max_length=80)]
ShortText = Annotated[str, StringConstraints(max_length=500)]
LongText = Annotated[str, StringConstraints(max_length=2000)]
AltText = Annotated[str, StringConstraints(max_length=300)]


class SectionBase(BaseModel):
    """Base for section schemas (built-in and plugin): strict and bounded."""

    model_config = ConfigDict(extra="forbid", str_max_length=70_000)

    anchor: Anchor | None = None


class HeroSection(SectionBase):
    type: Literal["hero"] = "hero"
    title: Title
    subtitle: ShortText | None = None
    cta_label: Label | None = None
    cta_url: LinkUrl | None = None

    @model_validator(mode="after")
    def _cta_pair(self) -> HeroSection:
        if (self.cta_url is None) != (self.cta_label is None):
            raise ValueError("cta_label and cta_url go together")
        return self


class FeatureItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    title: Title
    description: LongText = ""


class FeaturesSection(SectionBase):
    type: Literal["features"] = "features"
    title: Title | None = None
    intro: ShortText | None = None
    items: list[FeatureItem] = Field(min_length=1, max_length=12)


class RichTextSection(SectionBase):
    """Tenant-authored HTML, sanitized on validation (hence safe to render)."""

    type: Literal["rich_text"] = "rich_text"
    title: Title | None = None
    html: str

    @field_validator("html")
    @classmethod
    def _sanitize(cls, value: str) -> str:
        return sanitize_rich_text(value)


class ImageSection(SectionBase):
    type: Literal["image"] = "image"
    url: WebUrl
    alt: AltText = Field(description="empty only for purely decorative images")
    caption: AltText | None = None
    width: int | None = Field(default=None, ge=1, le=4096)
    height: int | None = Field(default=None, ge=1, le=4096)


class CtaSection(SectionBase):
    type: Literal["cta"] = "cta"
    title: Title
    text: ShortText | None = None
    button_label: Label
    button_url: LinkUrl


class FaqItem(BaseModel):
    model_config = ConfigDict(extra="forbid")

    question: Annotated[str, StringConstraints(min_length=1, max_length=300)]
    answer: Annotated[str, StringConstraints(min_length=1, max_length=2000)]


class FaqSection(SectionBase):
    type: Literal["faq"] = "faq"
    title: Title | None = None
    items: list[FaqItem] = Field(min_length=1, max_length=50)


#: The built-in sections as a discriminated union (for OpenAPI and plain use).
LandingSection = Annotated[
    Union[HeroSection, FeaturesSection, RichTextSection, ImageSection, CtaSection, FaqSection],  # noqa: UP007
    Field(discriminator="type"),
]

_BUILTIN_SCHEMAS: tuple[type[SectionBase], ...] = (
    HeroSection,
    FeaturesSection,
    RichTextSection,
    ImageSection,
    CtaSection,
    FaqSection,
)


@dataclass(frozen=True)
class SectionType:
    """A landing-page section type: schema plus template.

    ``template`` is a relative path: for a plugin section it lives in the
    plugin's templates directory and is loaded as ``plugins/<plugin>/<template>``;
    for a built-in it is a path inside the theme pack. A theme pack may always
    override any section by shipping ``sections/<name>.html.j2``.
    """

    name: str
    schema: type[BaseModel]
    template: str
    plugin: str | None = None
    template_dir: Path | None = None

    def template_candidates(self) -> list[str]:
        """Template names to try in order (first existing wins)."""
        override = f"sections/{self.name}.html.j2"
        if self.plugin is None:
            return [self.template] if self.template == override else [override, self.template]
        return [override, f"plugins/{self.plugin}/{self.template}"]


def _check_spec(spec: SectionType) -> None:
    if not _SECTION_TYPE_NAME.fullmatch(spec.name):
        raise ValueError(f"section type name {spec.name!r} must match [a-z][a-z0-9_]{{0,39}}")
    if not (isinstance(spec.schema, type) and issubclass(spec.schema, BaseModel)):
        raise TypeError(f"section {spec.name!r}: schema must be a pydantic model class")
    field = spec.schema.model_fields.get("type")
    if (
        field is None
        or get_origin(field.annotation) is not Literal
        or get_args(field.annotation) != (spec.name,)
    ):
        raise ValueError(
            f"section {spec.name!r}: schema needs a field type: Literal[{spec.name!r}]"
        )
    if spec.schema.model_config.get("extra") != "forbid":
        raise ValueError(f"section {spec.name!r}: schema must set extra='forbid'")
    template = PurePosixPath(spec.template)
    if (
        not spec.template
        or template.is_absolute()
        or ".." in template.parts
        or "\\" in spec.template
        or not spec.template.endswith(".j2")
    ):
        raise ValueError(f"section {spec.name!r}: template must be a relative .j2 path")
    if spec.plugin is not None and not _PLUGIN_NAME.fullmatch(spec.plugin):
        raise ValueError(f"section {spec.name!r}: invalid plugin name {spec.plugin!r}")


class SectionRegistry:
    """The section types a page may use: the built-ins plus plugin types.

    One registry per set of enabled plugins (e.g. per Solution); ``copy()``
    derives one from another.
    """

    def __init__(self, *, builtins: bool = True) -> None:
        self._types: dict[str, SectionType] = {}
        self._adapter: TypeAdapter[list[Any]] | None = None
        if builtins:
            for schema in _BUILTIN_SCHEMAS:
                name = get_args(schema.model_fields["type"].annotation)[0]
                self._types[name] = SectionType(name, schema, f"sections/{name}.html.j2")

    def copy(self) -> SectionRegistry:
        clone = SectionRegistry(builtins=False)
        clone._types = dict(self._types)
        return clone

    def register(
        self, spec: SectionType, *, plugin: str | None = None, replace_existing: bool = False
    ) -> SectionType:
        """Add a section type; ``plugin`` (if given) names the contributing plugin."""
        if not isinstance(spec, SectionType):
            raise TypeError("register() takes a SectionType")
        if plugin is not None:
            spec = replace(spec, plugin=plugin)
        _check_spec(spec)
        if spec.name in self._types and not replace_existing:
            raise ValueError(f"section type {spec.name!r} is already registered")
        if spec.name in self._types and self._types[spec.name].plugin is None:
            raise ValueError(f"built-in section type {spec.name!r} cannot be replaced")
        self._types[spec.name] = spec
        self._adapter = None
        return spec

    def __contains__(self, name: object) -> bool:
        return name in self._types

    def types(self) -> list[str]:
        return list(self._types)

    def get(self, name: str) -> SectionType:
        try:
            return self._types[name]
        except KeyError:
            raise KeyError(f"unknown section type {name!r}") from None

    def template_dirs(self) -> dict[str, Path]:
        """Plugin name -> templates directory, from specs that carry one."""
        dirs: dict[str, Path] = {}
        for spec in self._types.values():
            if spec.plugin is not None and spec.template_dir is not None:
                dirs.setdefault(spec.plugin, Path(spec.template_dir))
        return dirs

    def _page_adapter(self) -> TypeAdapter[list[Any]]:
        if self._adapter is None:
            schemas = tuple(spec.schema for spec in self._types.values())
            if not schemas:
                raise ValueError("no section types registered")
            item: Any = (
                schemas[0]
                if len(schemas) == 1
                else Annotated[Union[schemas], Field(discriminator="type")]  # noqa: UP007
            )
            self._adapter = TypeAdapter(
                Annotated[list[item], Field(max_length=MAX_SECTIONS)]  # type: ignore[valid-type]
            )
        return self._adapter

    @staticmethod
    def _as_data(section: BaseModel | Mapping[str, Any]) -> Any:
        # Instances are dumped and validated again, so validators (the
        # rich-text sanitizer above all) run even for model_construct()-ed or
        # mutated objects.
        if isinstance(section, BaseModel):
            return section.model_dump()
        return section

    def validate_page(self, sections: Sequence[BaseModel | Mapping[str, Any]]) -> list[BaseModel]:
        """Validate a page's sections (models or dicts); raises ValidationError."""
        if isinstance(sections, (str, bytes)) or not isinstance(sections, Sequence):
            raise TypeError("sections must be a sequence of sections")
        data = [self._as_data(s) for s in sections]
        return list(self._page_adapter().validate_python(data))

    def validate(self, section: BaseModel | Mapping[str, Any]) -> BaseModel:
        """Validate one section; raises ValidationError."""
        return self.validate_page([section])[0]
